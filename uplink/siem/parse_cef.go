package siem

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// CEFRecord is a CEF line read back: the header and the extension, each
// value unescaped.
type CEFRecord struct {
	Vendor, Product, Version, SignatureID, Name string
	Severity                                    int
	Keys                                        []string // in the order given
	Ext                                         map[string]string
}

// ParseCEF reads one CEF:0 line strictly: seven header fields separated
// by unescaped '|' (escapes \\ and \| only), a severity 0..10, then
// key=value pairs separated by single spaces, keys of letters, digits
// and '_', values with '\', '=' and line ends escaped (\\ \= \n \r) and
// no other escape, no key twice. It is the check the CEF encoder's
// golden, fuzz and interop tests apply.
func ParseCEF(line string) (*CEFRecord, error) {
	if !utf8.ValidString(line) {
		return nil, errors.New("cef: not UTF-8")
	}
	rest, ok := strings.CutPrefix(line, "CEF:0|")
	if !ok {
		return nil, errors.New("cef: does not start with CEF:0|")
	}
	var hdr [6]string
	for i := range hdr {
		v, n, err := cefHeaderField(rest)
		if err != nil {
			return nil, fmt.Errorf("cef: header field %d: %w", i+2, err)
		}
		hdr[i], rest = v, rest[n:]
	}
	r := &CEFRecord{Vendor: hdr[0], Product: hdr[1], Version: hdr[2], SignatureID: hdr[3], Name: hdr[4], Ext: map[string]string{}}
	sevN, err := strconv.Atoi(hdr[5])
	if err != nil || sevN < 0 || sevN > 10 || strconv.Itoa(sevN) != hdr[5] {
		return nil, fmt.Errorf("cef: severity %q is not 0..10", hdr[5])
	}
	r.Severity = sevN
	for rest != "" {
		klen := cefKeyLen(rest)
		if klen == 0 || klen >= len(rest) || rest[klen] != '=' {
			return nil, fmt.Errorf("cef: extension: no key=value at %q", clip(rest))
		}
		key := rest[:klen]
		rest = rest[klen+1:]
		var val strings.Builder
		i := 0
		for ; i < len(rest); i++ {
			c := rest[i]
			switch c {
			case '\\':
				if i+1 >= len(rest) {
					return nil, fmt.Errorf("cef: %s: value ends in a lone '\\'", key)
				}
				i++
				switch rest[i] {
				case '\\', '=':
					val.WriteByte(rest[i])
				case 'n':
					val.WriteByte('\n')
				case 'r':
					val.WriteByte('\r')
				default:
					return nil, fmt.Errorf("cef: %s: unknown escape \\%c", key, rest[i])
				}
				continue
			case '=':
				return nil, fmt.Errorf("cef: %s: unescaped '=' in its value", key)
			case '\n', '\r':
				return nil, fmt.Errorf("cef: %s: raw line end in its value", key)
			case ' ':
				if n := cefKeyLen(rest[i+1:]); n > 0 && i+1+n < len(rest) && rest[i+1+n] == '=' {
					goto done
				}
			}
			val.WriteByte(c)
		}
	done:
		if _, dup := r.Ext[key]; dup {
			return nil, fmt.Errorf("cef: key %s given twice", key)
		}
		r.Keys = append(r.Keys, key)
		r.Ext[key] = val.String()
		rest = rest[i:]
		if rest != "" {
			rest = rest[1:] // the separating space
		}
	}
	return r, nil
}

func cefKeyLen(s string) int {
	i := 0
	for i < len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			break
		}
		i++
	}
	return i
}

// cefHeaderField reads up to the next unescaped '|' and returns the
// value and the bytes consumed, '|' included.
func cefHeaderField(s string) (string, int, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) || (s[i+1] != '\\' && s[i+1] != '|') {
				return "", 0, errors.New("a '\\' escapes neither '\\' nor '|'")
			}
			i++
			b.WriteByte(s[i])
		case '|':
			return b.String(), i + 1, nil
		case '\n', '\r':
			return "", 0, errors.New("raw line end")
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errors.New("no closing '|'")
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
