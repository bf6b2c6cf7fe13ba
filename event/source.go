package event

import "fmt"

// MaxSourceLen bounds a configured source name.
const MaxSourceLen = 64

// CheckSourceName says what is wrong with a configured input name that
// becomes a record's Source (and its checkpoint keys): at most 64 of
// letters, digits, '.', '_' and '-', so it reads the same in every sink.
func CheckSourceName(s string) error {
	if len(s) > MaxSourceLen {
		return fmt.Errorf("%q is longer than %d", s, MaxSourceLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q may hold only letters, digits, '.', '_' and '-' (at most %d)", s, MaxSourceLen)
		}
	}
	return nil
}
