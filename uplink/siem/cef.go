package siem

import (
	"bytes"
	"strconv"
	"time"

	"github.com/weirgw/weir/event"
)

// CEF encodes ArcSight's Common Event Format, version 0:
//
//	CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension
type CEF struct{ cfg EncodingConfig }

// Format is FormatCEF.
func (*CEF) Format() Format { return FormatCEF }

// Append appends e as one CEF line (no line end).
func (c *CEF) Append(b []byte, e *event.Event) []byte {
	ci := ClassOf(e).info()
	b = append(b, "CEF:0|"...)
	for _, h := range [...]string{c.cfg.Vendor, c.cfg.Product, c.cfg.Version, ci.signature, ci.cefName} {
		b = appendText(b, h, cefHeaderSpecial, cefHeaderEscape)
		b = append(b, '|')
	}
	b = strconv.AppendInt(b, int64(cefSeverity[sev(e)]), 10)
	b = append(b, '|')

	b = append(b, "rt="...)
	b = strconv.AppendInt(b, time.Unix(0, e.Time).UnixMilli(), 10)
	if e.Host != "" {
		b = cefText(b, "dvchost", e.Host)
	}
	b = cefText(b, "deviceExternalId", e.Gateway)
	b = append(b, " externalId="...)
	b = appendDedupeID(b, e) // gateway ids are letters, digits, '.', '_', '-' (and '@' for the collector's own)
	b = cefText(b, "cat", ci.cat)
	if ip, ok := peerIP(e); ok {
		b = append(b, " src="...)
		b = ip.AppendTo(b)
	}
	if p := filePath(e); p != "" {
		b = cefText(b, "filePath", p)
	}
	b = cefText(b, "msg", e.Message)
	b = append(b, " cn1Label=weirSeq cn1="...)
	b = strconv.AppendUint(b, e.Seq, 10)
	if e.Quality.ErrorBound >= 0 {
		b = append(b, " cn2Label=weirTimeErrorNs cn2="...)
		b = strconv.AppendInt(b, e.Quality.ErrorBound, 10)
	}
	b = append(b, " cs1Label=weirSource"...)
	b = cefText(b, "cs1", e.Source)
	b = append(b, " cs2Label=weirTimeQuality cs2="...)
	b = appendQuality(b, e.Quality)
	b = append(b, " cs3Label=weirChecksum cs3="...)
	b = append(b, e.Checksum.String()...)
	if len(e.Fields) > 0 {
		b = append(b, " cs4Label=weirFields cs4="...)
		b = appendEscapedJSONFields(b, e.Fields, cefValueSpecial, cefEscape)
	}
	if !clean(e.Message) {
		b = append(b, " cs5Label=weirMsgBase64 cs5="...)
		start := len(b)
		b = escapeTail(appendBase64(b, e.Message), start, cefValueSpecial, cefEscape) // its '=' padding
	}
	b = append(b, " cs6Label=weirTime cs6="...)
	b = appendRFC3339(b, e.Time, 9)
	return b
}

func cefText(b []byte, key, val string) []byte {
	b = append(b, ' ')
	b = append(b, key...)
	b = append(b, '=')
	return appendText(b, val, cefValueSpecial, cefEscape)
}

// The characters CEF escapes: in the header '\' and '|' (line ends,
// which it cannot carry there, become spaces); in values '\', '=' and
// line ends.
const (
	cefHeaderSpecial = "\\|\n\r"
	cefValueSpecial  = "\\=\n\r"
)

func cefEscape(b []byte, c byte) []byte {
	switch c {
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	}
	return append(b, '\\', c)
}

// cefHeaderEscape is cefEscape for the header, where a line end is a
// space.
func cefHeaderEscape(b []byte, c byte) []byte {
	if c == '\n' || c == '\r' {
		return append(b, ' ')
	}
	return append(b, '\\', c)
}

// appendEscapedJSONFields renders the fields' JSON at the end of b and
// escapes it in place when it holds any of special: the JSON is built
// once, and copied only when something in it needs escaping.
func appendEscapedJSONFields(b []byte, fs []event.Field, special string, esc func([]byte, byte) []byte) []byte {
	start := len(b)
	return escapeTail(appendFieldsJSON(b, fs), start, special, esc)
}

// escapeTail escapes b[start:], text built by this package (UTF-8
// without controls), copying it only when it holds any of special.
func escapeTail(b []byte, start int, special string, esc func([]byte, byte) []byte) []byte {
	if !bytes.ContainsAny(b[start:], special) {
		return b
	}
	tail := string(b[start:])
	return appendText(b[:start], tail, special, esc)
}

// appendQuality writes "source/state" (ptp/locked).
func appendQuality(b []byte, q event.Quality) []byte {
	b = append(b, q.Source.String()...)
	b = append(b, '/')
	return append(b, q.State.String()...)
}

// appendRFC3339 writes ns since the epoch in UTC with digits fractional
// digits (6 or 9), always that many.
func appendRFC3339(b []byte, ns int64, digits int) []byte {
	t := time.Unix(0, ns).UTC()
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	b = append(b, '.')
	frac := t.Nanosecond()
	if digits == 6 {
		frac /= 1000
	}
	start := len(b)
	b = strconv.AppendInt(b, int64(frac), 10)
	if pad := digits - (len(b) - start); pad > 0 {
		b = append(b, make([]byte, pad)...)
		copy(b[start+pad:], b[start:len(b)-pad])
		for i := range pad {
			b[start+i] = '0'
		}
	}
	return append(b, 'Z')
}
