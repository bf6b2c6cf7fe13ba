package sender

import (
	"fmt"
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
type dispatcher struct {
	sp        Spool
	maxRecs   int
	maxBytes  int
	flush     time.Duration
	now       func() time.Time
	onAhead   func(collector, spoolLast uint64)
	mu        sync.Mutex
	cursor    uint64        // next sequence to read from the spool
	out       []outstanding // sorted by first
	ackMark   uint64        // the spool is acked up to here
	spoolLast uint64        // the highest sequence the spool is known to have assigned
	kick      chan struct{} // closed when a batch is queued for resend
	ackedRecs uint64
}

func newDispatcher(sp Spool, maxRecs, maxBytes int, flush time.Duration) (*dispatcher, error) {
	d := &dispatcher{sp: sp, maxRecs: maxRecs, maxBytes: maxBytes, flush: flush, now: time.Now, kick: make(chan struct{})}
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
	if len(d.out) > 0 {
		return d.out[0].first - 1
	}
	return d.cursor - 1
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
		d.cursor = highest + 1
	}
	return d.ackSpool()
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
			return d.takeAgain(maxRecs, maxBytes)
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
	recs, err := d.sp.Read(d.cursor, maxRecs, maxBytes)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("uplink: read spool at %d: %w", d.cursor, err)
	}
	b := cut(recs, ^uint64(0))
	if b == nil {
		return nil, time.Time{}, nil
	}
	full := len(b.recs) == maxRecs || int(b.bytes)+int(b.bytes)/len(b.recs) > maxBytes || len(b.recs) < len(recs)
	if due := b.recs[0].Appended.Add(d.flush); !full && d.now().Before(due) {
		return nil, due, nil
	}
	d.cursor = b.last + 1
	d.spoolLast = max(d.spoolLast, b.last)
	d.insert(outstanding{span: b.span})
	return b, time.Time{}, nil
}

func (d *dispatcher) takeAgain(maxRecs, maxBytes int) (*batch, time.Time, error) {
	d.mu.Unlock()
	defer d.mu.Lock()
	return d.takeWithin(maxRecs, maxBytes)
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
		mark = d.out[0].first - 1
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
