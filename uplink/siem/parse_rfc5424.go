package siem

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SyslogMessage is an RFC 5424 message read back.
type SyslogMessage struct {
	Priority                         int
	Timestamp                        time.Time // zero for the NILVALUE
	Hostname, AppName, ProcID, MsgID string    // "-" for the NILVALUE
	SD                               []SDElement
	BOM                              bool   // MSG was MSG-UTF8
	Msg                              []byte // without the BOM
}

// SDElement is one structured data element.
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one parameter, its value unescaped.
type SDParam struct{ Name, Value string }

// Param returns the first value of name in the element with id.
func (m *SyslogMessage) Param(id, name string) (string, bool) {
	for _, e := range m.SD {
		if e.ID != id {
			continue
		}
		for _, p := range e.Params {
			if p.Name == name {
				return p.Value, true
			}
		}
	}
	return "", false
}

// ParseRFC5424 reads one message strictly by RFC 5424's ABNF: PRI 0..191
// without leading zeros, VERSION 1, a full RFC 3339 timestamp with at
// most 6 fractional digits, header fields of PRINTUSASCII within their
// lengths, structured data whose values escape '"', '\' and ']' and are
// UTF-8, and a MSG that is UTF-8 when it starts with the BOM.
func ParseRFC5424(b []byte) (*SyslogMessage, error) {
	p := &sp{b: b}
	m := &SyslogMessage{}
	if !p.eat('<') {
		return nil, errors.New("rfc5424: no PRI")
	}
	digits := p.digits(3)
	if digits == "" || (len(digits) > 1 && digits[0] == '0') || !p.eat('>') {
		return nil, errors.New("rfc5424: bad PRI")
	}
	m.Priority, _ = strconv.Atoi(digits)
	if m.Priority > 191 {
		return nil, fmt.Errorf("rfc5424: PRI %d above 191", m.Priority)
	}
	if !p.eat('1') || !p.eat(' ') {
		return nil, errors.New("rfc5424: VERSION is not 1")
	}
	ts, err := p.token(64)
	if err != nil {
		return nil, fmt.Errorf("rfc5424: TIMESTAMP: %w", err)
	}
	if ts != "-" {
		if m.Timestamp, err = parseTimestamp(ts); err != nil {
			return nil, fmt.Errorf("rfc5424: TIMESTAMP %q: %w", ts, err)
		}
	}
	for _, f := range []struct {
		name string
		dst  *string
		max  int
	}{{"HOSTNAME", &m.Hostname, maxHostname}, {"APP-NAME", &m.AppName, maxAppName}, {"PROCID", &m.ProcID, maxProcID}, {"MSGID", &m.MsgID, maxMsgID}} {
		if !p.eat(' ') {
			return nil, fmt.Errorf("rfc5424: no space before %s", f.name)
		}
		if *f.dst, err = p.token(f.max); err != nil {
			return nil, fmt.Errorf("rfc5424: %s: %w", f.name, err)
		}
	}
	if !p.eat(' ') {
		return nil, errors.New("rfc5424: no space before STRUCTURED-DATA")
	}
	if !p.eat('-') {
		for p.peek() == '[' {
			el, err := p.element()
			if err != nil {
				return nil, fmt.Errorf("rfc5424: STRUCTURED-DATA: %w", err)
			}
			m.SD = append(m.SD, el)
		}
		if len(m.SD) == 0 {
			return nil, errors.New("rfc5424: STRUCTURED-DATA is neither - nor an element")
		}
	}
	if p.i == len(b) {
		return m, nil
	}
	if !p.eat(' ') {
		return nil, errors.New("rfc5424: no space before MSG")
	}
	msg := b[p.i:]
	if rest, ok := bytes.CutPrefix(msg, []byte(BOM)); ok {
		if !utf8.Valid(rest) {
			return nil, errors.New("rfc5424: MSG starts with the BOM but is not UTF-8")
		}
		m.BOM, msg = true, rest
	}
	m.Msg = msg
	return m, nil
}

type sp struct {
	b []byte
	i int
}

func (p *sp) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *sp) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *sp) digits(max int) string {
	s := p.i
	for p.i < len(p.b) && p.i-s < max && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return string(p.b[s:p.i])
}

// token reads 1..max PRINTUSASCII up to a space or the end.
func (p *sp) token(max int) (string, error) {
	s := p.i
	for p.i < len(p.b) && p.b[p.i] != ' ' {
		if c := p.b[p.i]; c < 33 || c > 126 {
			return "", fmt.Errorf("byte 0x%02x is not printable US-ASCII", c)
		}
		p.i++
	}
	switch n := p.i - s; {
	case n == 0:
		return "", errors.New("empty")
	case n > max:
		return "", fmt.Errorf("%d bytes, more than %d", n, max)
	}
	return string(p.b[s:p.i]), nil
}

func (p *sp) name() (string, error) {
	s := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' || c == ' ' {
			break
		}
		p.i++
	}
	if n := p.i - s; n == 0 || n > maxSDName {
		return "", fmt.Errorf("SD-NAME of %d bytes (want 1..%d)", n, maxSDName)
	}
	return string(p.b[s:p.i]), nil
}

func (p *sp) element() (SDElement, error) {
	p.eat('[')
	var el SDElement
	id, err := p.name()
	if err != nil {
		return el, err
	}
	if strings.Count(id, "@") > 1 {
		return el, fmt.Errorf("SD-ID %q has more than one '@'", id)
	}
	el.ID = id
	for {
		if p.eat(']') {
			return el, nil
		}
		if !p.eat(' ') {
			return el, fmt.Errorf("%s: want ' ' or ']'", id)
		}
		n, err := p.name()
		if err != nil {
			return el, fmt.Errorf("%s: %w", id, err)
		}
		if !p.eat('=') || !p.eat('"') {
			return el, fmt.Errorf("%s: %s: want =\"", id, n)
		}
		var v []byte
		for {
			if p.i >= len(p.b) {
				return el, fmt.Errorf("%s: %s: value not closed", id, n)
			}
			c := p.b[p.i]
			p.i++
			if c == '"' {
				break
			}
			if c == ']' {
				return el, fmt.Errorf("%s: %s: unescaped ']' in a value", id, n)
			}
			if c == '\\' && p.i < len(p.b) {
				if e := p.b[p.i]; e == '"' || e == '\\' || e == ']' {
					c = e
					p.i++
				}
			}
			v = append(v, c)
		}
		if !utf8.Valid(v) {
			return el, fmt.Errorf("%s: %s: value is not UTF-8", id, n)
		}
		el.Params = append(el.Params, SDParam{Name: n, Value: string(v)})
	}
}

func parseTimestamp(s string) (time.Time, error) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		j := i + 1
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
		if n := j - i - 1; n < 1 || n > 6 {
			return time.Time{}, fmt.Errorf("%d fractional digits (want 1..6)", n)
		}
	}
	if len(s) < 20 || s[10] != 'T' {
		return time.Time{}, errors.New("not a full date and time")
	}
	return time.Parse(time.RFC3339Nano, s)
}

// ErrFrameTooLarge is a frame announcing more than the reader allows.
var ErrFrameTooLarge = errors.New("syslog frame larger than allowed")

// ReadFrame reads one RFC 5425 octet-counted frame: MSG-LEN (1..9
// digits, no leading zero, at most max), a space, then exactly that many
// bytes. Nothing is allocated by the length before it is checked.
func ReadFrame(r *bufio.Reader, max int) ([]byte, error) {
	n := 0
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if c == ' ' && i > 0 {
			break
		}
		if c < '0' || c > '9' || (i == 0 && c == '0') || i >= 9 {
			return nil, fmt.Errorf("syslog frame: bad length byte 0x%02x at %d", c, i)
		}
		n = n*10 + int(c-'0')
	}
	if n > max {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrFrameTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}
