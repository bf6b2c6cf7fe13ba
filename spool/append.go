package spool

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// appendReq is one Append waiting for the writer.
type appendReq struct {
	entries []Entry
	cps     []Checkpoint
	class   Class // the class that decides admission: the most important entry's
	size    int64 // what it adds to the backlog's used bytes
	data    int64 // bytes of record data

	// state moves from pending to taken (the writer commits it) or to
	// cancelled (the caller gave up while it waited for room), never both.
	state   atomic.Int32
	refused bool // counted once as refused

	// head, when set, writes the first entry's data from the tree head
	// just before it, in the transaction that stores it (AppendHead).
	head   func(TreeHead) ([]byte, error)
	evFrom uint64 // the eviction log from here goes to head
	evMax  int

	first uint64
	err   error
	done  chan struct{}
}

const (
	reqPending int32 = iota
	reqTaken
	reqCancelled
)

// One Append is one transaction, so it must fit Badger's transaction limit
// for the small profile's memtable (about 307 KiB and 3,270 keys, two keys
// a record): sources size their batches below these.
const (
	MaxAppendBytes   = 208 << 10 // record data
	MaxAppendRecords = 1024      // records plus checkpoints
)

// rank orders classes by importance for admission: critical first.
func rank(c Class) int {
	switch c {
	case ClassCritical:
		return 0
	case ClassNormal:
		return 1
	}
	return 2
}

// Append stores entries and checkpoints (or deletes checkpoints, see
// Checkpoint.Delete) in one fsynced transaction and returns the sequence of
// the first entry; the others follow it without gaps. Zero entries with
// some checkpoints commits the checkpoints and returns 0. Concurrent
// Appends share a commit.
//
// When the spool is full Append waits for room (backpressure) until ctx is
// done: bulk records wait from 90 % of max_bytes, normal ones from 100 %,
// and critical ones evict the oldest bulk, then normal, records and wait
// only when nothing else is left to evict. A batch that could never fit is
// an error. If Append returns an error, nothing of the batch was stored.
func (s *Spool) Append(ctx context.Context, entries []Entry, checkpoints []Checkpoint) (first uint64, err error) {
	return s.append(ctx, entries, checkpoints, nil, 0, 0)
}

// AppendHead appends one record of class c whose data build writes from
// the Merkle log's head as it stands just before that record, in the
// transaction that stores it: a signed tree head (a seal) that covers
// exactly the records before it. build may run more than once (a
// transaction retried smaller) and must return the same bytes each time,
// at most reserve of them. The head's Evicted holds up to maxEvictions
// entries of the eviction log from number evictionsFrom, as it stands
// then. The checkpoints commit with the record, staged after build runs
// (build may set their positions).
func (s *Spool) AppendHead(ctx context.Context, c Class, reserve int, evictionsFrom uint64, maxEvictions int,
	build func(TreeHead) ([]byte, error), checkpoints []Checkpoint) (uint64, error) {
	if build == nil {
		return 0, errors.New("spool: append head: no builder")
	}
	return s.append(ctx, []Entry{{Class: c, Data: make([]byte, reserve)}}, checkpoints, build, evictionsFrom, maxEvictions)
}

func (s *Spool) append(ctx context.Context, entries []Entry, checkpoints []Checkpoint, head func(TreeHead) ([]byte, error), evFrom uint64, evMax int) (first uint64, err error) {
	if len(entries) == 0 && len(checkpoints) == 0 {
		return 0, nil
	}
	if len(entries)+len(checkpoints) > MaxAppendRecords {
		return 0, fmt.Errorf("spool: append %d records and %d checkpoints: more than the %d one append may carry; split the batch",
			len(entries), len(checkpoints), MaxAppendRecords)
	}
	r := &appendReq{entries: entries, cps: checkpoints, class: ClassBulk, head: head, evFrom: evFrom, evMax: evMax, done: make(chan struct{})}
	for i, c := range checkpoints {
		if c.Source == "" {
			return 0, fmt.Errorf("spool: append: checkpoint %d has no source", i)
		}
	}
	for i, e := range entries {
		if e.Class >= numClasses {
			return 0, fmt.Errorf("spool: append: entry %d has unknown class %d", i, e.Class)
		}
		if rank(e.Class) < rank(r.class) {
			r.class = e.Class
		}
		r.data += int64(len(e.Data))
	}
	if r.data > MaxAppendBytes {
		return 0, fmt.Errorf("spool: append %d records of %d bytes: more than the %d bytes one append may carry; split the batch",
			len(entries), r.data, MaxAppendBytes)
	}
	r.size = r.data + int64(len(entries))*recordOverhead
	// Unreachable with the 1MiB minimum max_bytes and the append limits
	// above; kept so a change to either cannot make an append wait forever.
	if limit := s.limit(r.class); r.size > limit {
		return 0, fmt.Errorf("spool: append %d records of %d bytes: larger than the %d bytes a %s batch may ever take (spool.max_bytes %s)",
			len(entries), r.data, limit, r.class, s.cfg.MaxBytes)
	}
	select {
	case s.appendCh <- r:
	case <-s.quit:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, fmt.Errorf("spool: append: %w", ctx.Err())
	}
	select {
	case <-r.done:
		return r.first, r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqPending, reqCancelled) {
			return 0, fmt.Errorf("spool: append %d %s records: %w while waiting for room", len(entries), r.class, ctx.Err())
		}
		<-r.done // the writer took it: report what happened
		return r.first, r.err
	}
}

// limit is the backlog a class may fill.
func (s *Spool) limit(c Class) int64 {
	if c == ClassBulk {
		return int64(s.cfg.MaxBytes) / 10 * 9
	}
	return int64(s.cfg.MaxBytes)
}
