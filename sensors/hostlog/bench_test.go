package hostlog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// lines200 is n 200-byte lines (newline included).
func lines200(n int) []byte {
	line := strings.Repeat("x", 199) + "\n"
	return bytes.Repeat([]byte(line), n)
}

// BenchmarkSplitter: cutting a 64 KiB read of 200-byte lines into
// records (with multiline, an event starts every 5th line).
func BenchmarkSplitter(b *testing.B) {
	for _, multiline := range []bool{false, true} {
		name := "lines"
		var re *regexp.Regexp
		data := lines200(327)
		if multiline {
			name, re = "multiline", regexp.MustCompile(`^\d{4}-`)
			for i := 0; i < len(data); i += 5 * 200 {
				copy(data[i:], "2026-")
			}
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig("/x").withDefaults()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			batch := lineBatch{lineCost: 600}
			for b.Loop() {
				s := newSplitter(cfg, re)
				for s.scan < len(data) || s.ev.open {
					s.take(&batch, data, time.Time{}, false)
					s.expire(&batch, time.Time{}, s.scan == len(data))
					batch.reset()
				}
			}
		})
	}
}

// countSink takes everything at once.
type countSink struct{ lines atomic.Int64 }

func (s *countSink) Emit(_ context.Context, evs []event.Event, _ []spool.Checkpoint) error {
	s.lines.Add(int64(len(evs)))
	return nil
}
func (s *countSink) Checkpoint(string) ([]byte, error) { return nil, nil }

// BenchmarkTail: a file of 200-byte lines tailed into a sink that costs
// nothing; the tailer's own cost per line (reads, cutting, records).
func BenchmarkTail(b *testing.B) {
	p := filepath.Join(b.TempDir(), "app.log")
	const n = 100_000
	if err := os.WriteFile(p, lines200(n), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg := testConfig(p)
	cfg.Watch = WatchPoll
	b.SetBytes(n * 200)
	b.ReportAllocs()
	for b.Loop() {
		s := &countSink{}
		tl, err := NewTailer(cfg, s, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tl.Run(ctx, s) }()
		for s.lines.Load() < n {
			time.Sleep(100 * time.Microsecond)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "lines/s")
}
