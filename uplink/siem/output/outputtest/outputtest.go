package outputtest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink/siem/output"
)

// Records makes n log records of gateway "gw-1"; mutate may change each
// (its index given).
func Records(n int, mutate func(i int, e *event.Event)) []event.Event {
	evs := make([]event.Event, n)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	for i := range evs {
		evs[i] = event.Event{Gateway: "gw-1", Time: base + int64(i)*1000, Source: "varlog", Kind: event.KindLog,
			Severity: event.SevInfo, Host: "gw-1", Message: fmt.Sprintf("record %d", i),
			Quality: event.Quality{Source: event.TimePTP, State: event.ClockLocked, ErrorBound: 100}}
		if mutate != nil {
			mutate(i, &evs[i])
		}
	}
	return evs
}

// Spool opens a spool in a temporary directory holding evs; it returns
// the spool and the sequence of each record, in order.
func Spool(t *testing.T, evs []event.Event) (*spool.Spool, []uint64) {
	t.Helper()
	sp, err := spool.Open(spool.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { sp.Close() })
	var seqs []uint64
	for start := 0; start < len(evs); start += 200 {
		var entries []spool.Entry
		for i := start; i < min(start+200, len(evs)); i++ {
			b, err := evs[i].AppendBinary(nil)
			require.NoError(t, err)
			entries = append(entries, spool.Entry{Class: spool.ClassNormal, Data: b})
		}
		first, err := sp.Append(context.Background(), entries, nil)
		require.NoError(t, err)
		for i := range entries {
			seqs = append(seqs, first+uint64(i))
		}
	}
	return sp, seqs
}

// Run delivers everything in sp to target through a gate and a runner
// (batches of batch records, retries from 10ms), and waits until the
// spool is acknowledged up to last or timeout passes.
func Run(t *testing.T, sp *spool.Spool, target output.Target, batch int, last uint64, timeout time.Duration) output.Status {
	t.Helper()
	g := output.NewGate(sp, slog.New(slog.DiscardHandler))
	v, err := g.Output("test")
	require.NoError(t, err)
	r := output.NewRunner("test", target, v, output.Batching{MaxRecords: batch, MaxBytes: 1 << 20, Flush: 10 * time.Millisecond,
		RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	go func() { _ = g.Run(ctx, 50*time.Millisecond) }()
	require.Eventually(t, func() bool { return sp.Stats().AckedUpTo >= last }, timeout, 10*time.Millisecond,
		"spool acked up to %d of %d; runner: %+v", sp.Stats().AckedUpTo, last, r.Status())
	cancel()
	require.NoError(t, <-done)
	return r.Status()
}
