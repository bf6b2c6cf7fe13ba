package spool

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/weirgw/weir/merkle"
)

// ackReq is one Ack waiting for the writer.
type ackReq struct {
	upTo uint64
	err  chan error
}

// groupBudget bounds the record data of one group commit, well inside
// Badger's transaction limit, so a group rarely has to be split.
const groupBudget = 1 << 20

// writer makes every change to the database: appends in groups, acks,
// eviction and expiry. Appends that do not fit wait in parked, most
// important first, and are retried whenever something changed.
func (s *Spool) writer() {
	defer close(s.done)
	var parked []*appendReq
	var expiry <-chan time.Time
	if s.cfg.MaxAge > 0 {
		t := time.NewTicker(min(s.cfg.MaxAge/10, time.Minute))
		defer t.Stop()
		expiry = t.C
	}
	ready := false // some parked request waits only for a group to have room
	always := make(chan time.Time)
	close(always)
	disk := time.NewTicker(diskCheckInterval)
	defer disk.Stop()
	for {
		var fresh []*appendReq
		var poll <-chan time.Time
		if ready {
			poll = always
		}
		select {
		case <-s.quit:
			for _, r := range parked {
				if r.state.CompareAndSwap(reqPending, reqCancelled) {
					r.finish(0, ErrClosed)
				}
			}
			return
		case a := <-s.ackCh:
			a.err <- s.ack(a.upTo)
		case f := <-s.forgetCh:
			f.err <- s.forget(f.below)
		case <-expiry:
			s.expire()
		case <-disk.C:
			s.tendDisk()
		case <-poll:
		case r := <-s.appendCh:
			fresh = append(fresh, r)
			size := r.data
		drain:
			for size < groupBudget {
				select {
				case r := <-s.appendCh:
					fresh = append(fresh, r)
					size += r.data
				default:
					break drain
				}
			}
		}
		parked, ready = s.admitAndCommit(append(parked, fresh...))
	}
}

func (r *appendReq) finish(first uint64, err error) {
	r.first, r.err = first, err
	close(r.done)
}

// admitAndCommit admits what fits, the most important first (and in
// arrival order within a class), commits the admitted as one group, and
// returns what must wait; ready reports that some of it waits only for the
// next group, not for room.
func (s *Spool) admitAndCommit(queue []*appendReq) (wait []*appendReq, ready bool) {
	if len(queue) == 0 {
		s.mu.Lock()
		held := s.diskHeld != ""
		s.mu.Unlock()
		if held {
			s.holdForDisk(nil, s.freeSpace())
		}
		return nil, false
	}
	slices.SortStableFunc(queue, func(a, b *appendReq) int { return rank(a.class) - rank(b.class) })
	s.mu.Lock()
	used := s.counts.used()
	held := s.diskHeld != ""
	s.mu.Unlock()
	free := s.freeSpace() // less what the group is expected to take
	var group []*appendReq
	var budget int64
	var diskWait []Class // classes waiting for disk space
	for _, r := range queue {
		if r.state.Load() == reqCancelled {
			continue
		}
		if free != math.MaxInt64 && free-diskCost(r.size) < s.guard.need(r.class, held) {
			s.countRefused(r)
			diskWait = append(diskWait, r.class)
			wait = append(wait, r)
			continue
		}
		limit := s.limit(r.class)
		if used+r.size > limit && r.class == ClassCritical {
			s.evict(used + r.size - limit)
			s.mu.Lock()
			used = s.counts.used() + sizeOf(group)
			s.mu.Unlock()
		}
		if used+r.size > limit {
			s.countRefused(r)
			wait = append(wait, r)
			continue
		}
		if len(group) > 0 && budget+r.data > groupBudget {
			wait, ready = append(wait, r), true
			continue
		}
		if !r.state.CompareAndSwap(reqPending, reqTaken) {
			continue // cancelled just now
		}
		group = append(group, r)
		used += r.size
		budget += r.data
		if free != math.MaxInt64 {
			free -= diskCost(r.size)
		}
	}
	s.holdForDisk(diskWait, free+diskCost(sizeOf(group)))
	s.commitGroup(group)
	return wait, ready
}

// countRefused counts a request's records once as having waited for room.
func (s *Spool) countRefused(r *appendReq) {
	if r.refused {
		return
	}
	r.refused = true
	s.mu.Lock()
	s.refused[r.class] += int64(len(r.entries))
	s.mu.Unlock()
}

// holdForDisk records whether intake waits for disk space: classes are
// those of the requests that wait for it, free what statfs said. A hold
// ends when there is room for the class it held, not when its last waiter
// gives up: an appender whose context ended does not make the disk less
// full, and the status and the log must not say intake resumed.
func (s *Spool) holdForDisk(classes []Class, free int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(classes) == 0 {
		if s.diskHeld != "" {
			if free != math.MaxInt64 && free < s.guard.need(s.heldClass, true) {
				return
			}
			s.log.Info("spool: disk space is back; intake resumed", "dir", s.dir, "free", free, "held_for", s.now().Sub(s.heldSince).Round(time.Millisecond))
		}
		s.diskHeld, s.heldSince = "", time.Time{}
		return
	}
	top := classes[0] // the most important: the queue is sorted
	need := s.guard.need(top, s.diskHeld != "")
	why := fmt.Sprintf("disk full: %s free on the spool's file system; %s records wait for %s (a %s reserve for Badger's own growth",
		mib(free), top, mib(need), mib(s.guard.reserve))
	if top == ClassCritical {
		why += ")"
	} else {
		why += fmt.Sprintf(", and %s above it kept for critical records)", mib(need-s.guard.reserve))
	}
	if s.diskHeld == "" {
		s.heldSince = s.now()
		s.log.Error("spool: intake held: the disk is nearly full", "dir", s.dir, "free", free, "class", top.String(), "reserve", s.guard.reserve)
	}
	s.diskHeld, s.heldClass = why, top
}

func sizeOf(rs []*appendReq) (n int64) {
	for _, r := range rs {
		n += r.size
	}
	return n
}

// commitGroup commits requests in order, as few transactions as Badger's
// limits allow; a request is never split across transactions.
func (s *Spool) commitGroup(group []*appendReq) {
	for len(group) > 0 {
		n, err := s.commitSome(group)
		if err != nil {
			for _, r := range group[:max(n, 1)] {
				r.finish(0, fmt.Errorf("spool: append %d records and %d checkpoints: %w", len(r.entries), len(r.cps), err))
			}
			group = group[max(n, 1):]
			continue
		}
		group = group[n:]
	}
}

// commitSome commits the longest prefix of group that fits one transaction
// and returns its length. If even the first request alone does not fit, it
// returns 0 and an error.
func (s *Spool) commitSome(group []*appendReq) (int, error) {
	n := len(group)
	for {
		err := s.tryCommit(group[:n])
		if !errors.Is(err, badger.ErrTxnTooBig) {
			return n, err
		}
		if n == 1 {
			return 0, fmt.Errorf("%w: the batch is too big for one transaction; split it", err)
		}
		n /= 2
	}
}

// tryCommit stages group in one transaction and commits it, then publishes
// the new sequence numbers and counts.
func (s *Spool) tryCommit(group []*appendReq) error {
	s.mu.Lock()
	next, c := s.next, s.counts
	tree := s.tree.Clone()
	s.mu.Unlock()
	now := s.now()
	stamp := now.UnixNano()
	txn := s.db.NewTransaction(true)
	defer txn.Discard()

	firsts := make([]uint64, len(group))
	seq := next
	var records uint64
	var lastCrit uint64
	var seg uint32
	var opened bool
	if sizeOf(group) > 0 {
		var err error
		if seg, opened, err = s.openSegment(txn, next); err != nil {
			return err
		}
	}
	var data int64
	for i, r := range group {
		if len(r.entries) > 0 {
			firsts[i] = seq
		}
		// Keys and values share one buffer per request, sized so it never
		// moves while the transaction holds slices of it.
		size := 0
		for _, e := range r.entries {
			size += recordKeyLen + headerLen + len(e.Data) + indexKeyLen + 12
			data += int64(len(e.Data))
		}
		buf := make([]byte, 0, size)
		for j, e := range r.entries {
			if j == 0 && r.head != nil {
				th := TreeHead{First: s.treeFirst, Size: tree.Size(), Root: tree.Root(), Began: s.treeBegan}
				if r.evMax > 0 {
					ev, err := s.readEvictions(r.evFrom, r.evMax)
					if err != nil {
						return err
					}
					th.Evicted = ev
				}
				d, err := r.head(th)
				if err != nil {
					return fmt.Errorf("build the record at %d from the tree head: %w", seq, err)
				}
				if len(d) > len(e.Data) {
					return fmt.Errorf("the record built at %d from the tree head is %d bytes, more than the %d reserved", seq, len(d), len(e.Data))
				}
				e.Data = d
			}
			k := len(buf)
			buf = appendRecordKey(buf, seg, seq, e.Class)
			v := len(buf)
			buf = appendRecordValue(buf, buf[k:v], stamp, e.Data)
			if err := txn.Set(buf[k:v:v], buf[v:len(buf):len(buf)]); err != nil {
				return err
			}
			if indexed(e.Class) {
				ik := len(buf)
				buf = appendIndexKey(buf, seg, e.Class, seq)
				iv := len(buf)
				buf = append(buf, indexValue(stamp, len(e.Data))...)
				if err := txn.Set(buf[ik:iv:iv], buf[iv:len(buf):len(buf)]); err != nil {
					return err
				}
			}
			tree.Append(merkle.RecordLeaf(seq, e.Data))
			c.add(e.Class, 1, int64(len(e.Data)))
			if e.Class == ClassCritical {
				lastCrit = seq
			}
			seq++
			records++
		}
		for _, cp := range r.cps {
			var err error
			if cp.Delete {
				err = txn.Delete(checkpointKey(cp.Source))
			} else {
				err = txn.Set(checkpointKey(cp.Source), cp.Position)
			}
			if err != nil {
				return err
			}
		}
	}
	if records > 0 {
		if err := txn.Set([]byte(keyNext), encodeUint64(seq)); err != nil {
			return err
		}
		if err := txn.Set([]byte(keyCounts), c.encode()); err != nil {
			return err
		}
		if err := txn.Set([]byte(keyTree), encodeTree(s.treeFirst, &tree)); err != nil {
			return err
		}
	}
	if err := txn.Commit(); err != nil {
		return err
	}
	if opened {
		s.segmentOpened(seg, next)
	}
	s.segBytes += data
	s.mu.Lock()
	s.commits++
	if records > 0 {
		if r, _ := s.counts.total(); r == 0 {
			s.oldest = now
		}
		s.next, s.counts, s.tree = seq, c, tree
		s.appended += records
		close(s.wake)
		s.wake = make(chan struct{})
		if lastCrit != 0 {
			s.lastCrit = lastCrit
			close(s.critWake)
			s.critWake = make(chan struct{})
		}
	}
	acked := s.acked
	s.mu.Unlock()
	for i, r := range group {
		if len(r.cps) > 0 {
			var upTo uint64
			if len(r.entries) > 0 {
				upTo = firsts[i] + uint64(len(r.entries)) - 1
			}
			s.pos.committed(r.cps, upTo, acked)
		}
		r.finish(firsts[i], nil)
	}
	return nil
}
