package spool

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Ack deletes every record with Seq <= upTo and persists the mark. Acking at
// or below the current mark does nothing; acking beyond the last appended
// sequence is an error.
//
// A large range is deleted in as many transactions as Badger's limits
// require, oldest first; the mark is written with the last of them. A crash
// part-way leaves a prefix of the range deleted and the old mark, which is
// consistent: the deleted records were acknowledged, the others are read
// again and acknowledged again.
func (s *Spool) Ack(upTo uint64) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.ackMu.Lock()
	defer s.ackMu.Unlock()

	s.mu.Lock()
	acked, next := s.acked, s.next
	s.mu.Unlock()
	if upTo <= acked {
		return nil
	}
	if upTo >= next {
		return fmt.Errorf("spool: ack up to %d: beyond the last appended sequence %d", upTo, next-1)
	}
	err := s.purge(acked+1, upTo)
	// Whatever was committed has been counted; find the new oldest record
	// even if a later transaction failed.
	if oerr := s.refreshOldest(); err == nil {
		err = oerr
	}
	if err != nil {
		return fmt.Errorf("spool: ack up to %d: %w", upTo, err)
	}
	return nil
}

// purge deletes the records from..upTo and then sets the ack mark to upTo,
// committing whenever a transaction is full. The counts are updated after
// each commit.
func (s *Spool) purge(from, upTo uint64) error {
	rtxn := s.db.NewTransaction(false)
	defer rtxn.Discard()
	it := rtxn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix)})
	defer it.Close()

	wtxn := s.db.NewTransaction(true)
	defer func() { wtxn.Discard() }()
	var n, bytes int64 // deleted by wtxn
	commit := func(mark bool) error {
		if err := wtxn.Commit(); err != nil {
			return err
		}
		s.mu.Lock()
		s.records -= n
		s.bytes -= bytes
		// Bytes of values in the value log are Badger's estimates, so let
		// no error outlive the backlog.
		if s.records <= 0 {
			s.records, s.bytes = 0, 0
		}
		s.bytes = max(s.bytes, 0)
		if mark {
			s.acked = upTo
		}
		s.mu.Unlock()
		n, bytes = 0, 0
		wtxn = s.db.NewTransaction(true)
		return nil
	}
	// set applies op in wtxn, first committing wtxn if it is full.
	set := func(op func(*badger.Txn) error) error {
		err := op(wtxn)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err = commit(false); err == nil {
				err = op(wtxn)
			}
		}
		return err
	}

	for it.Seek(recordKey(from)); it.Valid(); it.Next() {
		item := it.Item()
		seq, err := recordSeq(item.Key())
		if err != nil {
			return err
		}
		if seq > upTo {
			break
		}
		key := item.KeyCopy(nil)
		if err := set(func(txn *badger.Txn) error { return txn.Delete(key) }); err != nil {
			return err
		}
		n++
		bytes += max(item.ValueSize()-stampLen, 0)
	}
	mark := encodeUint64(upTo)
	if err := set(func(txn *badger.Txn) error { return txn.Set([]byte(keyAcked), mark) }); err != nil {
		return err
	}
	return commit(true)
}

// refreshOldest sets the oldest time from the first record after the ack
// mark. Ack deletes oldest first, so that is the oldest one left even when
// an Ack failed part-way.
//
// It runs under mu, so no Append can count a record meanwhile. Appends
// commit and count in sequence order, so if any counted record remains,
// the first record on disk after the mark is a counted one.
func (s *Spool) refreshOldest() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.records == 0 {
		s.oldest = time.Time{}
		return nil
	}
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix)})
		defer it.Close()
		it.Seek(recordKey(s.acked + 1))
		if !it.Valid() {
			return nil
		}
		t, err := stampOf(it.Item())
		if err == nil {
			s.oldest = t
		}
		return err
	})
}
