package siem

import (
	"strconv"

	"github.com/weirgw/weir/event"
)

// LEEFTimeFormat is the devTimeFormat every LEEF record names (Java's
// SimpleDateFormat, as QRadar reads it): milliseconds, UTC as Z. The full
// nanoseconds ride in weirTime.
const LEEFTimeFormat = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"

// LEEF encodes IBM QRadar's Log Event Extended Format, version 2.0:
//
//	LEEF:2.0|Vendor|Product|Version|EventID|Delimiter|attr=value<d>attr=value...
type LEEF struct {
	cfg   EncodingConfig
	delim byte
}

// Format is FormatLEEF.
func (*LEEF) Format() Format { return FormatLEEF }

// Append appends e as one LEEF line (no line end).
func (l *LEEF) Append(b []byte, e *event.Event) []byte {
	ci := ClassOf(e).info()
	b = append(b, "LEEF:2.0|"...)
	for _, h := range [...]string{l.cfg.Vendor, l.cfg.Product, l.cfg.Version, ci.name} {
		b = appendText(b, h, cefHeaderSpecial, cefHeaderEscape)
		b = append(b, '|')
	}
	if l.delim == '\t' {
		b = append(b, "x09"...)
	} else {
		b = append(b, l.delim)
	}
	b = append(b, '|')
	special, esc := string([]byte{l.delim, '\n', '\r'}), leefSpace
	b = append(b, "cat="...)
	b = append(b, ci.cat...)
	b = l.attr(b, "sev")
	b = strconv.AppendInt(b, int64(leefSeverity[sev(e)]), 10)
	b = l.attr(b, "devTime")
	b = appendRFC3339(b, e.Time, 9)
	b = append(b[:len(b)-7], 'Z') // milliseconds, as LEEFTimeFormat says
	b = l.attr(b, "devTimeFormat")
	b = append(b, LEEFTimeFormat...)
	if e.Host != "" {
		b = l.attr(b, "identHostName")
		b = appendText(b, e.Host, special, esc)
	}
	if ip, ok := peerIP(e); ok {
		b = l.attr(b, "src")
		b = ip.AppendTo(b)
	}
	if p := filePath(e); p != "" {
		b = l.attr(b, "filePath")
		b = appendText(b, p, special, esc)
	}
	b = l.attr(b, "msg")
	b = appendText(b, e.Message, special, esc)
	b = l.attr(b, "weirGateway")
	b = append(b, e.Gateway...)
	b = l.attr(b, "weirId")
	b = appendDedupeID(b, e)
	b = l.attr(b, "weirSeq")
	b = strconv.AppendUint(b, e.Seq, 10)
	b = l.attr(b, "weirSource")
	b = appendText(b, e.Source, special, esc)
	b = l.attr(b, "weirTime")
	b = appendRFC3339(b, e.Time, 9)
	b = l.attr(b, "weirTimeQuality")
	b = appendQuality(b, e.Quality)
	if e.Quality.ErrorBound >= 0 {
		b = l.attr(b, "weirTimeErrorNs")
		b = strconv.AppendInt(b, e.Quality.ErrorBound, 10)
	}
	b = l.attr(b, "weirChecksum")
	b = append(b, e.Checksum.String()...)
	if len(e.Fields) > 0 {
		b = l.attr(b, "weirFields")
		b = appendEscapedJSONFields(b, e.Fields, special, esc)
	}
	if !clean(e.Message) || hasLineEndOrDelim(e.Message, l.delim) {
		b = l.attr(b, "weirMsgBase64")
		b = appendBase64(b, e.Message)
	}
	return b
}

func (l *LEEF) attr(b []byte, key string) []byte {
	b = append(b, l.delim)
	b = append(b, key...)
	return append(b, '=')
}

// leefSpace writes a value's delimiter or line end: LEEF has no
// escapes, so they become spaces (the exact message rides in base64).
func leefSpace(b []byte, _ byte) []byte { return append(b, ' ') }

func hasLineEndOrDelim(s string, d byte) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\n' || c == '\r' || c == d {
			return true
		}
	}
	return false
}
