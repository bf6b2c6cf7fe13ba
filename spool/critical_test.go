package spool

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
)

// appendClasses appends one record per class letter: n(ormal), c(ritical),
// b(ulk); it returns the first sequence.
func appendClasses(t testing.TB, s *Spool, classes string) uint64 {
	t.Helper()
	entries := make([]Entry, len(classes))
	for i, c := range classes {
		cl := map[rune]Class{'n': ClassNormal, 'c': ClassCritical, 'b': ClassBulk}[c]
		entries[i] = Entry{Class: cl, Data: fmt.Appendf(nil, "%c-%d", c, i)}
	}
	first, err := s.Append(context.Background(), entries, nil)
	require.NoError(t, err)
	return first
}

// TestReadCritical: the critical records, in sequence order, from a
// cursor, never an acknowledged one, across segments and a reopen.
func TestReadCritical(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), segmentBytes: 4})
	require.NoError(t, err)
	recs, err := s.ReadCritical(0, 10, 0)
	require.NoError(t, err)
	require.Empty(t, recs, "none yet")

	crit := s.CriticalAppended()
	f := appendClasses(t, s, "nnbnn")
	select {
	case <-crit:
		t.Fatal("no critical record was appended")
	default:
	}
	g := appendClasses(t, s, "ncnnccbn") // critical at g+1, g+4, g+5
	select {
	case <-crit:
	default:
		t.Fatal("CriticalAppended not closed by a critical append")
	}
	h := appendClasses(t, s, "nnnnc") // h+4
	want := []uint64{g + 1, g + 4, g + 5, h + 4}

	recs, err = s.ReadCritical(0, 10, 0)
	require.NoError(t, err)
	require.Equal(t, want, seqs(recs))
	for _, r := range recs {
		require.Equal(t, ClassCritical, r.Class)
		require.Equal(t, byte('c'), r.Data[0])
	}
	recs, err = s.ReadCritical(g+2, 10, 0)
	require.NoError(t, err)
	require.Equal(t, want[1:], seqs(recs))
	recs, err = s.ReadCritical(0, 2, 0)
	require.NoError(t, err)
	require.Equal(t, want[:2], seqs(recs), "max records")
	recs, err = s.ReadCritical(0, 10, 1)
	require.NoError(t, err)
	require.Equal(t, want[:1], seqs(recs), "max bytes, at least one")
	recs, err = s.ReadCritical(h+5, 10, 0)
	require.NoError(t, err)
	require.Empty(t, recs, "past the last critical record")
	require.Greater(t, s.Stats().Segments, 2, "the test spans segments")

	require.NoError(t, s.Ack(g+1))
	recs, err = s.ReadCritical(0, 10, 0)
	require.NoError(t, err)
	require.Equal(t, want[1:], seqs(recs), "acknowledged: not read again")
	_ = f

	require.NoError(t, s.Close())
	s = openAt(t, dir)
	recs, err = s.ReadCritical(0, 10, 0)
	require.NoError(t, err)
	require.Equal(t, want[1:], seqs(recs), "after a reopen")
	all, err := s.Read(0, 100, 0)
	require.NoError(t, err)
	require.Len(t, all, 11, "Read still returns every class in order, from the mark")
}

// TestReadCriticalLeavesDamageToRead: a critical record whose checksum
// fails is not returned here; Read quarantines it in sequence order.
func TestReadCriticalLeavesDamageToRead(t *testing.T) {
	s := openTemp(t)
	first := appendClasses(t, s, "ncc")
	key := appendRecordKey(nil, s.segmentOf(first+1), first+1, ClassCritical)
	require.NoError(t, s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		v[len(v)-1] ^= 1
		return txn.Set(key, v)
	}))
	recs, err := s.ReadCritical(0, 10, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{first + 2}, seqs(recs))
	all, err := s.Read(0, 10, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{first, first + 2}, seqs(all))
	require.Equal(t, uint64(1), s.Stats().Quarantined)
}

// TestCriticalIndexSurvivesEviction: eviction for a critical append
// removes bulk and normal records and their index keys, never the
// critical index.
func TestCriticalIndexSurvivesEviction(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBytes, cfg.MaxAge = 1<<20, 0
	s, err := Open(Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler), Config: cfg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	big := make([]byte, 100<<10)
	var crit []uint64
	for i := 0; ; i++ {
		cl := ClassNormal
		if i%5 == 4 {
			cl = ClassCritical
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		seq, err := s.Append(ctx, []Entry{{Class: cl, Data: big}}, nil)
		cancel()
		if err != nil {
			require.Equal(t, ClassNormal, cl, "a critical append never waits: %v", err)
			break // full: normal records wait
		}
		if cl == ClassCritical {
			crit = append(crit, seq)
		}
	}
	for range 3 {
		seq, err := s.Append(context.Background(), []Entry{{Class: ClassCritical, Data: big}}, nil)
		require.NoError(t, err)
		crit = append(crit, seq)
	}
	require.Positive(t, s.Stats().Classes[ClassNormal].Evicted)
	recs, err := s.ReadCritical(0, 100, 0)
	require.NoError(t, err)
	require.Equal(t, crit, seqs(recs))
}
