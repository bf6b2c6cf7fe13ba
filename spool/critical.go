package spool

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// ReadCritical returns up to maxRecs unacknowledged critical records with
// Seq >= cursor in ascending order, holding at most maxBytes of Data
// (maxBytes <= 0: no limit) but at least one record if there is one: the
// records the uplink sends ahead of the backlog. It reads the critical
// index, a seek per segment, and returns nothing at once when no critical
// record was appended at or after cursor.
//
// A critical record whose checksum fails, or whose index key names a
// record that cannot be read, is skipped here: Read finds it in sequence
// order and quarantines it. Critical records written by a version that did
// not index them are not returned: Read returns them in order.
func (s *Spool) ReadCritical(cursor uint64, maxRecs int, maxBytes int) (recs []Record, err error) {
	if maxRecs < 1 {
		return nil, fmt.Errorf("spool: read critical from %d: max %d records, want at least 1", cursor, maxRecs)
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.mu.Lock()
	v := readView{next: s.next, segs: s.segs, checkedFrom: s.checkedFrom}
	last := s.lastCrit
	s.mu.Unlock()
	if cursor > last {
		return nil, nil
	}
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	// As in Read: the mark read after the snapshot covers every record
	// the snapshot lacks.
	s.mu.Lock()
	v.acked = s.acked
	v.skip = s.skip.clone()
	s.mu.Unlock()
	cursor = max(cursor, v.acked+1)
	if cursor >= v.next {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			recs, err = nil, fmt.Errorf("spool: read critical from %d: badger: %v", cursor, r)
		}
	}()
	return v.readCritical(txn, cursor, maxRecs, maxBytes)
}

func (v *readView) readCritical(txn *badger.Txn, cursor uint64, maxRecs, maxBytes int) ([]Record, error) {
	var (
		recs []Record
		size int
	)
	first := v.segmentOf(cursor)
	for _, sg := range v.segs {
		if sg.id < first {
			continue
		}
		done, err := func() (bool, error) {
			prefix := indexClassPrefix(nil, sg.id, ClassCritical)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			defer it.Close()
			for it.Seek(appendIndexKey(nil, sg.id, ClassCritical, cursor)); it.Valid(); it.Next() {
				_, _, seq, err := parseIndexKey(it.Item().Key())
				if err != nil || seq < cursor || seq >= v.next || v.skip.has(seq) {
					continue
				}
				key := appendRecordKey(nil, sg.id, seq, ClassCritical)
				item, err := txn.Get(key)
				if errors.Is(err, badger.ErrKeyNotFound) {
					continue // damage: Read will quarantine it
				}
				if err != nil {
					return true, err
				}
				var rec Record
				ok := false
				err = item.Value(func(val []byte) error {
					stamp, data, kind := parseRecordValue(key, val, seq >= v.checkedFrom)
					if kind == valueRecord {
						rec = Record{Seq: seq, Class: ClassCritical, Appended: time.Unix(0, stamp), Data: bytes.Clone(data)}
						ok = true
					}
					return nil
				})
				if err != nil {
					return true, err
				}
				if !ok {
					continue
				}
				if maxBytes > 0 && len(recs) > 0 && size+len(rec.Data) > maxBytes {
					return true, nil
				}
				recs = append(recs, rec)
				size += len(rec.Data)
				if len(recs) >= maxRecs {
					return true, nil
				}
			}
			return false, nil
		}()
		if err != nil {
			return nil, fmt.Errorf("spool: read critical from %d: %w", cursor, err)
		}
		if done {
			break
		}
	}
	return recs, nil
}

// lastCritical is the newest critical record's sequence by the index, 0
// if there is none: a reverse seek per segment, newest first.
func lastCritical(txn *badger.Txn, segs []segment) uint64 {
	for i := len(segs) - 1; i >= 0; i-- {
		prefix := indexClassPrefix(nil, segs[i].id, ClassCritical)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		it.Seek(append(bytes.Clone(prefix), bytes.Repeat([]byte{0xff}, 8)...))
		var seq uint64
		if it.Valid() {
			if _, _, s, err := parseIndexKey(it.Item().Key()); err == nil {
				seq = s
			}
		}
		it.Close()
		if seq != 0 {
			return seq
		}
	}
	return 0
}
