package rules

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

// Records as the inputs make them, for the cost of evaluation.
func benchRecords() (line, reading, audit event.Event) {
	line = event.Event{Source: "app", Kind: event.KindLog, Severity: event.SevInfo, Host: "gw", Time: 1,
		Message: "2025-06-01T10:00:00.123Z INFO pump-3 started: flow 12.5 m3/h, pressure 4.1 bar, valve V-12 open, operator console 2"}
	reading = event.Event{Source: "modbus:meter", Kind: event.KindReading, Severity: event.SevInfo, Host: "gw", Time: 1,
		Fields: []event.Field{event.Str("device", "meter"), event.Str("bus", "rs485"), event.Uint("unit", 5),
			event.Float("flow", 12.5), event.Float("level", 3.2), event.Int("delta", -1000)}}
	audit = event.Event{Source: "audit", Kind: event.KindAudit, Severity: event.SevInfo, Host: "gw", Time: 1,
		Fields: []event.Field{event.Str("types", "SYSCALL,CWD,PATH"), event.Str("syscall_name", "openat"),
			event.Int("exit", 3), event.Bool("success", true), event.Str("exe", "/usr/sbin/cron")}}
	return
}

// TestNoMatchAllocatesNothing: a record that matches no rule costs the
// default rules' tests and no allocation.
func TestNoMatchAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are not counted under the race detector (see race_test.go); make unit counts them without it")
	}
	e, err := New(DefaultConfig(), Options{Host: "gw"})
	require.NoError(t, err)
	line, _, audit := benchRecords()
	batch := []event.Event{line, audit, line, line}
	allocs := testing.AllocsPerRun(500, func() {
		if e.Observe(batch) != nil {
			t.Fatal("matched")
		}
	})
	require.Zero(t, allocs)
}

// BenchmarkObserve is the cost per record of the default rules
// (make bench): a log line and an audit record that match nothing, a
// Modbus reading (which the device-unreachable rule takes), in batches of
// 64 as the inputs hand them over.
func BenchmarkObserve(b *testing.B) {
	line, reading, audit := benchRecords()
	for _, c := range []struct {
		name string
		ev   event.Event
	}{{"no-match-log-line", line}, {"no-match-audit", audit}, {"reading-absent-rule", reading}} {
		b.Run(c.name, func(b *testing.B) {
			e, err := New(DefaultConfig(), Options{Host: "gw"})
			require.NoError(b, err)
			batch := make([]event.Event, 64)
			for i := range batch {
				batch[i] = c.ev
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.Commit(e.Observe(batch), 1)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/record")
		})
	}
}
