package spool

import (
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Ack acknowledges every record with Seq <= upTo: they are never read
// again, stop counting against max_bytes, and their space comes back when
// their segment is dropped. Acking at or below the current mark does
// nothing; acking beyond the last appended sequence is an error.
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

// ack runs in the writer. It moves the mark and the counts in one
// transaction, deleting nothing, then drops the segments the mark has
// passed. A crash after the mark committed leaves only space to reclaim,
// which Open does.
func (s *Spool) ack(upTo uint64) error {
	s.mu.Lock()
	acked, next := s.acked, s.next
	c := s.counts
	seek := recordSeekKey(s.segmentOf(acked+1), acked+1)
	s.mu.Unlock()
	if upTo <= acked {
		return nil
	}
	if upTo >= next {
		return fmt.Errorf("spool: ack up to %d: beyond the last appended sequence %d", upTo, next-1)
	}
	err := s.db.View(func(txn *badger.Txn) error {
		return scanKeys(txn, seek, upTo, func(_ uint32, _ uint64, cl Class, size int64) {
			c.add(cl, -1, -size)
		})
	})
	if err == nil {
		err = s.db.Update(func(txn *badger.Txn) error {
			if err := txn.Set([]byte(keyAcked), encodeUint64(upTo)); err != nil {
				return err
			}
			return txn.Set([]byte(keyCounts), c.encode())
		})
	}
	if err != nil {
		return fmt.Errorf("spool: ack up to %d: %w", upTo, err)
	}
	s.mu.Lock()
	s.acked, s.counts = upTo, c
	s.commits++
	s.mu.Unlock()
	if err := s.refreshOldest(); err != nil {
		return fmt.Errorf("spool: ack up to %d: %w", upTo, err)
	}
	// The ack stands; a failed drop is retried at the next ack.
	if err := s.dropAcked(); err != nil {
		s.log.Error("spool: reclaiming acknowledged records failed", "dir", s.dir, "err", err)
	}
	return nil
}

// scanKeys calls fn for each record from seek up to and including sequence
// upTo, from a key-only scan: segment, sequence, class and data size.
func scanKeys(txn *badger.Txn, seek []byte, upTo uint64, fn func(seg uint32, seq uint64, cl Class, size int64)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix)})
	defer it.Close()
	for it.Seek(seek); it.Valid(); it.Next() {
		item := it.Item()
		seg, seq, cl, err := parseRecordKey(item.Key())
		if err != nil {
			return err
		}
		if seq > upTo {
			break
		}
		fn(seg, seq, cl, max(item.ValueSize()-stampLen, 0))
	}
	return nil
}

// deletePairsPerTxn bounds one deleting transaction: 2 keys a record keeps
// it far below Badger's entry limit for the smallest memtable we use.
const deletePairsPerTxn = 2048

// doomed is a record eviction or expiry removes.
type doomed struct {
	seg   uint32
	seq   uint64
	class Class
	size  int64
}

// deleteRecords deletes records and their index keys, in transactions of
// deletePairsPerTxn records, each with the counts; tally is called for
// each record deleted.
func (s *Spool) deleteRecords(recs []doomed, tally func(Class)) error {
	s.mu.Lock()
	c := s.counts
	s.mu.Unlock()
	for start := 0; start < len(recs); start += deletePairsPerTxn {
		end := min(start+deletePairsPerTxn, len(recs))
		err := s.db.Update(func(txn *badger.Txn) error {
			for _, r := range recs[start:end] {
				if err := txn.Delete(appendRecordKey(nil, r.seg, r.seq, r.class)); err != nil {
					return err
				}
				if indexed(r.class) {
					if err := txn.Delete(appendIndexKey(nil, r.seg, r.class, r.seq)); err != nil {
						return err
					}
				}
				c.add(r.class, -1, -r.size)
			}
			return txn.Set([]byte(keyCounts), c.encode())
		})
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.counts = c
		s.commits++
		s.mu.Unlock()
		for _, r := range recs[start:end] {
			tally(r.class)
		}
	}
	return nil
}

// refreshOldest sets the oldest time from the first record after the ack
// mark. Only the writer deletes, so this is exact when it runs there.
func (s *Spool) refreshOldest() error {
	s.mu.Lock()
	acked := s.acked
	records, _ := s.counts.total()
	seek := recordSeekKey(s.segmentOf(acked+1), acked+1)
	s.mu.Unlock()
	var t time.Time
	if records > 0 {
		err := s.db.View(func(txn *badger.Txn) error {
			var err error
			t, err = firstStamp(txn, seek)
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
