package spool

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSegmentBounds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		lo, hi int64
	}{
		{"small, default max_bytes", Config{MaxBytes: DefaultMaxBytes, Profile: ProfileSmall}, 2 << 20, 256 << 20},
		{"small, 32-bit max_bytes", Config{MaxBytes: MaxBytes32, Profile: ProfileSmall}, 2 << 20, 128 << 20},
		{"small, 8 MiB", Config{MaxBytes: 8 << 20, Profile: ProfileSmall}, 1 << 20, 1 << 20},
		{"small, 1 MiB", Config{MaxBytes: 1 << 20, Profile: ProfileSmall}, 256 << 10, 256 << 10},
		{"large, default max_bytes", Config{MaxBytes: DefaultMaxBytes, Profile: ProfileLarge}, 64 << 20, 256 << 20},
		{"large, 256 MiB", Config{MaxBytes: 256 << 20, Profile: ProfileLarge}, 32 << 20, 32 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := segmentBounds(tc.cfg)
			require.Equal(t, tc.lo, lo, "smallest segment")
			require.Equal(t, tc.hi, hi, "largest segment")
		})
	}
}

// TestSegmentsFollowTheBacklog: a spool that keeps up closes and drops
// segments of a memtable's worth (so DropPrefix leaves its acknowledged
// records out of every table), and one with a backlog opens segments of an
// eighth of it.
func TestSegmentsFollowTheBacklog(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBytes = 1 << 30 // segments of 2 MiB to 128 MiB
	s, err := Open(Options{Dir: t.TempDir(), Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	const recSize = 1000
	perBatch := MaxAppendBytes / recSize / 2

	// Keeping up: every batch is read and acknowledged at once.
	var cursor uint64
	var sent int64
	for sent < 16<<20 {
		_, err := s.Append(ctx, batch(ClassNormal, perBatch, recSize), nil)
		require.NoError(t, err)
		sent += int64(perBatch * recSize)
		recs, err := s.Read(cursor, perBatch, 0)
		require.NoError(t, err)
		require.Len(t, recs, perBatch)
		cursor = recs[len(recs)-1].Seq + 1
		require.NoError(t, s.Ack(cursor-1))
	}
	// A segment drops at the writer's next turn after the ack that
	// covers it.
	require.Eventually(t, func() bool { return s.Stats().Drops >= 6 }, 10*time.Second, 10*time.Millisecond,
		"16 MiB sent and acknowledged as it went: about 8 segments of 2 MiB dropped, got %d", s.Stats().Drops)
	require.LessOrEqual(t, s.Stats().Segments, 2)

	// A backlog: nothing is acknowledged.
	for s.Stats().Used < 64<<20 {
		_, err := s.Append(ctx, batch(ClassNormal, perBatch, recSize), nil)
		require.NoError(t, err)
	}
	s.mu.Lock()
	segs := s.segs
	next := s.next
	s.mu.Unlock()
	require.Greater(t, len(segs), 3)
	sizes := make([]int64, 0, len(segs))
	for i := 0; i+1 < len(segs); i++ {
		sizes = append(sizes, int64(segs[i+1].first-segs[i].first)*recSize)
	}
	sizes = append(sizes, int64(next-segs[len(segs)-1].first)*recSize)
	batchBytes := int64(perBatch * recSize)
	// The first segments of the backlog hold a memtable's worth (closed
	// by the group that reaches it), the newest closed one about a
	// eighth of what was held when it opened (over 6 MiB at 56 MiB).
	require.InDelta(t, 2<<20, sizes[1], float64(batchBytes), "segment sizes %v", sizes)
	newest := sizes[len(sizes)-2]
	require.Greater(t, newest, int64(6<<20), "segment sizes %v", sizes)
	require.Less(t, newest, int64(9<<20), "segment sizes %v", sizes)
	t.Logf("%d segments for a 64 MiB backlog, of %v bytes", len(segs), sizes)
}
