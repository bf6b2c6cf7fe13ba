package audit

import "time"

// Group is the records of one audit event, in log order.
type Group struct {
	Records []Record
	// Split says the event was larger than one record can carry (maxEvent
	// Records or maxEventBytes): its records are in several Groups, in
	// order, each flagged.
	Split bool
}

// Grouping bounds. auditd writes an event's records together, so an
// event still waiting after this many records of others, or this big, is
// not going to see more.
const (
	maxPending      = 16       // events open at once; the oldest is closed beyond
	maxGapRecords   = 64       // records of other events after an event's last one
	maxEventRecords = 256      // records in one Group
	maxEventBytes   = 24 << 10 // line bytes in one Group (then one more line)
)

type eventKey struct {
	node   string
	time   int64
	serial uint64
}

type pendingEvent struct {
	key     eventKey
	g       Group
	bytes   int
	lastSeq uint64    // the grouper's record count at its last record
	lastAt  time.Time // when its last record was added
	// waiting says a record of another event does not end it: it has a
	// SYSCALL and not yet the PROCTITLE the kernel logs last.
	waiting bool
}

// Grouper joins records into events. An event ends at its EOE record;
// when a record of another event arrives, unless it has a SYSCALL record
// and not yet its PROCTITLE (auditd 3 does not log EOE, and records of
// events on other CPUs may come between); when maxGapRecords records of
// other events came after its last one; after Expire's timeout; or at
// Flush. Lines that did not parse are events of their own at once.
//
// Completed events are taken with Take, in the order they completed. A
// Grouper is not safe for concurrent use.
type Grouper struct {
	timeout   time.Duration
	pending   []*pendingEvent
	done      []Group
	seq       uint64
	lastSplit eventKey // the last event cut by the bounds; its rest is flagged too
	free      []*pendingEvent
}

// NewGrouper returns a Grouper whose Expire ends events idle for timeout.
func NewGrouper(timeout time.Duration) *Grouper { return &Grouper{timeout: timeout} }

// Add adds a record at time now (for Expire).
func (g *Grouper) Add(r Record, now time.Time) {
	g.seq++
	if r.Err != nil {
		g.done = append(g.done, Group{Records: []Record{r}})
		g.closeIdle(nil)
		return
	}
	k := eventKey{node: r.Node, time: r.Time, serial: r.Serial}
	var p *pendingEvent
	for _, q := range g.pending {
		if q.key == k {
			p = q
			break
		}
	}
	if p == nil {
		if len(g.pending) >= maxPending {
			g.complete(0)
		}
		p = g.newPending(k)
		g.pending = append(g.pending, p)
	}
	p.g.Records = append(p.g.Records, r)
	p.bytes += len(r.Line)
	p.lastSeq, p.lastAt = g.seq, now
	switch r.Type {
	case "SYSCALL":
		p.waiting = true
	case "PROCTITLE":
		p.waiting = false
	}
	switch {
	case r.Type == "EOE":
		g.completeEvent(p, false)
	case len(p.g.Records) >= maxEventRecords || p.bytes >= maxEventBytes:
		g.lastSplit = k
		g.completeEvent(p, true)
	}
	g.closeIdle(p)
}

// End ends the open event r belongs to, without adding r: the kernel's
// EOE record, which auditd 3 does not write to its log, so that a record
// read from the kernel holds what the same event's record from the log
// holds. An EOE of no open event is dropped.
func (g *Grouper) End(r Record) {
	k := eventKey{node: r.Node, time: r.Time, serial: r.Serial}
	for _, p := range g.pending {
		if p.key == k {
			g.completeEvent(p, false)
			return
		}
	}
}

// closeIdle ends the events other than cur that a record of another
// event ends.
func (g *Grouper) closeIdle(cur *pendingEvent) {
	for i := 0; i < len(g.pending); {
		q := g.pending[i]
		if q != cur && (!q.waiting || g.seq-q.lastSeq > maxGapRecords) {
			g.complete(i)
			continue
		}
		i++
	}
}

// Expire ends the events whose last record came timeout or more before
// now.
func (g *Grouper) Expire(now time.Time) {
	for i := 0; i < len(g.pending); {
		if now.Sub(g.pending[i].lastAt) >= g.timeout {
			g.complete(i)
			continue
		}
		i++
	}
}

// Flush ends every event.
func (g *Grouper) Flush() {
	for len(g.pending) > 0 {
		g.complete(0)
	}
}

// Pending says how many events are open.
func (g *Grouper) Pending() int { return len(g.pending) }

// OldestOffset is the smallest Offset of a record of an open event; ok is
// false when none is open. An event's records are added in file order, so
// its first is its oldest.
func (g *Grouper) OldestOffset() (off int64, ok bool) {
	_, off, ok = g.oldest()
	return off, ok
}

// CloseOldest ends the open event whose first record is the oldest.
func (g *Grouper) CloseOldest() {
	if i, _, ok := g.oldest(); ok {
		g.complete(i)
	}
}

func (g *Grouper) oldest() (i int, off int64, ok bool) {
	for j, p := range g.pending {
		if o := p.g.Records[0].Offset; !ok || o < off {
			i, off, ok = j, o, true
		}
	}
	return i, off, ok
}

// Take returns the completed events and forgets them. The slice is
// reused by later calls.
func (g *Grouper) Take() []Group {
	d := g.done
	g.done = g.done[:0]
	return d
}

func (g *Grouper) newPending(k eventKey) *pendingEvent {
	var p *pendingEvent
	if n := len(g.free); n > 0 {
		p, g.free = g.free[n-1], g.free[:n-1]
	} else {
		p = &pendingEvent{}
	}
	*p = pendingEvent{key: k, g: Group{Records: make([]Record, 0, 8), Split: g.lastSplit == k && k != eventKey{}}}
	return p
}

func (g *Grouper) complete(i int) {
	p := g.pending[i]
	g.pending = append(g.pending[:i], g.pending[i+1:]...)
	g.finish(p, false)
}

func (g *Grouper) completeEvent(p *pendingEvent, split bool) {
	for i, q := range g.pending {
		if q == p {
			g.pending = append(g.pending[:i], g.pending[i+1:]...)
			break
		}
	}
	g.finish(p, split)
}

func (g *Grouper) finish(p *pendingEvent, split bool) {
	grp := p.g
	grp.Split = grp.Split || split
	g.done = append(g.done, grp)
	*p = pendingEvent{}
	g.free = append(g.free, p)
}
