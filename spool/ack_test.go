package spool

import (
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
)

// TestAckLargeRange acks more records than one Badger transaction can
// delete.
func TestAckLargeRange(t *testing.T) {
	const (
		total = 200_000
		batch = 5_000
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

	// The premise: one transaction cannot hold these deletes.
	txn := s.db.NewTransaction(true)
	var err error
	for i := range uint64(total) {
		if err = txn.Delete(appendRecordKey(nil, first+i, ClassNormal)); err != nil {
			break
		}
	}
	txn.Discard()
	require.True(t, errors.Is(err, badger.ErrTxnTooBig), "want ErrTxnTooBig, got %v", err)

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
	// Nothing is left on disk below the mark, not even unreachable.
	require.NoError(t, s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix)})
		defer it.Close()
		it.Rewind()
		require.False(t, it.Valid(), "records left after acking everything")
		return nil
	}))
}
