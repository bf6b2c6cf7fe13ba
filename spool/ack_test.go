package spool

import (
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
)

// TestAckLargeRange acks far more records than one Badger transaction can
// hold keys for: Ack moves a mark, and the space comes back by dropping
// whole segments.
func TestAckLargeRange(t *testing.T) {
	const (
		total = 200_000
		batch = 1_000
	)
	dir := t.TempDir()
	s := openAt(t, dir)
	rec := [][]byte{}
	for range batch {
		rec = append(rec, []byte("tiny"))
	}
	var first uint64
	for i := range total / batch {
		f, err := s.appendBytes(rec, nil)
		require.NoError(t, err)
		if i == 0 {
			first = f
		}
	}
	require.Equal(t, int64(total), s.Stats().Records)

	last := first + total - 1
	require.NoError(t, s.Ack(last-10))
	st := s.Stats()
	require.Equal(t, int64(10), st.Records)
	require.Equal(t, int64(40), st.Bytes)
	recs, err := s.Read(0, 100, 0)
	require.NoError(t, err)
	require.Equal(t, seqRange(last-9, 10), seqs(recs))

	require.NoError(t, s.Ack(last))
	recs, err = s.Read(0, 100, 0)
	require.NoError(t, err)
	require.Empty(t, recs)
	require.NoError(t, s.Close())

	s = openAt(t, dir)
	st = s.Stats()
	require.Zero(t, st.Records)
	require.Equal(t, last, st.AckedUpTo)
	require.Equal(t, last+1, st.NextSeq)
	require.Zero(t, st.Segments)
	// Nothing is left on disk below the mark, not even unreachable.
	require.NoError(t, s.db.View(func(txn *badger.Txn) error {
		for _, p := range []string{recordPrefix, indexPrefix, segmentPrefix} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(p)})
			it.Rewind()
			require.False(t, it.Valid(), "%s keys left after acking everything", p)
			it.Close()
		}
		return nil
	}))
	first, err = s.appendBytes(payloads("after", 3), nil)
	require.NoError(t, err)
	require.Equal(t, last+1, first)
	recs, err = s.Read(0, 100, 0)
	require.NoError(t, err)
	require.Equal(t, seqRange(last+1, 3), seqs(recs))
}
