package siem

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/weirgw/weir/event"
)

// fuzzEvent builds a record from fuzzed parts: any bytes in the message,
// host, source, a field's key and value, any sequence, severity and kind,
// any time int64 nanoseconds hold (years 1677..2262).
func fuzzEvent(msg, host, source, key, val string, seq uint64, ns int64, sev, kind uint8, bound int64, num float64) *event.Event {
	e := &event.Event{Gateway: "gw-1", Seq: seq, Time: ns, Source: source, Host: host, Message: msg,
		Kind: event.Kind(kind % 6), Severity: event.Severity(sev % 8), Checksum: event.Checksum(sev % 3),
		Quality: event.Quality{Source: event.TimeSource(kind % 3), State: event.ClockState(sev % 4), ErrorBound: bound}}
	e.Fields = []event.Field{event.Str(key, val), event.Float("f", num), event.Bytes("b", []byte(val))}
	if kind%2 == 0 {
		e.Fields = append(e.Fields, event.Uint("facility", uint64(sev)), event.Str("app_name", key), event.Str("peer", val))
	}
	return e
}

func addSeeds(f *testing.F) {
	f.Add("hello", "host", "syslog", "k", "v", uint64(1), int64(1772366400123456789), uint8(6), uint8(0), int64(150), 1.5)
	f.Add("a|b=c\\d]e\"f\n\r\tg", "h o|s=t", "s|=", "k e=y]\"", "v\\=|]\"\n", uint64(1<<63), int64(0), uint8(3), uint8(1), int64(-1), 1e-300)
	f.Add("\xff\xfe\x00\x1b[1m\xc3(", "\xff", "\x00", "\xff", "\xc3(", ^uint64(0), int64(-5), uint8(255), uint8(255), int64(1<<62), 1e308)
	f.Add("ü 水 🚰", "estação", "modbus:flow-1", "flow", "12.75", uint64(42), int64(1), uint8(2), uint8(3), int64(0), 0.1)
}

func fuzzFormat(f *testing.F, format Format, parse func([]byte) error, cfgs ...EncodingConfig) {
	addSeeds(f)
	cfgs = append([]EncodingConfig{DefaultEncodingConfig()}, cfgs...)
	f.Fuzz(func(t *testing.T, msg, host, source, key, val string, seq uint64, ns int64, sev, kind uint8, bound int64, num float64) {
		// The parser on the raw bytes: any input, no panic.
		_ = parse([]byte(msg))
		e := fuzzEvent(msg, host, source, key, val, seq, ns, sev, kind, bound, num)
		for _, cfg := range cfgs {
			enc, err := New(format, cfg)
			if err != nil {
				t.Fatal(err)
			}
			out := enc.Append(nil, e)
			if err := Verify(format, cfg, e, out); err != nil {
				t.Fatalf("%s output does not read back: %v\n%q", format, err, out)
			}
		}
	})
}

// FuzzCEF encodes fuzzed records as CEF and reads each back with the
// strict parser (Verify); the parser also gets the raw fuzz bytes.
func FuzzCEF(f *testing.F) {
	fuzzFormat(f, FormatCEF, func(b []byte) error { _, err := ParseCEF(string(b)); return err })
}

// FuzzLEEF does the same for LEEF, with the tab and a '^' delimiter.
func FuzzLEEF(f *testing.F) {
	caret := DefaultEncodingConfig()
	caret.LEEFDelimiter = "^"
	fuzzFormat(f, FormatLEEF, func(b []byte) error { _, err := ParseLEEF(string(b)); return err }, caret)
}

// FuzzRFC5424 does the same for RFC 5424, and reads the raw bytes as an
// octet-counted frame too.
func FuzzRFC5424(f *testing.F) {
	fuzzFormat(f, FormatRFC5424, func(b []byte) error {
		_, _ = ReadFrame(bufio.NewReader(bytes.NewReader(b)), 1<<16)
		_, err := ParseRFC5424(b)
		return err
	})
}

// FuzzECS does the same for the ECS JSON.
func FuzzECS(f *testing.F) {
	fuzzFormat(f, FormatECS, func(b []byte) error { _, err := ParseECS(b); return err })
}
