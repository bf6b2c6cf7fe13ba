package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Append stores records and checkpoints in one fsynced transaction and
// returns the sequence of the first record; the others follow it without
// gaps. Zero records with some checkpoints commits the checkpoints and
// returns 0. A batch too big for one Badger transaction (about 2.4 MiB with
// the current options) fails with an error wrapping badger.ErrTxnTooBig and
// stores nothing: split it.
//
// The spool does not keep records or checkpoints after Append returns.
func (s *Spool) Append(records [][]byte, checkpoints []Checkpoint) (first uint64, err error) {
	if len(records) == 0 && len(checkpoints) == 0 {
		return 0, nil
	}
	for i, c := range checkpoints {
		if c.Source == "" {
			return 0, fmt.Errorf("spool: append: checkpoint %d has no source", i)
		}
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()

	s.mu.Lock()
	first = s.next
	s.mu.Unlock()
	n := uint64(len(records))
	if first+n < first {
		return 0, fmt.Errorf("spool: append %d records: sequence numbers exhausted at %d", n, first)
	}
	now := time.Now()
	bytes, err := s.commitAppend(first, now, records, checkpoints)
	if err != nil {
		if errors.Is(err, badger.ErrTxnTooBig) {
			err = fmt.Errorf("%w (split the batch)", err)
		}
		return 0, fmt.Errorf("spool: append %d records and %d checkpoints: %w", n, len(checkpoints), err)
	}
	if n == 0 {
		return 0, nil
	}

	s.mu.Lock()
	s.next = first + n
	if s.records == 0 {
		s.oldest = now
	}
	s.records += int64(n)
	s.bytes += bytes
	close(s.appended)
	s.appended = make(chan struct{})
	s.mu.Unlock()
	return first, nil
}

// commitAppend writes records from sequence first, the next mark and the
// checkpoints in one transaction, and returns the bytes of record data.
func (s *Spool) commitAppend(first uint64, now time.Time, records [][]byte, checkpoints []Checkpoint) (int64, error) {
	// Keys and values of all records share one buffer, sized up front so
	// that it never moves while the transaction holds slices of it.
	var bytes int64
	size := 0
	for _, r := range records {
		size += recordKeyLen + stampLen + len(r)
		bytes += int64(len(r))
	}
	buf := make([]byte, 0, size)
	stamp := uint64(now.UnixNano())

	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for i, r := range records {
		k := len(buf)
		buf = appendRecordKey(buf, first+uint64(i))
		v := len(buf)
		buf = binary.BigEndian.AppendUint64(buf, stamp)
		buf = append(buf, r...)
		if err := txn.Set(buf[k:v:v], buf[v:len(buf):len(buf)]); err != nil {
			return 0, err
		}
	}
	if len(records) > 0 {
		if err := txn.Set([]byte(keyNext), encodeUint64(first+uint64(len(records)))); err != nil {
			return 0, err
		}
	}
	for _, c := range checkpoints {
		if err := txn.Set(checkpointKey(c.Source), c.Position); err != nil {
			return 0, err
		}
	}
	if err := txn.Commit(); err != nil {
		return 0, err
	}
	return bytes, nil
}

// Checkpoint returns the last position committed for source, or nil, nil if
// none was. A committed empty position comes back as an empty, non-nil slice.
func (s *Spool) Checkpoint(source string) ([]byte, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	var pos []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(checkpointKey(source))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if pos, err = item.ValueCopy(nil); err == nil && pos == nil {
			pos = []byte{}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("spool: checkpoint %s: %w", source, err)
	}
	return pos, nil
}
