package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// consoleWidth is what a dumb serial terminal shows: the console folds
// every line to it, since such a terminal cannot say its size.
const consoleWidth = 80

// foldWriter passes text on a line at a time, each line longer than width
// folded at its last space that fits (or cut, when a word is longer),
// continuation lines indented two more than the line. Tabs become spaces
// first. Everything reaches w through writeText.
type foldWriter struct {
	w     io.Writer
	width int
	buf   []byte
}

func newFoldWriter(w io.Writer, width int) *foldWriter { return &foldWriter{w: w, width: width} }

func (f *foldWriter) Write(p []byte) (int, error) {
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(f.buf[:i])
		f.buf = f.buf[i+1:]
		if err := writeText(f.w, fold(line, f.width)); err != nil {
			return 0, err
		}
	}
}

// Flush ends a last line that has no newline.
func (f *foldWriter) Flush() error {
	if len(f.buf) == 0 {
		return nil
	}
	line := string(f.buf)
	f.buf = f.buf[:0]
	return writeText(f.w, fold(line, f.width))
}

// fold returns line as lines of at most width characters, each ending in
// a newline.
func fold(line string, width int) string {
	line = expandTabs(line)
	if utf8.RuneCountInString(line) <= width {
		return line + "\n"
	}
	indent := len(line) - len(strings.TrimLeft(line, " "))
	cont := strings.Repeat(" ", min(indent+2, width/4))
	var out []string
	rs := []rune(line)
	for first := true; len(rs) > 0; first = false {
		room, lead, prefix := width, indent, ""
		if !first {
			room, lead, prefix = width-len(cont), 0, cont
		}
		if len(rs) <= room {
			out = append(out, prefix+strings.TrimRight(string(rs), " "))
			break
		}
		cut := room
		for i := room; i > lead; i-- {
			if rs[i] == ' ' {
				cut = i
				break
			}
		}
		out = append(out, prefix+strings.TrimRight(string(rs[:cut]), " "))
		rs = rs[cut:]
		for len(rs) > 0 && rs[0] == ' ' {
			rs = rs[1:]
		}
	}
	return strings.Join(out, "\n") + "\n"
}

func expandTabs(s string) string {
	if !strings.Contains(s, "\t") {
		return s
	}
	out := make([]rune, 0, len(s)+8)
	for _, r := range s {
		if r != '\t' {
			out = append(out, r)
			continue
		}
		for n := 8 - len(out)%8; n > 0; n-- {
			out = append(out, ' ')
		}
	}
	return string(out)
}

// printSection prints a JSON value whatever its shape, keys in the order
// the gateway sent them: "key  value" a line, nested objects indented
// under their key, lists of values on one line, lists of objects as items
// headed "-". It shows a status section this program knows nothing of
// (the board's, say) without a printer of its own.
func printSection(w io.Writer, raw json.RawMessage) error {
	v, err := decodeOrdered(json.NewDecoder(bytes.NewReader(raw)))
	if err != nil {
		return fmt.Errorf("bad section: %w", err)
	}
	printValue(w, v, "")
	return nil
}

// member is one key of an object, in order.
type member struct {
	key string
	val any // scalar (string, json.Number, bool, nil), []member or []any
}

func decodeOrdered(d *json.Decoder) (any, error) {
	d.UseNumber()
	return decodeValue(d, 0)
}

func decodeValue(d *json.Decoder, depth int) (any, error) {
	if depth > 16 {
		return nil, fmt.Errorf("nested deeper than 16")
	}
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var ms []member
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				ms = append(ms, member{key: fmt.Sprint(k), val: v})
			}
			_, err := d.Token()
			return ms, err
		case '[':
			vs := []any{}
			for d.More() {
				v, err := decodeValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				vs = append(vs, v)
			}
			_, err := d.Token()
			return vs, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	}
	return tok, nil
}

func scalar(v any) (string, bool) {
	switch t := v.(type) {
	case nil:
		return "-", true
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return fmt.Sprint(t), true
	case []any:
		parts := make([]string, 0, len(t))
		for _, x := range t {
			s, ok := scalar(x)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		if len(parts) == 0 {
			return "none", true
		}
		return strings.Join(parts, ", "), true
	case []member:
		if len(t) == 0 {
			return "-", true
		}
	}
	return "", false
}

func printValue(w io.Writer, v any, indent string) {
	switch t := v.(type) {
	case []member:
		width := 0
		for _, m := range t {
			width = max(width, min(utf8.RuneCountInString(m.key), 20))
		}
		for _, m := range t {
			if s, ok := scalar(m.val); ok {
				printf(w, "%s%-*s  %s\n", indent, width, m.key, s)
				continue
			}
			printf(w, "%s%s\n", indent, m.key)
			printValue(w, m.val, indent+"  ")
		}
	case []any:
		for _, x := range t {
			if s, ok := scalar(x); ok {
				printf(w, "%s- %s\n", indent, s)
				continue
			}
			printf(w, "%s-\n", indent)
			printValue(w, x, indent+"  ")
		}
	default:
		s, _ := scalar(v)
		printf(w, "%s%s\n", indent, s)
	}
}

// crlfWriter ends lines with CR LF, as a terminal in raw mode needs, for
// what is written past term.Terminal (which does the same for its own
// output, and redraws its prompt after each write).
type crlfWriter struct{ w io.Writer }

func (c crlfWriter) Write(p []byte) (int, error) {
	lines := strings.Split(string(p), "\n")
	for i, l := range lines {
		if err := writeText(c.w, l); err != nil {
			return 0, err
		}
		if i < len(lines)-1 {
			printf(c.w, "\r\n")
		}
	}
	return len(p), nil
}
