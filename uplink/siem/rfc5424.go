package siem

import (
	"strconv"
	"unicode/utf8"

	"github.com/weirgw/weir/event"
)

// BOM starts an RFC 5424 MSG that is UTF-8.
const BOM = "\xef\xbb\xbf"

// RFC5424 encodes syslog messages per RFC 5424:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [weir@PEN ...][weirFields@PEN ...] BOM MSG
//
// The timestamp is the record's (the gateway's PTP clock) in UTC with
// microseconds; weir@PEN carries the dedupe id, the sequence, the source,
// the time quality and the full nanoseconds, weirFields@PEN one parameter
// per field.
type RFC5424 struct{ cfg EncodingConfig }

// Format is FormatRFC5424.
func (*RFC5424) Format() Format { return FormatRFC5424 }

// Header lengths RFC 5424 sets.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
	maxSDName   = 32
)

// Append appends e as one RFC 5424 message, without framing.
func (s *RFC5424) Append(b []byte, e *event.Event) []byte {
	b = s.AppendHeader(b, e)
	return s.appendSD(b, e)
}

// AppendHeader appends PRI, VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID
// and MSGID, without the space after MSGID: the header that carries CEF,
// LEEF or ECS as its MSG over syslog.
func (s *RFC5424) AppendHeader(b []byte, e *event.Event) []byte {
	c := ClassOf(e)
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(facility(e, s.cfg.Facility)*8+sev(e)), 10)
	b = append(b, ">1 "...)
	b = appendRFC3339(b, e.Time, 6)
	b = append(b, ' ')
	host := e.Host
	if host == "" {
		host = e.Gateway
	}
	b = appendHeaderField(b, host, maxHostname)
	b = append(b, ' ')
	app, proc := "weir", ""
	if c == ClassSyslog {
		if a := stringField(e, "app_name"); a != "" {
			app = a
		}
		proc = stringField(e, "procid")
	}
	b = appendHeaderField(b, app, maxAppName)
	b = append(b, ' ')
	b = appendHeaderField(b, proc, maxProcID)
	b = append(b, ' ')
	return appendHeaderField(b, c.String(), maxMsgID)
}

func (s *RFC5424) appendSD(b []byte, e *event.Event) []byte {
	b = append(b, " [weir@"...)
	b = append(b, s.cfg.EnterpriseID...)
	b = append(b, ` id="`...)
	b = appendDedupeID(b, e)
	b = append(b, `" gw="`...)
	b = append(b, e.Gateway...)
	b = append(b, `" seq="`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `" src="`...)
	b = appendText(b, e.Source, sdSpecial, sdEscape)
	b = append(b, `" kind="`...)
	b = append(b, e.Kind.String()...)
	b = append(b, `" time="`...)
	b = appendRFC3339(b, e.Time, 9)
	b = append(b, `" tqSrc="`...)
	b = append(b, e.Quality.Source.String()...)
	b = append(b, `" tqState="`...)
	b = append(b, e.Quality.State.String()...)
	if e.Quality.ErrorBound >= 0 {
		b = append(b, `" tqErr="`...)
		b = strconv.AppendInt(b, e.Quality.ErrorBound, 10)
	}
	b = append(b, `" cs="`...)
	b = append(b, e.Checksum.String()...)
	b = append(b, `"]`...)
	if len(e.Fields) > 0 {
		b = append(b, "[weirFields@"...)
		b = append(b, s.cfg.EnterpriseID...)
		for i := range e.Fields {
			f := &e.Fields[i]
			b = append(b, ' ')
			b = appendSDName(b, f.Key)
			b = append(b, '=', '"')
			b = appendValueText(b, f.Value, sdSpecial, sdEscape)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	if e.Message != "" {
		b = append(b, ' ')
		if utf8.ValidString(e.Message) {
			b = append(b, BOM...)
		}
		b = append(b, e.Message...)
	}
	return b
}

// AppendFrame appends msg with RFC 5425's octet counting: its length in
// decimal, a space, the message.
func AppendFrame(b, msg []byte) []byte {
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, ' ')
	return append(b, msg...)
}

// appendHeaderField writes a header field as PRINTUSASCII (33..126), any
// other byte as '_', at most max bytes; empty is the NILVALUE "-".
func appendHeaderField(b []byte, s string, max int) []byte {
	if s == "" {
		return append(b, '-')
	}
	if len(s) > max {
		s = s[:max]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// appendSDName writes a field key as an SD-NAME: PRINTUSASCII except '=',
// ' ', ']' and '"' (those become '_'), at most 32 bytes; empty becomes
// "_".
func appendSDName(b []byte, s string) []byte {
	if s == "" {
		return append(b, '_')
	}
	if len(s) > maxSDName {
		s = s[:maxSDName]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// SDName is a field key as the RFC 5424 encoder writes it.
func SDName(key string) string { return string(appendSDName(nil, key)) }

// HeaderField is a header value as the RFC 5424 encoder writes it.
func HeaderField(s string, max int) string { return string(appendHeaderField(nil, s, max)) }

// sdSpecial are the characters RFC 5424 escapes in PARAM-VALUE.
const sdSpecial = `"\]`

func sdEscape(b []byte, c byte) []byte { return append(b, '\\', c) }
