package process

import (
	"strings"

	"github.com/weirgw/weir/event"
)

// parseSD reads RFC 5424 structured data, [id name="value" ...] blocks
// starting at the text's first '[', into fields sd.<id>.<name>. Values
// unescape \" \\ and \]. A block that breaks the grammar ends the
// reading; what was read before it is kept.
func parseSD(s string, add func(string, event.Value) bool) bool {
	i := strings.IndexByte(s, '[')
	if i < 0 {
		return false
	}
	s = s[i:]
	found := false
	for strings.HasPrefix(s, "[") {
		s = s[1:]
		end := strings.IndexAny(s, " ]")
		if end <= 0 {
			return found
		}
		id := s[:end]
		s = s[end:]
		for strings.HasPrefix(s, " ") {
			s = s[1:]
			eq := strings.IndexByte(s, '=')
			if eq <= 0 || len(s) < eq+2 || s[eq+1] != '"' {
				return found
			}
			name := s[:eq]
			val, rest, ok := sdValue(s[eq+2:])
			if !ok {
				return found
			}
			s = rest
			key := "sd." + id + "." + name
			if validKey(key) {
				found = true
				if !add(key, str(val)) {
					return true
				}
			}
		}
		if !strings.HasPrefix(s, "]") {
			return found
		}
		s = s[1:]
	}
	return found
}

// sdValue reads a PARAM-VALUE up to its closing quote.
func sdValue(s string) (val, rest string, ok bool) {
	i := strings.IndexAny(s, `"\`)
	if i >= 0 && s[i] == '"' {
		return s[:i], s[i+1:], true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), s[i+1:], true
		case c == '\\' && i+1 < len(s) && strings.IndexByte(`"\]`, s[i+1]) >= 0:
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}
