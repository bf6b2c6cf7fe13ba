package rudp

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// A discrete-event model of paths between endpoints on a virtual clock:
// the engine's Conns (driven through fillLocked and onSegmentLocked, as the
// send and read loops drive them, but without goroutines or timers) and a
// model of a Reno TCP flow. Every run of a test is the same run.

// simPath is one direction of a path: a bottleneck of rate bytes/s with a
// drop-tail queue of queue bytes, then delay, then random loss (where the
// lab's nftables drops: at the receiving end).
type simPath struct {
	rate  float64
	queue int
	delay time.Duration
	loss  float64
	rng   *rand.Rand

	busy        time.Time // when the bottleneck has sent what it holds
	queueDrops  int
	randomDrops int
	bytesIn     int64 // offered to the bottleneck
}

func newSimPath(rate float64, queue int, delay time.Duration, loss float64, seed uint64) *simPath {
	return &simPath{rate: rate, queue: queue, delay: delay, loss: loss, rng: rand.New(rand.NewPCG(seed, 99))}
}

// send puts a packet of size bytes on the path at now and returns when it
// arrives, or false if it is dropped.
func (p *simPath) send(now time.Time, size int) (time.Time, bool) {
	p.bytesIn += int64(size)
	at := now
	if p.rate > 0 {
		if p.busy.Before(now) {
			p.busy = now
		}
		if p.queue > 0 && float64(size)+p.busy.Sub(now).Seconds()*p.rate > float64(p.queue) {
			p.queueDrops++
			return time.Time{}, false
		}
		p.busy = p.busy.Add(time.Duration(float64(size) / p.rate * 1e9))
		at = p.busy
	}
	if p.loss > 0 && p.rng.Float64() < p.loss {
		p.randomDrops++
		return time.Time{}, false
	}
	return at.Add(p.delay), true
}

// simNode is an endpoint in the simulation.
type simNode interface {
	// run sends what is due at now and returns when it next needs to run.
	run(now time.Time) time.Time
	// receive takes a datagram that arrived.
	receive(now time.Time, p []byte)
}

type simEvent struct {
	at   time.Time
	n    uint64
	to   simNode
	data []byte
}

type simEvents []simEvent

func (h simEvents) Len() int { return len(h) }
func (h simEvents) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].n < h[j].n
	}
	return h[i].at.Before(h[j].at)
}
func (h simEvents) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *simEvents) Push(x any)   { *h = append(*h, x.(simEvent)) }
func (h *simEvents) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// sim runs nodes and the packets between them.
type sim struct {
	now    time.Time
	nodes  []simNode
	wakes  []time.Time
	events simEvents
	n      uint64
	// late, if set, is how much later than asked a node runs: a busy
	// machine's scheduler.
	late func() time.Duration
}

func (s *sim) lateBy() time.Duration {
	if s.late == nil {
		return 0
	}
	return s.late()
}

func newSim() *sim { return &sim{now: time.Unix(1_000_000, 0)} }

func (s *sim) add(n simNode) {
	s.nodes = append(s.nodes, n)
	s.wakes = append(s.wakes, s.now)
}

// transmit sends p over path towards to; size is what it occupies on the
// wire.
func (s *sim) transmit(path *simPath, to simNode, p []byte, size int) {
	at, ok := path.send(s.now, size)
	if !ok {
		return
	}
	s.n++
	heap.Push(&s.events, simEvent{at: at, n: s.n, to: to, data: append([]byte(nil), p...)})
}

// runUntil advances the clock to end, calling every hook at or before its
// time; at(t) hooks run once, at their time.
func (s *sim) runUntil(end time.Time, hooks ...simHook) {
	spins, last := 0, s.now
	for {
		if s.now.Equal(last) {
			// A node that keeps asking to run at the same instant spins
			// its send loop in real life.
			if spins++; spins > 1_000_000 {
				panic(fmt.Sprintf("simulation stuck at %s", s.now))
			}
		} else {
			spins, last = 0, s.now
		}
		for i, n := range s.nodes {
			if !s.wakes[i].After(s.now) {
				if s.wakes[i] = n.run(s.now); !s.wakes[i].IsZero() {
					s.wakes[i] = s.wakes[i].Add(s.lateBy())
				}
			}
		}
		next := end
		for _, w := range s.wakes {
			if !w.IsZero() && w.Before(next) {
				next = w
			}
		}
		if len(s.events) > 0 && s.events[0].at.Before(next) {
			next = s.events[0].at
		}
		for i := range hooks {
			if !hooks[i].done && hooks[i].at.Before(next) {
				next = hooks[i].at
			}
		}
		if next.Before(s.now) {
			next = s.now
		}
		s.now = next
		for i := range hooks {
			if !hooks[i].done && !hooks[i].at.After(s.now) {
				hooks[i].done = true
				hooks[i].fn()
			}
		}
		for len(s.events) > 0 && !s.events[0].at.After(s.now) {
			e := heap.Pop(&s.events).(simEvent)
			e.to.receive(s.now, e.data)
			for i, n := range s.nodes {
				if n == e.to {
					s.wakes[i] = s.now.Add(s.lateBy()) // let it answer
				}
			}
		}
		if !s.now.Before(end) {
			return
		}
	}
}

type simHook struct {
	at   time.Time
	fn   func()
	done bool
}

// simConn is one engine in the simulation, with an application that
// writes without end (source) or reads everything (sink).
type simConn struct {
	c      *Conn
	out    *simPath
	peer   simNode
	s      *sim
	bufs   [][]byte
	source bool
	read   int64 // bytes the application read
	buf    []byte
	fill   []byte
}

func newSimConn(s *sim, opt Options, out *simPath, source bool) *simConn {
	opt = opt.withDefaults()
	c := makeConn(nullLower{}, opt, s.now)
	sc := &simConn{c: c, out: out, s: s, source: source, buf: make([]byte, 64<<10), fill: make([]byte, 64<<10)}
	sc.bufs = make([][]byte, burst)
	for i := range sc.bufs {
		sc.bufs[i] = make([]byte, 0, opt.MTU)
	}
	return sc
}

// simConnPair is a sender and a receiver over the given paths, with the
// RTT seeded as a handshake would seed it.
func simConnPair(s *sim, opt Options, fwd, rev *simPath) (snd, rcv *simConn) {
	snd = newSimConn(s, opt, fwd, true)
	rcv = newSimConn(s, opt, rev, false)
	snd.peer, rcv.peer = rcv, snd
	for _, e := range []*simConn{snd, rcv} {
		e.c.rtt.sample(fwd.delay+rev.delay, s.now)
	}
	s.add(snd)
	s.add(rcv)
	return snd, rcv
}

func (e *simConn) run(now time.Time) time.Time {
	c := e.c
	if e.source {
		if space := c.opt.SendBuffer - c.bufferedLocked(); space > 0 {
			for space > 0 {
				k := min(space, len(e.fill))
				if _, err := c.Write(e.fill[:k]); err != nil {
					return time.Time{}
				}
				space -= k
			}
		}
	} else {
		for {
			c.mu.Lock()
			avail := len(c.rbuf) - c.roff
			c.mu.Unlock()
			if avail == 0 {
				break
			}
			n, _ := c.Read(e.buf)
			e.read += int64(n)
		}
	}
	for {
		c.mu.Lock()
		n, wake := c.fillLocked(now, e.bufs)
		c.mu.Unlock()
		for _, b := range e.bufs[:n] {
			e.s.transmit(e.out, e.peer, b, len(b)+recordOverhead)
		}
		if n == 0 {
			return wake
		}
	}
}

func (e *simConn) receive(now time.Time, p []byte) {
	var seg segment
	if err := decodeSegment(p, &seg); err != nil {
		panic(err)
	}
	e.c.mu.Lock()
	e.c.onSegmentLocked(now, &seg)
	e.c.mu.Unlock()
}

// simReno is a bulk TCP flow with Reno congestion control (RFC 5681, with
// loss detected SACK-style: a transmission is lost once three sent after
// it are acknowledged, so each loss is repaired in about one RTT): the
// competitor in fairness tests.
type simReno struct {
	s        *sim
	fwd, rev *simPath
	mss      int
	rcv      *simRenoRcv

	cwnd, ssthresh float64
	next           uint64            // next new sequence number
	tx             uint64            // transmissions so far
	sent           map[uint64]uint64 // in flight: sequence → its transmission's number
	sentAt         map[uint64]time.Time
	lost           []uint64 // to retransmit, ascending
	recoverUntil   uint64   // no further cut until this is acknowledged
	inRecovery     bool
	srtt           time.Duration
	lastAck        time.Time
	delivered      int64
}

type simRenoRcv struct{ r *simReno }

func newSimReno(s *sim, fwd, rev *simPath) *simReno {
	r := &simReno{s: s, fwd: fwd, rev: rev, mss: 1448, cwnd: 10, ssthresh: math.Inf(1),
		sent: map[uint64]uint64{}, sentAt: map[uint64]time.Time{}, lastAck: s.now}
	r.rcv = &simRenoRcv{r: r}
	s.add(r)
	s.add(r.rcv)
	return r
}

func (r *simReno) rto() time.Duration {
	return max(200*time.Millisecond, 3*r.srtt)
}

func (r *simReno) run(now time.Time) time.Time {
	if len(r.sent) > 0 && now.Sub(r.lastAck) >= r.rto() {
		// Timeout: everything in flight is lost, a window of one.
		r.ssthresh = max(float64(len(r.sent))/2, 2)
		r.cwnd = 1
		for q := range r.sent {
			r.lost = append(r.lost, q)
		}
		slices.Sort(r.lost)
		clear(r.sent)
		r.lastAck = now
	}
	for float64(len(r.sent)) < r.cwnd {
		var q uint64
		if len(r.lost) > 0 {
			q, r.lost = r.lost[0], r.lost[1:]
		} else {
			q = r.next
			r.next++
		}
		r.tx++
		r.sent[q], r.sentAt[q] = r.tx, now
		b := binary.BigEndian.AppendUint64(nil, q)
		r.s.transmit(r.fwd, r.rcv, b, r.mss+52)
	}
	return now.Add(r.rto())
}

func (r *simReno) receive(now time.Time, p []byte) {
	q := binary.BigEndian.Uint64(p)
	t, ok := r.sent[q]
	if !ok {
		return
	}
	delete(r.sent, q)
	r.delivered += int64(r.mss)
	r.lastAck = now
	if rtt := now.Sub(r.sentAt[q]); r.srtt == 0 {
		r.srtt = rtt
	} else {
		r.srtt = (7*r.srtt + rtt) / 8
	}
	delete(r.sentAt, q)
	if r.inRecovery && q >= r.recoverUntil {
		r.inRecovery = false
	}
	var lost []uint64
	for s, ts := range r.sent {
		if ts+3 <= t {
			lost = append(lost, s)
		}
	}
	for _, s := range lost {
		delete(r.sent, s)
	}
	r.lost = append(r.lost, lost...)
	slices.Sort(r.lost)
	switch {
	case len(lost) > 0 && !r.inRecovery:
		r.cwnd = max(r.cwnd/2, 2)
		r.ssthresh = r.cwnd
		r.inRecovery, r.recoverUntil = true, r.next
	case len(lost) > 0 || r.inRecovery:
	case r.cwnd < r.ssthresh:
		r.cwnd++
	default:
		r.cwnd += 1 / r.cwnd
	}
}

func (rc *simRenoRcv) run(time.Time) time.Time { return time.Time{} }

func (rc *simRenoRcv) receive(_ time.Time, p []byte) {
	rc.r.s.transmit(rc.r.rev, rc.r, p, 52)
}
