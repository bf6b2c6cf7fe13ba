package spool

import (
	"github.com/dgraph-io/badger/v4"
)

// evict removes the oldest bulk records, then the oldest normal ones,
// until need bytes are free or none of those classes is left. It runs in
// the writer, for a critical Append that does not fit.
func (s *Spool) evict(need int64) {
	var freed int64
	for _, cl := range []Class{ClassBulk, ClassNormal} {
		if freed >= need {
			return
		}
		var picked int64
		freed += s.removeOldest(cl, func(_ int64, size int64) bool {
			if freed+picked >= need {
				return false
			}
			picked += size + recordOverhead
			return true
		}, &s.evicted)
	}
}

// expire removes bulk and normal records older than max_age.
func (s *Spool) expire() {
	if s.freeSpace() < s.guard.writeFloor() {
		return // markers are writes too; expiry waits for room
	}
	cutoff := s.now().Add(-s.cfg.MaxAge).UnixNano()
	for _, cl := range []Class{ClassBulk, ClassNormal} {
		s.removeOldest(cl, func(stamp, _ int64) bool { return stamp < cutoff }, &s.expired)
	}
}

// removeOldest walks class cl's index, segment by segment from the ack
// mark, and deletes unacknowledged records while take says so; the
// deleted are counted in counter. It returns the bytes freed as counted
// against max_bytes.
func (s *Spool) removeOldest(cl Class, take func(stamp, size int64) bool, counter *[numClasses]int64) int64 {
	s.mu.Lock()
	from := s.acked + 1
	segs := append([]segment(nil), s.segs...)
	treeFirst := s.treeFirst
	s.mu.Unlock()
	var recs []doomed
	var freed int64
	err := s.db.View(func(txn *badger.Txn) error {
		for _, sg := range segs {
			prefix := indexClassPrefix(nil, sg.id, cl)
			more, err := func() (bool, error) {
				it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
				defer it.Close()
				for it.Seek(appendIndexKey(nil, sg.id, cl, from)); it.Valid(); it.Next() {
					item := it.Item()
					seg, _, seq, err := parseIndexKey(item.Key())
					if err != nil {
						return false, err
					}
					var stamp, size int64
					if err := item.Value(func(v []byte) error {
						stamp, size, err = parseIndexValue(v)
						return err
					}); err != nil {
						return false, err
					}
					if !take(stamp, size) {
						return false, nil
					}
					d := doomed{seg: seg, seq: seq, class: cl, size: size}
					if seq >= treeFirst {
						// Its leaf hash goes to the eviction log: read it
						// now, while the record is still there.
						d.leafy = true
						d.leaf = s.leafOf(txn, seg, seq, cl)
					}
					recs = append(recs, d)
					freed += size + recordOverhead
				}
				return true, nil
			}()
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
	if err == nil && len(recs) > 0 {
		err = s.deleteRecords(recs, func(c Class) {
			s.mu.Lock()
			counter[c]++
			s.mu.Unlock()
		})
		if rerr := s.refreshOldest(); err == nil {
			err = rerr
		}
	}
	if err != nil {
		s.log.Error("spool: removing old records failed", "class", cl, "dir", s.dir, "err", err)
		return 0
	}
	if len(recs) > 0 {
		s.log.Warn("spool: removed unacknowledged records", "class", cl, "records", len(recs), "bytes", freed)
	}
	return freed
}
