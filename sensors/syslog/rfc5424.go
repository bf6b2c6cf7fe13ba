package syslog

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
)

// Parse5424 parses s as an RFC 5424 message:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [SP MSG]
//
// into m, reusing m.SD's backing array. The error names the part that is
// wrong; m is then incomplete and must not be used.
func Parse5424(s string, m *Message) error {
	m.reset()
	pri, rest, ok, err := parsePRI(s)
	if err != nil {
		return fmt.Errorf("rfc5424: %w", err)
	}
	if !ok {
		return errors.New("rfc5424: pri: missing")
	}
	m.Format = Format5424
	m.Facility, m.Severity = splitPRI(pri)
	if len(rest) < 2 || rest[0] != '1' || rest[1] != ' ' {
		return errors.New("rfc5424: version: not \"1 \"")
	}
	rest = rest[2:]

	var ts string
	if ts, rest, err = token(rest, "timestamp", 64); err != nil {
		return err
	}
	if ts != "-" {
		t, err := parseRFC3339(ts)
		if err != nil {
			return fmt.Errorf("rfc5424: timestamp %q: %w", ts, err)
		}
		m.Time = t
	}
	fields := [...]struct {
		dst  *string
		name string
		max  int
	}{{&m.Hostname, "hostname", 255}, {&m.AppName, "app-name", 48}, {&m.ProcID, "procid", 128}, {&m.MsgID, "msgid", 32}}
	for _, f := range fields {
		var v string
		if v, rest, err = token(rest, f.name, f.max); err != nil {
			return err
		}
		if v != "-" {
			*f.dst = v
		}
	}
	if rest, err = parseSD(rest, m); err != nil {
		return err
	}
	switch {
	case rest == "":
	case rest[0] == ' ':
		m.Msg = strings.TrimPrefix(rest[1:], bom)
	default:
		return fmt.Errorf("rfc5424: structured data: %q after it, want a space", rest[0])
	}
	return nil
}

// token reads a header field of 1 to max printable ASCII characters and
// the space after it.
func token(s, name string, max int) (tok, rest string, err error) {
	i := 0
	for i < len(s) && s[i] != ' ' {
		if !isPrintASCII(s[i]) {
			return "", s, fmt.Errorf("rfc5424: %s: byte 0x%02x is not printable ASCII", name, s[i])
		}
		i++
	}
	switch {
	case i == 0:
		return "", s, fmt.Errorf("rfc5424: %s: empty", name)
	case i > max:
		return "", s, fmt.Errorf("rfc5424: %s: %d characters, more than %d", name, i, max)
	case i == len(s):
		return "", s, fmt.Errorf("rfc5424: %s: message ends after it", name)
	}
	return s[:i], s[i+1:], nil
}

// parseSD reads STRUCTURED-DATA at the start of s into m.SD and returns
// what follows it.
func parseSD(s string, m *Message) (string, error) {
	if s == "" {
		return s, errors.New("rfc5424: structured data: missing")
	}
	if s[0] == '-' {
		return s[1:], nil
	}
	if s[0] != '[' {
		return s, fmt.Errorf("rfc5424: structured data: starts with %q, want '[' or '-'", s[0])
	}
	for len(s) > 0 && s[0] == '[' {
		id, rest, err := sdName(s[1:], "sd-id", "")
		if err != nil {
			return s, err
		}
		s = rest
		params := 0
		for {
			if s == "" {
				return s, fmt.Errorf("rfc5424: structured data [%s: no closing ']'", id)
			}
			if s[0] == ']' {
				s = s[1:]
				break
			}
			if s[0] != ' ' {
				return s, fmt.Errorf("rfc5424: structured data [%s: %q where a space or ']' belongs", id, s[0])
			}
			var name, val string
			if name, s, err = sdName(s[1:], "param-name in [", id); err != nil {
				return s, err
			}
			if len(s) < 2 || s[0] != '=' || s[1] != '"' {
				return s, fmt.Errorf("rfc5424: structured data [%s %s: no '=\"' after the name", id, name)
			}
			if val, s, err = sdValue(s[2:]); err != nil {
				return s, fmt.Errorf("rfc5424: structured data [%s %s: %w", id, name, err)
			}
			params++
			m.addSD(id, name, val)
		}
		if params == 0 {
			m.addSD(id, "", "")
		}
	}
	return s, nil
}

func (m *Message) addSD(id, name, val string) {
	if len(m.SD) >= maxSDFields {
		m.SDTruncated = true
		return
	}
	m.SD = append(m.SD, event.Str(m.sdKey(id, name), val))
}

// maxKeyCache bounds the SD keys a Message remembers.
const maxKeyCache = 256

// sdKey returns "sd.<id>.<name>" ("sd.<id>" without a name). Keys are
// cached, since a sender repeats the same few, so a steady stream
// allocates none.
func (m *Message) sdKey(id, name string) string {
	b := append(append(m.kbuf[:0], "sd."...), id...)
	if name != "" {
		b = append(append(b, '.'), name...)
	}
	m.kbuf = b
	if k, ok := m.keys[string(b)]; ok {
		return k
	}
	k := string(b)
	if m.keys == nil {
		m.keys = map[string]string{}
	}
	if len(m.keys) < maxKeyCache {
		m.keys[k] = k
	}
	return k
}

// sdName reads an SD-NAME: 1 to 32 printable ASCII characters except
// '=', ' ', ']' and '"'. what and id name it in errors.
func sdName(s, what, id string) (name, rest string, err error) {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '=' || c == ' ' || c == ']' || c == '"' {
			break
		}
		if !isPrintASCII(c) {
			return "", s, fmt.Errorf("rfc5424: structured data: %s%s: byte 0x%02x is not printable ASCII", what, id, c)
		}
		i++
	}
	switch {
	case i == 0:
		return "", s, fmt.Errorf("rfc5424: structured data: %s%s: empty", what, id)
	case i > 32:
		return "", s, fmt.Errorf("rfc5424: structured data: %s%s: %d characters, more than 32", what, id, i)
	}
	return s[:i], s[i:], nil
}

// sdValue reads a PARAM-VALUE up to its closing '"', undoing the escapes
// \" \\ and \]; a backslash before anything else stays, as RFC 5424
// section 6.3.3 says. It allocates only when there are escapes.
func sdValue(s string) (val, rest string, err error) {
	esc := false
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\' || s[i+1] == ']') {
			esc = true
			i++
			continue
		}
		if c == '"' {
			break
		}
	}
	if i >= len(s) {
		return "", s, errors.New("value: no closing '\"'")
	}
	val, rest = s[:i], s[i+1:]
	if !esc {
		return val, rest, nil
	}
	var b strings.Builder
	b.Grow(len(val))
	for j := 0; j < len(val); j++ {
		c := val[j]
		if c == '\\' && j+1 < len(val) && (val[j+1] == '"' || val[j+1] == '\\' || val[j+1] == ']') {
			j++
			c = val[j]
		}
		b.WriteByte(c)
	}
	return b.String(), rest, nil
}

// parseRFC3339 reads RFC 5424's TIMESTAMP (RFC 3339 with "T", up to 9
// fraction digits and a "Z" or ±hh:mm offset) to ns since the epoch.
func parseRFC3339(s string) (int64, error) {
	// YYYY-MM-DDThh:mm:ss is 19 bytes, then [.frac] and Z or ±hh:mm.
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return 0, errors.New("not YYYY-MM-DDThh:mm:ss")
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return 0, errors.New("not YYYY-MM-DDThh:mm:ss")
	}
	rest := s[19:]
	ns := 0
	if rest != "" && rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 || n > 10 {
			return 0, errors.New("fraction of second: want 1 to 9 digits")
		}
		frac, _ := digits(rest[1:n])
		for k := n - 1; k < 9; k++ {
			frac *= 10
		}
		ns, rest = frac, rest[n:]
	}
	offset := 0
	switch {
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits(rest[1:3])
		om, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, errors.New("offset: not ±hh:mm")
		}
		offset = (oh*60 + om) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, errors.New("offset: want Z or ±hh:mm")
	}
	return civil(year, month, day, hour, minute, sec, ns, offset)
}

// civil checks the date and time fields and returns ns since the epoch
// for a time at the given UTC offset in seconds. A leap second (60) is
// accepted and lands on the next second.
func civil(year, month, day, hour, minute, sec, ns, offset int) (int64, error) {
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return 0, errors.New("a field is out of range")
	}
	// time.UnixNano is defined only between 1678 and 2262.
	if year < 1678 || year > 2261 {
		return 0, fmt.Errorf("year %d is outside 1678-2261", year)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, 0, 0, time.UTC)
	if t.Day() != day {
		return 0, fmt.Errorf("day %d does not exist in %04d-%02d", day, year, month)
	}
	return t.UnixNano() + int64(sec)*1e9 + int64(ns) - int64(offset)*1e9, nil
}

// digits parses a string of ASCII digits only.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, len(s) > 0
}
