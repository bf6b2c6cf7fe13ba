package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// What the diagnostics print comes from the running gateway, and much of
// it from outside: file names, syslog peers, sensor strings, certificate
// subjects, errors quoting any of them. A terminal acts on some bytes (an
// escape sequence can retitle the window, move the cursor, rewrite what
// was printed above, or on some terminals answer with keystrokes), so
// every printer goes through this file: printf escapes its arguments,
// writeText and writeJSON whole blocks, all with termSafe.
// TestPrintersUseTermSafe keeps it so.

// termSafe returns s with everything a terminal could act on, or that
// could pass for something else, written as a visible escape: C0
// controls (newline and tab included, unless keepLayout), DEL, C1
// controls, Unicode format and direction overrides, invalid UTF-8 (\xNN).
// A backslash is left as it is.
func termSafe(s string, keepLayout bool) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if unsafeRune(r, n, keepLayout) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !unsafeRune(r, n, keepLayout):
			b.WriteString(s[i : i+n])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}

// unsafeRune says r (n bytes of UTF-8) must be escaped.
func unsafeRune(r rune, n int, keepLayout bool) bool {
	switch {
	case r == utf8.RuneError && n == 1:
		return true
	case r == '\n' || r == '\t':
		return !keepLayout
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, // arabic letter mark, LRM, RLM
		r >= 0x202a && r <= 0x202e, // embeddings and overrides
		r >= 0x2066 && r <= 0x2069, // isolates
		r == 0x2028, r == 0x2029,   // line and paragraph separators
		r == 0xfeff: // zero width no-break space
		return true
	}
	return false
}

// printf is fmt.Fprintf with every argument but numbers and booleans
// formatted as asked and then passed through termSafe. The format itself
// is the program's own.
func printf(w io.Writer, format string, args ...any) {
	for i, a := range args {
		if a == nil {
			continue
		}
		switch reflect.TypeOf(a).Kind() {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
			reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
			if _, ok := a.(fmt.Stringer); !ok {
				continue
			}
		}
		args[i] = safeArg{a}
	}
	_, _ = fmt.Fprintf(w, format, args...)
}

// safeArg formats its value with the verb, flags and precision asked
// for, escapes the result, then pads it to the width asked for, so
// columns line up with what is shown.
type safeArg struct{ v any }

func (a safeArg) Format(f fmt.State, verb rune) {
	spec := "%"
	for _, flag := range "+# 0" {
		if f.Flag(int(flag)) {
			spec += string(flag)
		}
	}
	if p, ok := f.Precision(); ok {
		spec += "." + strconv.Itoa(p)
	}
	s := termSafe(fmt.Sprintf(spec+string(verb), a.v), false)
	if w, ok := f.Width(); ok && utf8.RuneCountInString(s) < w {
		pad := strings.Repeat(" ", w-utf8.RuneCountInString(s))
		if f.Flag('-') {
			s += pad
		} else {
			s = pad + s
		}
	}
	_, _ = io.WriteString(f, s)
}

// writeText writes a block of text (a YAML document, say) with its
// newlines and tabs, and nothing else a terminal acts on.
func writeText(w io.Writer, s string) error {
	_, err := io.WriteString(w, termSafe(s, true))
	return err
}

// writeJSON writes v as JSON, indented when indent, one value a line.
// encoding/json escapes C0 controls but leaves DEL, C1 controls and
// direction overrides raw, which a terminal may act on; they are written
// as \u escapes, which decode to the same string.
func writeJSON(w io.Writer, v any, indent bool) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return err
	}
	b := buf.Bytes()
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != '\n' && unsafeRune(r, n, false) {
			// Outside strings only newlines and spaces occur; invalid
			// UTF-8 json.Marshal already replaced with U+FFFD.
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	_, err := w.Write(out)
	return err
}
