package spool

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/weirgw/weir/merkle"
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
		return scanKeys(txn, seek, upTo, s.checkedFrom, func(_ uint32, _ uint64, cl Class, size int64) {
			c.add(cl, -1, -size)
		})
	})
	if upTo == next-1 {
		// Nothing is left unacknowledged. Records a damaged table hid from
		// the scan were never counted down; they are gone now too.
		c = counts{}
	}
	// On a disk too full to write even this, the mark moves in memory
	// only, and the writer writes it once there is room (tendDisk). A
	// crash before then loses only the mark: the collector already holds
	// the records and drops them when they come again.
	inMemory := err == nil && s.freeSpace() < s.guard.writeFloor()
	if err == nil && !inMemory {
		err = s.writeAckMark(upTo, c)
	}
	if err != nil {
		return fmt.Errorf("spool: ack up to %d: %w", upTo, err)
	}
	s.mu.Lock()
	s.acked, s.counts = upTo, c
	s.skip.prune(upTo)
	if inMemory && !s.acksInMemory {
		s.log.Warn("spool: the disk is too full to write acknowledgements; keeping them in memory", "dir", s.dir, "acked_up_to", upTo)
	}
	s.acksInMemory = inMemory
	if !inMemory {
		s.commits++
	}
	s.mu.Unlock()
	if err := s.refreshOldest(); err != nil {
		return fmt.Errorf("spool: ack up to %d: %w", upTo, err)
	}
	s.pos.acked(upTo)
	if inMemory {
		return nil
	}
	s.flushPositions()
	// The ack stands; a failed drop is retried at the next ack.
	if err := s.dropAcked(); err != nil {
		s.log.Error("spool: reclaiming acknowledged records failed", "dir", s.dir, "err", err)
	}
	return nil
}

// flushPositions writes the positions the collector now holds to the
// positions file. A failure costs only duplicates if the spool must be
// moved aside before the next try; it is logged and retried.
func (s *Spool) flushPositions() {
	if err := s.pos.flush(); err != nil {
		s.log.Warn("spool: writing the positions file failed; trying again", "file", s.pos.path, "err", err)
	}
}

// writeAckMark writes the ack mark and the counts.
func (s *Spool) writeAckMark(upTo uint64, c counts) error {
	return s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set([]byte(keyAcked), encodeUint64(upTo)); err != nil {
			return err
		}
		return txn.Set([]byte(keyCounts), c.encode())
	})
}

// writeAcksInMemory writes the mark kept in memory while the disk was too
// full, and drops the segments it passed. It runs in the writer.
func (s *Spool) writeAcksInMemory() {
	s.mu.Lock()
	pending, upTo, c := s.acksInMemory, s.acked, s.counts
	s.mu.Unlock()
	if !pending {
		return
	}
	if err := s.writeAckMark(upTo, c); err != nil {
		s.log.Error("spool: writing acknowledgements kept in memory failed; trying again", "dir", s.dir, "acked_up_to", upTo, "err", err)
		return
	}
	s.mu.Lock()
	s.acksInMemory = false
	s.commits++
	s.mu.Unlock()
	s.log.Info("spool: acknowledgements kept in memory written", "dir", s.dir, "acked_up_to", upTo)
	if err := s.dropAcked(); err != nil {
		s.log.Error("spool: reclaiming acknowledged records failed", "dir", s.dir, "err", err)
	}
}

// scanKeys calls fn for each record from seek up to and including sequence
// upTo, from a key-only scan: segment, sequence, class and data size.
// Eviction markers are skipped: their records were counted out when they
// were evicted. A key that does not parse is skipped too: it can only come
// from a damaged table, and Read quarantines what it hid.
func scanKeys(txn *badger.Txn, seek []byte, upTo, checkedFrom uint64, fn func(seg uint32, seq uint64, cl Class, size int64)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix)})
	defer it.Close()
	for it.Seek(seek); it.Valid(); it.Next() {
		item := it.Item()
		seg, seq, cl, err := parseRecordKey(item.Key())
		if err != nil {
			continue
		}
		if seq > upTo {
			break
		}
		checked := seq >= checkedFrom
		if checked && item.ValueSize() == stampLen {
			continue
		}
		fn(seg, seq, cl, dataSize(item.ValueSize(), checked))
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
	leaf  merkle.Hash // its leaf hash, for the eviction log
	leafy bool        // it is a leaf of the log (declared when removed)
}

// deleteRecords deletes records and their index keys, in transactions of
// deletePairsPerTxn records, each with the counts; tally is called for
// each record deleted.
func (s *Spool) deleteRecords(recs []doomed, tally func(Class)) error {
	s.mu.Lock()
	c := s.counts
	evn := s.evictNext
	s.mu.Unlock()
	for start := 0; start < len(recs); start += deletePairsPerTxn {
		end := min(start+deletePairsPerTxn, len(recs))
		stamp := s.now().UnixNano()
		n := evn
		err := s.db.Update(func(txn *badger.Txn) error {
			n = evn
			for _, r := range recs[start:end] {
				// A checked record leaves a marker, so that Read can tell
				// a sequence removed on purpose from one a damaged table
				// lost; a legacy record is deleted as it always was.
				key := appendRecordKey(nil, r.seg, r.seq, r.class)
				var err error
				if r.seq >= s.checkedFrom {
					err = txn.Set(key, markerValue(stamp))
				} else {
					err = txn.Delete(key)
				}
				if err != nil {
					return err
				}
				if indexed(r.class) {
					if err := txn.Delete(appendIndexKey(nil, r.seg, r.class, r.seq)); err != nil {
						return err
					}
				}
				c.add(r.class, -1, -r.size)
				if r.leafy {
					// Still a leaf of the log: declared in the next seal.
					v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(r.leaf)), r.seq)
					if err := txn.Set(evictionKey(n), append(v, r.leaf[:]...)); err != nil {
						return err
					}
					n++
				}
			}
			if n != evn {
				if err := txn.Set([]byte(keyEvictNext), encodeUint64(n)); err != nil {
					return err
				}
			}
			return txn.Set([]byte(keyCounts), c.encode())
		})
		if err != nil {
			return err
		}
		evn = n
		s.mu.Lock()
		s.counts, s.evictNext = c, evn
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
			t = s.firstStamp(txn, seek)
			return nil
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
