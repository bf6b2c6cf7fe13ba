package siem

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/weirgw/weir/event"
)

// isControl reports the characters no text format carries as they are:
// C0 controls other than tab and line ends, and DEL.
func isControl(r rune) bool {
	return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f
}

// clean reports whether s goes into a text format unchanged: valid UTF-8
// without the controls isControl names.
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return utf8.ValidString(s[i:]) && !hasControl(s[i:])
		}
		if isControl(rune(c)) {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if isControl(rune(s[i])) {
			return true
		}
	}
	return false
}

// appendText appends s with each invalid byte and control character as
// U+FFFD and each ASCII character in special passed to esc (which
// appends it escaped as its format needs); everything else, runs of
// plain ASCII and valid multi-byte runes, goes as it is.
func appendText(b []byte, s, special string, esc func(b []byte, c byte) []byte) []byte {
	run := 0 // start of the pending run of bytes that go as they are
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if isControl(rune(c)) {
				b = append(append(b, s[run:i]...), "\uFFFD"...)
				i++
				run = i
			} else if strings.IndexByte(special, c) >= 0 {
				b = esc(append(b, s[run:i]...), c)
				i++
				run = i
			} else {
				i++
			}
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(append(b, s[run:i]...), "\uFFFD"...)
			i++
			run = i
			continue
		}
		i += n
	}
	return append(b, s[run:]...)
}

// Sanitize is s as the text formats carry it: invalid bytes and control
// characters (other than tab and line ends) as U+FFFD.
func Sanitize(s string) string {
	if clean(s) {
		return s
	}
	return string(appendText(nil, s, "", nil))
}

func appendBase64(b []byte, s string) []byte {
	n := base64.StdEncoding.EncodedLen(len(s))
	b = append(b, make([]byte, n)...)
	base64.StdEncoding.Encode(b[len(b)-n:], []byte(s))
	return b
}

// appendJSONString appends s as a JSON string (RFC 8259): invalid bytes
// and control characters become U+FFFD, as in the other formats, except
// tab and line ends, which JSON escapes.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendText(b, s, "\"\\\n\r\t", jsonEscape)
	return append(b, '"')
}

func jsonEscape(b []byte, c byte) []byte {
	switch c {
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', c)
}

// appendJSONValue appends a field's value as JSON: numbers as numbers
// (NaN and infinities, which JSON lacks, as strings), bytes as hex.
func appendJSONValue(b []byte, v event.Value) []byte {
	switch v.Type {
	case event.TypeString:
		return appendJSONString(b, v.Str)
	case event.TypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case event.TypeUint:
		return strconv.AppendUint(b, v.Num, 10)
	case event.TypeFloat:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return appendJSONString(b, v.String())
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case event.TypeBool:
		return strconv.AppendBool(b, v.Bool())
	}
	return appendJSONString(b, v.String())
}

// appendFieldsJSON appends the record's fields as one JSON object, in
// their order.
func appendFieldsJSON(b []byte, fs []event.Field) []byte {
	b = append(b, '{')
	for i := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, fs[i].Key)
		b = append(b, ':')
		b = appendJSONValue(b, fs[i].Value)
	}
	return append(b, '}')
}

// appendValueText appends a field's value as text: strings sanitized,
// bytes as hex, numbers as Value.String gives them.
func appendValueText(b []byte, v event.Value, special string, esc func(b []byte, c byte) []byte) []byte {
	if v.Type == event.TypeString {
		return appendText(b, v.Str, special, esc)
	}
	return appendText(b, v.String(), special, esc)
}
