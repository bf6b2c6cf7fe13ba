package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Read returns up to max records with Seq >= cursor in ascending order,
// holding at most maxBytes of Data in total (maxBytes <= 0: no byte limit),
// but always at least one record if there is one. Acknowledged records are
// never returned. An empty result means nothing is there yet: wait on
// Appended. max must be at least 1.
func (s *Spool) Read(cursor uint64, max int, maxBytes int) ([]Record, error) {
	if max < 1 {
		return nil, fmt.Errorf("spool: read from %d: max %d records, want at least 1", cursor, max)
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	// The snapshot is taken before the ack mark is read, so it cannot hold
	// records deleted by an Ack that completed before the mark was read.
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	s.mu.Lock()
	if cursor <= s.acked {
		cursor = s.acked + 1
	}
	seg := s.segmentOf(cursor)
	s.mu.Unlock()

	recs, err := readRecords(txn, seg, cursor, max, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("spool: read from %d: %w", cursor, err)
	}
	return recs, nil
}

// readRecords reads from cursor, starting the scan in segment seg.
func readRecords(txn *badger.Txn, seg uint32, cursor uint64, max, maxBytes int) ([]Record, error) {
	// The data of all records goes into one buffer, sliced at the end.
	type span struct {
		seq        uint64
		class      Class
		stamp      int64
		start, end int
	}
	var (
		spans []span
		buf   []byte
	)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix)})
	defer it.Close()
	for it.Seek(recordSeekKey(seg, cursor)); it.Valid() && len(spans) < max; it.Next() {
		item := it.Item()
		kseg, seq, class, err := parseRecordKey(item.Key())
		if err != nil {
			return nil, err
		}
		for seq < cursor {
			// The snapshot holds a segment opened after the segment
			// table was consulted, and the cursor lies inside it.
			if kseg <= seg {
				return nil, fmt.Errorf("record %d sorts after %d in segment %d", seq, cursor, kseg)
			}
			seg = kseg
			if it.Seek(recordSeekKey(seg, cursor)); !it.Valid() {
				break
			}
			item = it.Item()
			if kseg, seq, class, err = parseRecordKey(item.Key()); err != nil {
				return nil, err
			}
		}
		if !it.Valid() {
			break
		}
		sp := span{seq: seq, class: class, start: len(buf)}
		err = item.Value(func(v []byte) error {
			if len(v) < stampLen {
				return fmt.Errorf("record %d: malformed value of %d bytes", seq, len(v))
			}
			sp.stamp = int64(binary.BigEndian.Uint64(v))
			buf = append(buf, v[stampLen:]...)
			return nil
		})
		if err != nil {
			return nil, err
		}
		sp.end = len(buf)
		if maxBytes > 0 && len(spans) > 0 && sp.end > maxBytes {
			buf = buf[:sp.start]
			break
		}
		spans = append(spans, sp)
	}
	recs := make([]Record, len(spans))
	for i, sp := range spans {
		recs[i] = Record{Seq: sp.seq, Class: sp.class, Appended: time.Unix(0, sp.stamp), Data: buf[sp.start:sp.end:sp.end]}
	}
	return recs, nil
}

// stampOf returns the appended time of a record item.
func stampOf(item *badger.Item) (time.Time, error) {
	var t time.Time
	err := item.Value(func(v []byte) error {
		if len(v) < stampLen {
			return fmt.Errorf("record %x: malformed value of %d bytes", item.Key(), len(v))
		}
		t = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		return nil
	})
	return t, err
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
