package spool

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Checkpoints calls fn with every committed checkpoint whose source starts
// with prefix, in ascending byte order of source, as of one snapshot. It
// lets a source that keeps one checkpoint per item (file integrity keeps
// one per watched path) find all of its items at start.
//
// position is valid only during the call: fn must copy what it keeps. An
// empty position comes as an empty, non-nil slice, as from Checkpoint. fn
// must not call the spool: the snapshot holds Close off until Checkpoints
// returns. An error from fn stops the iteration and is returned as it is.
func (s *Spool) Checkpoints(prefix string, fn func(source string, position []byte) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	// Checkpoint values are small and live in the LSM tree, so values are
	// read one by one as the iteration reaches them; no prefetching.
	it := txn.NewIterator(badger.IteratorOptions{Prefix: checkpointKey(prefix)})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		source := string(item.Key()[len(checkpointPrefix):])
		var fnErr error
		err := item.Value(func(v []byte) error {
			if v == nil {
				v = []byte{}
			}
			fnErr = fn(source, v)
			return nil
		})
		if err != nil {
			return fmt.Errorf("spool: checkpoints %q: read %s: %w", prefix, source, err)
		}
		if fnErr != nil {
			return fnErr
		}
	}
	return nil
}
