package spool

import (
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Ack deletes every record with Seq <= upTo and persists the mark. Acking at
// or below the current mark does nothing; acking beyond the last appended
// sequence is an error.
//
// A large range is deleted in as many transactions as Badger's limits
// require, oldest first; each carries the counts and a mark covering what
// it deleted, so a crash part-way leaves a consistent spool.
func (s *Spool) Ack(upTo uint64) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	a := &ackReq{upTo: upTo, err: make(chan error, 1)}
	select {
	case s.ackCh <- a:
	case <-s.quit:
		return ErrClosed
	}
	return <-a.err
}

// ack runs in the writer. Each transaction deleting a part of the range
// also moves the mark to the last record it deletes (the final one to
// upTo), so a crash part-way leaves a mark with nothing at or below it.
func (s *Spool) ack(upTo uint64) error {
	s.mu.Lock()
	acked, next := s.acked, s.next
	s.mu.Unlock()
	if upTo <= acked {
		return nil
	}
	if upTo >= next {
		return fmt.Errorf("spool: ack up to %d: beyond the last appended sequence %d", upTo, next-1)
	}
	keys, classes, sizes, err := s.recordKeys(acked+1, upTo)
	for start := 0; err == nil; start += deletePairsPerTxn {
		end := min(start+deletePairsPerTxn, len(keys))
		mark := upTo
		if end < len(keys) {
			mark, _, _ = parseRecordKey(keys[end-1])
		}
		err = s.deleteKeys(keys[start:end], classes[start:end], sizes[start:end], nil, func(txn *badger.Txn, _ bool) error {
			return txn.Set([]byte(keyAcked), encodeUint64(mark))
		})
		if err != nil {
			break
		}
		s.mu.Lock()
		s.acked = mark
		s.mu.Unlock()
		if end == len(keys) {
			break
		}
	}
	if oerr := s.refreshOldest(); err == nil {
		err = oerr
	}
	if err != nil {
		return fmt.Errorf("spool: ack up to %d: %w", upTo, err)
	}
	return nil
}

// recordKeys lists the records with sequences from..upTo: keys, classes
// and data sizes, from a key-only scan.
func (s *Spool) recordKeys(from, upTo uint64) (keys [][]byte, classes []Class, sizes []int64, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix)})
		defer it.Close()
		for it.Seek(recordSeekKey(from)); it.Valid(); it.Next() {
			item := it.Item()
			seq, c, err := parseRecordKey(item.Key())
			if err != nil {
				return err
			}
			if seq > upTo {
				break
			}
			keys = append(keys, item.KeyCopy(nil))
			classes = append(classes, c)
			sizes = append(sizes, max(item.ValueSize()-stampLen, 0))
		}
		return nil
	})
	return keys, classes, sizes, err
}

// deletePairsPerTxn bounds one deleting transaction: 2 keys a record keeps
// it far below Badger's entry limit for the smallest memtable we use.
const deletePairsPerTxn = 2048

// deleteKeys deletes records (and their index keys) by record key, in
// transactions of deletePairsPerTxn records; both keys of a record always
// go in the same transaction, with the counts.
func (s *Spool) deleteKeys(keys [][]byte, classes []Class, sizes []int64, tally func(Class), extra func(txn *badger.Txn, last bool) error) error {
	s.mu.Lock()
	c := s.counts
	s.mu.Unlock()
	for start := 0; start < len(keys) || start == 0; start += deletePairsPerTxn {
		end := min(start+deletePairsPerTxn, len(keys))
		last := end == len(keys)
		txn := s.db.NewTransaction(true)
		err := func() error {
			for i := start; i < end; i++ {
				seq, cl, err := parseRecordKey(keys[i])
				if err != nil {
					return err
				}
				if err := txn.Delete(keys[i]); err != nil {
					return err
				}
				if err := txn.Delete(appendIndexKey(nil, cl, seq)); err != nil {
					return err
				}
				c.add(classes[i], -1, -sizes[i])
			}
			if extra != nil {
				if err := extra(txn, last); err != nil {
					return err
				}
			}
			if err := txn.Set([]byte(keyCounts), c.encode()); err != nil {
				return err
			}
			return txn.Commit()
		}()
		txn.Discard()
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.counts = c
		s.commits++
		s.mu.Unlock()
		if tally != nil {
			for _, cl := range classes[start:end] {
				tally(cl)
			}
		}
		if last {
			break
		}
	}
	return nil
}

// refreshOldest sets the oldest time from the first record after the ack
// mark. Only the writer deletes, so this is exact when it runs there.
func (s *Spool) refreshOldest() error {
	s.mu.Lock()
	acked := s.acked
	empty := true
	for _, x := range s.counts {
		if x.records > 0 {
			empty = false
		}
	}
	s.mu.Unlock()
	var t time.Time
	if !empty {
		err := s.db.View(func(txn *badger.Txn) error {
			var err error
			t, err = firstStamp(txn, acked+1)
			return err
		})
		if err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.oldest = t
	s.mu.Unlock()
	return nil
}
