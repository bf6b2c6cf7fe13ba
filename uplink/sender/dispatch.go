package sender

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/weirgw/weir/spool"
)

// span is a batch's sequence range, first..last inclusive.
type span struct{ first, last uint64 }

// outstanding is a batch handed to a session and not yet acked.
type outstanding struct {
	span
	queued bool // its session failed: waiting to be sent again
}

// dispatcher hands disjoint batches to sessions (one in failover mode,
// one per healthy endpoint in balance mode), takes their acks, and acks
// the spool up to just below the oldest batch not yet acked. A batch whose
// session fails before its ack is queued and goes to the next session that
// asks, before any new record.
//
// Critical records go ahead of the backlog: before reading on in sequence
// order from its cursor, the dispatcher reads the spool's critical records
// beyond the cursor (prioritySpool) and sends them as batches of their
// own, each a run of consecutive sequences. Such a batch is outstanding
// like any other, and its span is kept in ahead until the cursor passes
// it, so that the reading in order skips it: a record sent ahead is never
// sent again by the cursor, acked or not (a session that fails queues it
// for resending like any batch). The spool's mark is still one cumulative
// sequence, just below the oldest batch outstanding or the cursor: a
// critical record the collector acknowledged ahead of the backlog stays in
// the spool until the backlog before it is acknowledged too, so the mark
// never passes a record the collector does not hold, and the Hello floor
// (floor) never claims one. After a restart the dispatcher knows nothing
// of what went ahead: those records are sent again in order, and the
// collector, which dedupes by (gateway, sequence), acks them without
// writing them twice.
type dispatcher struct {
	sp        Spool
	prio      prioritySpool // nil: the spool reads in sequence order only
	maxRecs   int
	maxBytes  int
	flush     time.Duration
	flushIdle bool // a partial batch goes at once on an idle link (takeFor)
	now       func() time.Time
	onAhead   func(collector, spoolLast uint64)
	mu        sync.Mutex
	cursor    uint64        // next sequence to read from the spool in order
	critFrom  uint64        // next sequence to look for critical records from
	ahead     []span        // batches sent ahead of the cursor, sorted; each first >= cursor until pruned
	out       []outstanding // sorted by first
	ackMark   uint64        // the spool is acked up to here
	spoolLast uint64        // the highest sequence the spool is known to have assigned
	kick      chan struct{} // closed when a batch is queued for resend
	ackedRecs uint64
	aheadRecs uint64 // records sent ahead of the backlog
}

// prioritySpool is what the dispatcher needs of the spool to send
// critical records ahead of the backlog; *spool.Spool has it, a view of it
// shared with SIEM outputs does not (its records then go in order).
type prioritySpool interface {
	ReadCritical(cursor uint64, max, maxBytes int) ([]spool.Record, error)
	CriticalAppended() <-chan struct{}
}

func newDispatcher(sp Spool, maxRecs, maxBytes int, flush time.Duration) (*dispatcher, error) {
	d := &dispatcher{sp: sp, maxRecs: maxRecs, maxBytes: maxBytes, flush: flush, now: time.Now, kick: make(chan struct{})}
	d.prio, _ = sp.(prioritySpool)
	st := sp.Stats()
	d.ackMark = st.AckedUpTo
	d.cursor = st.NextSeq
	d.spoolLast = st.NextSeq - 1
	recs, err := sp.Read(st.AckedUpTo+1, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("uplink: read spool at %d: %w", st.AckedUpTo+1, err)
	}
	if len(recs) > 0 {
		d.cursor = recs[0].Seq
	}
	return d, nil
}

// floor is the sequence below the oldest record not acked: every sequence
// at or below it is held by the collector or gone from the spool.
func (d *dispatcher) floor() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	// A batch sent ahead of the cursor may be the oldest outstanding:
	// the records between the cursor and it were never sent.
	f := d.cursor - 1
	if len(d.out) > 0 {
		f = min(f, d.out[0].first-1)
	}
	return f
}

// resume takes a Welcome: the collector holds everything up to highest.
func (d *dispatcher) resume(highest uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	last := d.sp.Stats().NextSeq - 1
	d.spoolLast = max(d.spoolLast, last)
	if highest > last && d.onAhead != nil {
		d.onAhead(highest, last)
	}
	// A batch the collector holds whole is done, whoever has it in flight;
	// one it holds in part stays (its session's ack names it whole, and a
	// resend is deduped there).
	kept := d.out[:0]
	for _, o := range d.out {
		if o.last > highest {
			kept = append(kept, o)
		}
	}
	d.out = kept
	if highest >= d.cursor {
		d.advance(highest + 1)
	}
	return d.ackSpool()
}

// advance moves the cursor to c and forgets the batches sent ahead that
// it passed.
func (d *dispatcher) advance(c uint64) {
	d.cursor = max(d.cursor, c)
	n := 0
	for n < len(d.ahead) && d.ahead[n].last < d.cursor {
		n++
	}
	d.ahead = d.ahead[n:]
}

// criticalAppended is closed when a critical record is appended; nil
// without priority.
func (d *dispatcher) criticalAppended() <-chan struct{} {
	if d.prio == nil {
		return nil
	}
	return d.prio.CriticalAppended()
}

// takeCritical returns the next run of critical records beyond the
// cursor not yet sent, as an outstanding batch; nil when there is none.
func (d *dispatcher) takeCritical(maxRecs, maxBytes int) (*batch, error) {
	from := max(d.critFrom, d.cursor)
	recs, err := d.prio.ReadCritical(from, maxRecs, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("uplink: read spool's critical records at %d: %w", from, err)
	}
	b := cut(recs, ^uint64(0))
	if b == nil {
		return nil, nil
	}
	d.critFrom = b.last + 1
	d.spoolLast = max(d.spoolLast, b.last)
	d.insert(outstanding{span: b.span})
	i := sort.Search(len(d.ahead), func(i int) bool { return d.ahead[i].first > b.first })
	d.ahead = slices.Insert(d.ahead, i, b.span)
	d.aheadRecs += uint64(len(b.recs))
	return b, nil
}

// batch is what take hands a session.
type batch struct {
	span
	recs  []spool.Record
	bytes uint64
}

// take returns the next batch, or nil and when to ask again (zero: when
// the spool has more, or a batch is queued). A partial batch of new records
// waits until its oldest record is flush old.
func (d *dispatcher) take() (*batch, time.Time, error) {
	return d.takeWithin(d.maxRecs, d.maxBytes)
}

// takeWithin is take under a session's limits, which the collector may
// have set below the configured ones (Welcome); a queued batch larger than
// them is cut, the rest staying queued.
func (d *dispatcher) takeWithin(maxRecs, maxBytes int) (*batch, time.Time, error) {
	return d.takeFor(maxRecs, maxBytes, false)
}

// takeFor is takeWithin for a session whose link is idle or not: on an
// idle link (nothing in flight) with flush_when_idle, a partial batch goes
// at once rather than wait for flush_interval. Batches are then clocked
// by the acknowledgements: records that come while one is in flight wait
// for its ack (which wakes the session) and go together, so a batch holds
// about a round trip's records, and a record waits about a round trip plus
// the collector's fsync instead of up to flush_interval.
func (d *dispatcher) takeFor(maxRecs, maxBytes int, idle bool) (*batch, time.Time, error) {
	maxRecs, maxBytes = min(maxRecs, d.maxRecs), min(maxBytes, d.maxBytes)
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.out {
		o := &d.out[i]
		if !o.queued {
			continue
		}
		recs, err := d.sp.Read(o.first, maxRecs, maxBytes)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("uplink: read spool at %d: %w", o.first, err)
		}
		b := cut(recs, o.last)
		if b == nil { // evicted or expired meanwhile
			d.out = append(d.out[:i], d.out[i+1:]...)
			if err := d.ackSpool(); err != nil {
				return nil, time.Time{}, err
			}
			return d.takeAgain(maxRecs, maxBytes, idle)
		}
		if b.last < o.last { // the batch limit or a gap cut it: the rest stays queued
			rest := outstanding{span: span{b.last + 1, o.last}, queued: true}
			o.last = b.last
			d.insert(rest)
			o = &d.out[i]
		}
		o.first, o.queued = b.first, false
		return b, time.Time{}, nil
	}
	if d.prio != nil {
		b, err := d.takeCritical(maxRecs, maxBytes)
		if b != nil || err != nil {
			return b, time.Time{}, err
		}
	}
	for {
		recs, err := d.sp.Read(d.cursor, maxRecs, maxBytes)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("uplink: read spool at %d: %w", d.cursor, err)
		}
		if len(recs) > 0 && len(d.ahead) > 0 && recs[0].Seq >= d.ahead[0].first {
			d.advance(d.ahead[0].last + 1) // sent ahead already: not again
			continue
		}
		limit := ^uint64(0)
		if len(d.ahead) > 0 {
			limit = d.ahead[0].first - 1
		}
		b := cut(recs, limit)
		if b == nil {
			return nil, time.Time{}, nil
		}
		full := len(b.recs) == maxRecs || int(b.bytes)+int(b.bytes)/len(b.recs) > maxBytes || len(b.recs) < len(recs)
		if due := b.recs[0].Appended.Add(d.flush); !full && !(idle && d.flushIdle) && d.now().Before(due) {
			return nil, due, nil
		}
		d.advance(b.last + 1)
		d.spoolLast = max(d.spoolLast, b.last)
		d.insert(outstanding{span: b.span})
		return b, time.Time{}, nil
	}
}

func (d *dispatcher) takeAgain(maxRecs, maxBytes int, idle bool) (*batch, time.Time, error) {
	d.mu.Unlock()
	defer d.mu.Lock()
	return d.takeFor(maxRecs, maxBytes, idle)
}

// cut returns the leading run of consecutive sequences at or below last.
func cut(recs []spool.Record, last uint64) *batch {
	if len(recs) == 0 || recs[0].Seq > last {
		return nil
	}
	b := &batch{span: span{recs[0].Seq, recs[0].Seq}}
	for i, r := range recs {
		if r.Seq > last || (i > 0 && r.Seq != b.last+1) {
			break // a gap left by eviction or expiry: the next batch starts after it
		}
		b.last = r.Seq
		b.recs = recs[:i+1]
		b.bytes += uint64(len(r.Data))
	}
	return b
}

func (d *dispatcher) insert(o outstanding) {
	i := sort.Search(len(d.out), func(i int) bool { return d.out[i].first > o.first })
	d.out = append(d.out, outstanding{})
	copy(d.out[i+1:], d.out[i:])
	d.out[i] = o
}

func (d *dispatcher) find(s span) int {
	i := sort.Search(len(d.out), func(i int) bool { return d.out[i].first >= s.first })
	if i < len(d.out) && d.out[i].span == s {
		return i
	}
	return -1
}

// ack takes a session's ack of s.
func (d *dispatcher) ack(s span) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i := d.find(s); i >= 0 {
		d.out = append(d.out[:i], d.out[i+1:]...)
		d.ackedRecs += s.last - s.first + 1
	}
	return d.ackSpool()
}

// fail queues a failed session's unacked batches for another session.
func (d *dispatcher) fail(spans []span) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, s := range spans {
		if i := d.find(s); i >= 0 && !d.out[i].queued {
			d.out[i].queued = true
			n++
		}
	}
	if n > 0 {
		close(d.kick)
		d.kick = make(chan struct{})
	}
}

// kicked is closed when batches are queued for resend.
func (d *dispatcher) kicked() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.kick
}

func (d *dispatcher) ackSpool() error {
	mark := d.cursor - 1
	if len(d.out) > 0 {
		mark = min(mark, d.out[0].first-1) // see floor
	}
	// Stats would cost a directory scan per ack; what was read suffices.
	mark = min(mark, d.spoolLast)
	if mark <= d.ackMark {
		return nil
	}
	if err := d.sp.Ack(mark); err != nil {
		return fmt.Errorf("uplink: ack spool up to %d: %w", mark, err)
	}
	d.ackMark = mark
	return nil
}
