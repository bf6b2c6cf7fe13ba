package spool

import (
	"errors"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"
)

// A segment is a run of consecutive sequence numbers whose records share a
// key prefix. Ack only moves the mark; once every record of a segment is
// acknowledged, the writer drops the whole prefix with Badger's DropPrefix,
// which deletes the segment's tables outright. Deleting a queue's records
// one by one instead leaves tombstones that Badger reclaims only when
// compaction happens to reach them (dgraph-io/badger#1995): the disk then
// holds several times the backlog.
type segment struct {
	id    uint32
	first uint64 // first sequence of the segment
}

// Segment size: a segment closes once it holds an eighth of the backlog's
// bytes, at least a memtable's worth and at most an eighth of max_bytes
// (256 KiB to 256 MiB), decided when it opens.
//
// The floor is what makes a spool that keeps up cheap. DropPrefix flushes
// the memtables first, leaving out the dropped prefixes, so records
// acknowledged before their segment is dropped are never written to a
// table, compacted or synced again: with segments of one memtable (2 MiB)
// instead of an eighth of the default max_bytes (256 MiB), the gateway
// spent about half the CPU per record end to end (weir-bench e2e).
// Smaller segments cost more in drops than they save (512 KiB was worse).
//
// The eighth is what keeps a backlog cheap: every drop also compacts level
// 0, and a 1,000,000-record backlog of memtable-sized segments drained at
// half the rate; growing by a sixteenth, 27 % slower than 256 MiB ones,
// by an eighth 20 % (medians of 5 and 2 runs).
// Growing with the backlog, segments number about 8 + 8.5 ln(backlog /
// 8 memtables), under 60 for 4 GiB, and hold at most an eighth of it
// acknowledged on disk, as before.
const (
	minSegmentBytes = 256 << 10
	maxSegmentBytes = 256 << 20
)

// segmentBounds are the smallest and largest segment sizes for c.
func segmentBounds(c Config) (lo, hi int64) {
	hi = min(max(int64(c.MaxBytes)/8, minSegmentBytes), maxSegmentBytes)
	lo = smallMemtable
	if c.Profile == ProfileLarge {
		lo = largeMemtable
	}
	return min(lo, hi), hi
}

// segmentTarget is the size of a segment opened with used bytes held.
func (s *Spool) segmentTarget(used int64) int64 {
	return min(max(used/8, s.segBytesMin), s.segBytesMax)
}

// segmentOf is the id of the segment that holds seq, or would: the last
// segment starting at or before it, or the first segment if seq precedes
// them all. Callers hold s.mu.
func (s *Spool) segmentOf(seq uint64) uint32 {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > seq })
	switch {
	case i > 0:
		return s.segs[i-1].id
	case len(s.segs) > 0:
		return s.segs[0].id
	}
	return 0
}

// loadSegments reads the segment table.
func loadSegments(txn *badger.Txn) ([]segment, error) {
	var segs []segment
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(segmentPrefix), PrefetchValues: true, PrefetchSize: 16})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		id, err := parseSegmentKey(item.Key())
		if err != nil {
			return nil, err
		}
		var first uint64
		if err := item.Value(func(v []byte) (err error) {
			first, err = decodeUint64(string(item.Key()), v)
			return err
		}); err != nil {
			return nil, err
		}
		segs = append(segs, segment{id: id, first: first})
	}
	return segs, nil
}

// dropAcked drops the segments whose records are all acknowledged. The
// open segment is closed and dropped too once it is fully acknowledged and
// holds at least a quarter of its size, so a spool that keeps up gives
// back its space without waiting for a segment to fill. It runs in the
// writer (and in Open, before the writer starts), the only places that
// write, because DropPrefix fails every write made while it runs.
func (s *Spool) dropAcked() error {
	s.mu.Lock()
	segs, acked, next := s.segs, s.acked, s.next
	s.mu.Unlock()
	var drop []segment
	for i, sg := range segs {
		end := next - 1
		if i+1 < len(segs) {
			end = segs[i+1].first - 1
		} else if s.segOpen && s.segBytes < s.segTarget/4 {
			break
		}
		if end > acked {
			break
		}
		drop = append(drop, sg)
	}
	if len(drop) == 0 {
		return nil
	}
	prefixes := make([][]byte, 0, 2*len(drop))
	for _, sg := range drop {
		prefixes = append(prefixes, segmentRecordPrefix(nil, sg.id), segmentIndexPrefix(nil, sg.id))
	}
	if err := s.db.DropPrefix(prefixes...); err != nil {
		return fmt.Errorf("drop acknowledged segments %d..%d: %w", drop[0].id, drop[len(drop)-1].id, err)
	}
	// The table entries go only after their records: a crash in between
	// leaves entries for empty segments, which the next Open drops again.
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, sg := range drop {
			if err := txn.Delete(segmentKey(sg.id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("forget dropped segments %d..%d: %w", drop[0].id, drop[len(drop)-1].id, err)
	}
	s.mu.Lock()
	s.segs = s.segs[len(drop):]
	s.drops += uint64(len(drop))
	if len(s.segs) == 0 {
		s.segOpen = false
	}
	s.mu.Unlock()
	return nil
}

// openSegment stages a new segment in txn if the open one is full (or
// there is none) and returns the segment the group's records go to; the
// caller publishes it with segmentOpened once txn commits.
func (s *Spool) openSegment(txn *badger.Txn, first uint64) (seg uint32, opened bool, err error) {
	if s.segOpen && s.segBytes < s.segTarget {
		return s.lastSeg, false, nil
	}
	seg = s.lastSeg + 1
	if seg == 0 {
		return 0, false, errors.New("segment ids exhausted")
	}
	if err := txn.Set(segmentKey(seg), encodeUint64(first)); err != nil {
		return 0, false, err
	}
	return seg, true, nil
}

// segmentOpened publishes a segment whose first records committed.
func (s *Spool) segmentOpened(seg uint32, first uint64) {
	s.lastSeg, s.segOpen, s.segBytes = seg, true, 0
	s.mu.Lock()
	s.segs = append(s.segs, segment{id: seg, first: first})
	s.segTarget = s.segmentTarget(s.counts.used())
	s.mu.Unlock()
}
