package process

import (
	"strings"

	"github.com/weirgw/weir/event"
)

// parseKV reads key=value pairs separated by spaces; a value may be
// double-quoted, with \" and \\ inside. Words that are not pairs are
// passed over.
func parseKV(s string, add func(string, event.Value) bool) bool {
	found := false
	for s != "" {
		s = strings.TrimLeft(s, " \t")
		eq := strings.IndexByte(s, '=')
		sp := strings.IndexAny(s, " \t")
		if eq <= 0 || sp >= 0 && sp < eq {
			if sp < 0 {
				break
			}
			s = s[sp:]
			continue
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			v, rest, ok := unquote(s[1:])
			if !ok {
				val, s = s, "" // unterminated: the rest, as it is
			} else {
				val, s = v, rest
			}
		} else {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		if !validKey(key) {
			continue
		}
		found = true
		if !add(key, str(val)) {
			break
		}
	}
	return found
}

// unquote reads a double-quoted value up to its closing quote.
func unquote(s string) (val, rest string, ok bool) {
	i := strings.IndexAny(s, `"\`)
	if i >= 0 && s[i] == '"' {
		return s[:i], s[i+1:], true // no escapes: no copy
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], true
		case '\\':
			if i+1 < len(s) {
				i++
				c = s[i]
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// validKey says whether k makes a field key: letters, digits, _ . -
// and at most 128 bytes.
func validKey(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
