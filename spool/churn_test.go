package spool

import (
	"context"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dirBytes is the disk space every file under dir takes (allocated blocks,
// so Badger's sparse preallocated files count only what they hold), less
// the ballast file.
func dirBytes(t testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || d.Name() == ballastName {
			return err // the ballast is a fixed reserve, not the spool's growth
		}
		fi, err := d.Info()
		if err != nil {
			return nil // removed while we walked
		}
		n += allocated(fi)
		return nil
	})
	require.NoError(t, err)
	return n
}

// TestChurn pushes 20 times max_bytes through the spool the way the
// uplink drains it (append, read, ack) while the backlog swings between
// half and all of max_bytes, and checks that the disk never holds much
// more than twice the largest backlog: Badger keeps the space of a queue's
// deleted records unless the design gives it back (dgraph-io/badger#1995).
func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("churn test: skipped with -short")
	}
	if raceEnabled {
		t.Skip("churn test: skipped under -race, which slows it tenfold; make test runs it without")
	}
	const (
		maxBytes = 32 << 20
		recSize  = 200
		batchN   = 256
		push     = 20 * maxBytes
	)
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.MaxBytes = maxBytes
	s, err := Open(Options{Dir: dir, Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer s.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pushed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() { // the source: as fast as the spool takes it
		defer wg.Done()
		entries := batch(ClassNormal, batchN, recSize)
		for pushed.Load() < push {
			if _, err := s.Append(ctx, entries, []Checkpoint{{Source: "churn", Position: []byte("x")}}); err != nil {
				if ctx.Err() == nil {
					t.Errorf("append: %v", err)
				}
				return
			}
			pushed.Add(batchN * recSize)
		}
	}()

	var peakBacklog, peakDisk int64
	sample := func() {
		st := s.Stats()
		peakBacklog = max(peakBacklog, st.Used)
		peakDisk = max(peakDisk, dirBytes(t, dir))
	}
	// The uplink: drains from full to half, then waits for it to fill.
	var cursor, acked uint64
	draining := false
	for {
		sample()
		st := s.Stats()
		if pushed.Load() >= push && st.Records == 0 {
			break
		}
		switch {
		case st.Used >= maxBytes*95/100:
			draining = true
		case st.Used <= maxBytes/2 && pushed.Load() < push:
			draining = false
		}
		if !draining && pushed.Load() < push {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		for range 16 {
			recs, err := s.Read(cursor, 1024, 0)
			require.NoError(t, err)
			if len(recs) == 0 {
				break
			}
			cursor = recs[len(recs)-1].Seq + 1
			acked += uint64(len(recs))
			require.NoError(t, s.Ack(cursor-1))
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	final := s.Stats()
	finalDisk := dirBytes(t, dir)
	ratio := float64(peakDisk) / float64(peakBacklog)
	t.Logf("pushed %d MiB (%d× max_bytes %d MiB) in %s: %.0f records/s appended, read and acked",
		pushed.Load()>>20, pushed.Load()/maxBytes, maxBytes>>20, elapsed.Round(time.Millisecond), float64(acked)/elapsed.Seconds())
	t.Logf("peak backlog %.1f MiB, peak disk %.1f MiB: %.2f× ; at the end: disk %.1f MiB, %d segments, %d dropped",
		float64(peakBacklog)/(1<<20), float64(peakDisk)/(1<<20), ratio, float64(finalDisk)/(1<<20), final.Segments, final.Drops)
	require.Equal(t, pushed.Load()/recSize, int64(acked), "every record pushed is read and acked once")
	require.GreaterOrEqual(t, peakBacklog, int64(maxBytes*9/10), "the backlog must come near max_bytes for the bound to mean something")
	require.LessOrEqual(t, ratio, 2.0, "disk use must stay within about twice the largest backlog")
}
