package syslog

import (
	"errors"

	"github.com/weirgw/weir/event"
)

// Format says which grammar a message was read with.
type Format uint8

const (
	FormatRaw  Format = iota // not parsed: Message holds the whole raw message
	Format3164               // BSD syslog and its common variants
	Format5424               // RFC 5424
)

var formatNames = [...]string{"raw", "rfc3164", "rfc5424"}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "format(?)"
}

// defaultPRI is what RFC 3164 section 4.3.3 has a relay assume for a
// message without one: facility user, severity notice.
const defaultPRI = 13

// parsePRI reads "<" 1*3DIGIT ">" at the start of s, returning the value
// and the rest. ok is false when s does not start with "<"; err is set
// when it does but the PRI is malformed or above 191.
func parsePRI(s string) (pri int, rest string, ok bool, err error) {
	if len(s) == 0 || s[0] != '<' {
		return 0, s, false, nil
	}
	i := 1
	for i < len(s) && i <= 4 && isDigit(s[i]) {
		pri = pri*10 + int(s[i]-'0')
		i++
	}
	switch {
	case i == 1:
		return 0, s, true, errors.New("pri: no digits after '<'")
	case i > 4:
		return 0, s, true, errors.New("pri: more than 3 digits")
	case i >= len(s) || s[i] != '>':
		return 0, s, true, errors.New("pri: no '>' after the digits")
	case pri > 191:
		return 0, s, true, errors.New("pri: value above 191")
	}
	return pri, s[i+1:], true, nil
}

func splitPRI(pri int) (facility uint8, sev event.Severity) {
	return uint8(pri >> 3), event.Severity(pri & 7)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isPrintASCII is RFC 5424's PRINTUSASCII: %d33-126.
func isPrintASCII(c byte) bool { return 33 <= c && c <= 126 }
