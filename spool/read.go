package spool

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Read returns up to max records with Seq >= cursor in ascending order,
// holding at most maxBytes of Data in total (maxBytes <= 0: no byte limit),
// but always at least one record if there is one. Acknowledged records are
// never returned. An empty result means nothing is there yet: wait on
// Appended. max must be at least 1.
//
// Every record is checked on the way out: a record whose checksum fails,
// and a sequence that should be there but cannot be read (a damaged table
// block), is quarantined (see Quarantined) and skipped, never returned, and
// the read goes on past it.
func (s *Spool) Read(cursor uint64, max int, maxBytes int) (recs []Record, err error) {
	if max < 1 {
		return nil, fmt.Errorf("spool: read from %d: max %d records, want at least 1", cursor, max)
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	// Every sequence below next was committed before the snapshot is
	// taken, and lies in a segment of segs, so the snapshot must hold a
	// key for each one above the ack mark. The mark is read after the
	// snapshot, so the snapshot cannot hold records dropped by an Ack that
	// completed before the mark was read.
	s.mu.Lock()
	v := readView{next: s.next, segs: s.segs, checkedFrom: s.checkedFrom}
	s.mu.Unlock()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	s.mu.Lock()
	v.acked = s.acked
	v.skip = s.skip.clone()
	s.mu.Unlock()
	if cursor <= v.acked {
		cursor = v.acked + 1
	}
	if cursor >= v.next {
		return nil, nil
	}
	// Badger does not return errors from iterators; a damaged table that
	// its block checksums miss could still make it panic. A panic here is
	// a read that failed, not a dead gateway.
	defer func() {
		if r := recover(); r != nil {
			recs, err = nil, fmt.Errorf("spool: read from %d: badger: %v", cursor, r)
		}
	}()
	recs, bad := v.read(txn, cursor, max, maxBytes)
	if len(bad) > 0 {
		s.quarantine(bad)
	}
	return recs, nil
}

// readView is what one Read knows of the spool, taken under s.mu.
type readView struct {
	next, acked, checkedFrom uint64
	segs                     []segment
	skip                     seqSpans // quarantined already
}

func (v *readView) segmentOf(seq uint64) uint32 {
	i := sort.Search(len(v.segs), func(i int) bool { return v.segs[i].first > seq })
	switch {
	case i > 0:
		return v.segs[i-1].id
	case len(v.segs) > 0:
		return v.segs[0].id
	}
	return 0
}

// read walks the records from cursor, expecting every sequence up to
// v.next to have a key (a record or an eviction marker) from s/checked
// on. A sequence the walk does not find is looked up on its own: Badger's
// iterators end a table silently at a block whose checksum fails, and a
// seek past that block finds the records after it. What cannot be found
// that way, and what fails its checksum, comes back as bad.
func (v *readView) read(txn *badger.Txn, cursor uint64, max, maxBytes int) ([]Record, []Quarantined) {
	type span struct {
		seq        uint64
		class      Class
		stamp      int64
		start, end int
	}
	var (
		spans []span
		buf   []byte
		bad   []Quarantined
	)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix)})
	defer it.Close()
	seek := func(seq uint64) { it.Seek(recordSeekKey(v.segmentOf(seq), seq)) }
	// at returns the sequence and class under the iterator, if it is at a
	// record key at or after e.
	at := func(e uint64) (seq uint64, class Class, ok bool) {
		for ; it.Valid(); it.Next() {
			_, seq, class, err := parseRecordKey(it.Item().Key())
			if err == nil && seq >= e {
				return seq, class, true
			}
			// A key that does not parse, or sorts before where it
			// should, can only come from damage; its sequence, if it
			// has one, is reported missing below.
		}
		return 0, 0, false
	}
	e := cursor // the next sequence expected
	seek(e)
	for len(spans) < max && e < v.next {
		seq, class, ok := at(e)
		if !ok || seq > e {
			hi := v.next - 1
			if ok {
				hi = min(seq-1, hi)
			}
			if e < v.checkedFrom {
				// Legacy records: evictions left real gaps.
				if !ok {
					break
				}
				e = seq
				continue
			}
			found, missing := v.probe(seek, at, e, hi)
			bad = append(bad, missing...)
			if found == 0 {
				e = hi + 1
				seek(e)
				continue
			}
			e = found
			seq, class, _ = at(e) // probe left the iterator on found
		}
		if v.skip.has(seq) {
			e = seq + 1
			it.Next()
			continue
		}
		item := it.Item()
		sp := span{seq: seq, class: class, start: len(buf)}
		kind := valueCorrupt
		_ = item.Value(func(val []byte) error {
			var data []byte
			sp.stamp, data, kind = parseRecordValue(item.Key(), val, seq >= v.checkedFrom)
			switch kind {
			case valueRecord:
				if buf == nil {
					// Every sequence from here to next has a key, so
					// at most next-seq records follow (the cursor may
					// lie far below the first record: a fresh spool's
					// mark is 0 and its numbers start at the clock).
					n := min(uint64(max), v.next-seq, maxReadSpans)
					buf = make([]byte, 0, readBufferSize(len(data), n, maxBytes))
					spans = make([]span, 0, n)
				}
				buf = append(buf, data...)
			case valueCorrupt:
				bad = append(bad, Quarantined{First: seq, Last: seq, Records: 1, Reason: reasonChecksum,
					Key: item.KeyCopy(nil), Value: append([]byte(nil), val...)})
			}
			return nil
		})
		e = seq + 1
		it.Next()
		if kind != valueRecord {
			continue
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
	return recs, bad
}

// readBufferSize is the room a Read first takes for the data of n
// records that may follow one of size bytes, at most maxBytes (and one
// record more, which is read and then left out) and at most
// maxReadBuffer: enough for a run of records of one size, so the buffer is
// not grown (copied and thrown away) record by record, and no more.
func readBufferSize(size int, n uint64, maxBytes int) int {
	want := uint64(max(size, 1)) * max(n, 1)
	if maxBytes > 0 {
		want = min(want, uint64(maxBytes)+uint64(size))
	}
	return int(min(want, maxReadBuffer))
}

// maxReadBuffer and maxReadSpans bound the room a Read takes ahead, for
// data and for records; a Read of more grows it as it goes.
const (
	maxReadBuffer = 1 << 20
	maxReadSpans  = 4096
)

// probe looks for the sequences lo..hi one by one and returns the first it
// finds (0 if none), with the iterator on it, and the runs it could not
// find as quarantined, less what was quarantined before. One seek per
// missing sequence: a damaged block holds a few dozen records, and once
// quarantined they are never looked for again.
func (v *readView) probe(seek func(uint64), at func(uint64) (uint64, Class, bool), lo, hi uint64) (found uint64, missing []Quarantined) {
	run := func(first, last uint64) {
		for _, r := range v.skip.subtract(first, last) {
			missing = append(missing, Quarantined{First: r.first, Last: r.last, Records: int(r.last - r.first + 1), Reason: reasonUnreadable})
		}
	}
	for k := lo; k <= hi; k++ {
		if v.skip.has(k) {
			continue
		}
		seek(k)
		if seq, _, ok := at(k); ok && seq == k {
			if k > lo {
				run(lo, k-1)
			}
			return k, missing
		}
	}
	run(lo, hi)
	return 0, missing
}

// firstStamp is the appended time of the first record at or after seek,
// markers and damaged values skipped; zero if there is none.
func (s *Spool) firstStamp(txn *badger.Txn, seek []byte) time.Time {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(recordPrefix)})
	defer it.Close()
	for it.Seek(seek); it.Valid(); it.Next() {
		item := it.Item()
		_, seq, _, err := parseRecordKey(item.Key())
		if err != nil {
			continue
		}
		var t time.Time
		_ = item.Value(func(v []byte) error {
			if stamp, _, kind := parseRecordValue(item.Key(), v, seq >= s.checkedFrom); kind == valueRecord {
				t = time.Unix(0, stamp)
			}
			return nil
		})
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
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
