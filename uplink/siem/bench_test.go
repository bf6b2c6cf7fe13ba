package siem

import (
	"testing"

	"github.com/weirgw/weir/event"
)

// benchEvent is a typical syslog record: a 120-byte message and the
// fields the syslog input gives it.
func benchEvent() *event.Event {
	return &event.Event{Gateway: "pump-station-3", Seq: 918273, Time: 1772366400123456789, Source: "syslog",
		Kind: event.KindLog, Severity: event.SevWarning, Host: "plc-7",
		Quality: event.Quality{Source: event.TimePTP, State: event.ClockLocked, ErrorBound: 150},
		Message: "pump 3: discharge pressure 7.9 bar above the 7.5 bar limit for 12 s; stopping pump, opening bypass valve V-12",
		Fields: []event.Field{event.Str("format", "rfc5424"), event.Uint("facility", 16), event.Str("app_name", "pumpd"),
			event.Str("procid", "812"), event.Str("peer", "192.0.2.7:51514"), event.Str("transport", "tls")}}
}

// BenchmarkEncode measures each format's cost per record (make bench);
// the buffer is reused, as an output's batch buffer is.
func BenchmarkEncode(b *testing.B) {
	e := benchEvent()
	for _, f := range Formats {
		b.Run(string(f), func(b *testing.B) {
			enc, err := New(f, DefaultEncodingConfig())
			if err != nil {
				b.Fatal(err)
			}
			buf := enc.Append(nil, e)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = enc.Append(buf[:0], e)
			}
		})
	}
}
