package rudp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
)

// Errors a Conn fails with, besides those of the DTLS layer.
var (
	ErrIdleTimeout = errors.New("rudp: peer silent past the idle timeout")
	ErrPeerClosed  = errors.New("rudp: connection closed by peer")
)

// Stats is a snapshot of a Conn's reliability and congestion state.
// Counters only grow; callers derive rates (loss = SegmentsRetransmitted /
// SegmentsSent over a window) from two snapshots.
type Stats struct {
	SRTT       time.Duration
	RTTVar     time.Duration
	MinRTT     time.Duration
	RTO        time.Duration
	Cwnd       int     // bytes allowed in flight
	Inflight   int     // bytes in flight
	PacingRate float64 // bytes/s; 0 = not yet paced
	Bandwidth  float64 // estimated bottleneck bandwidth, bytes/s
	Mode       string  // congestion controller phase: startup, drain, probe_bw

	SegmentsSent          uint64 // data segments sent, retransmissions included
	SegmentsRetransmitted uint64
	SegmentsLost          uint64 // declared lost (by SACK evidence or timeout)
	SegmentsReceived      uint64 // data segments received, duplicates included
	DuplicatesReceived    uint64
	Timeouts              uint64 // retransmission timer expiries
	AcksSent              uint64 // acknowledgement-only segments
	BytesSent             uint64 // payload bytes sent for the first time
	BytesAcked            uint64 // payload bytes acknowledged: the goodput counter
	BytesReceived         uint64 // payload bytes delivered in order towards Read
	KeepalivesSent        uint64
	Malformed             uint64 // datagrams that did not decode as segments
	ReadErrors            uint64 // records the DTLS layer rejected (forged, corrupt) or non-fatal alerts
	SpuriousRetransmits   uint64 // retransmissions whose original arrived after all (reordering)
	WriteErrors           uint64 // datagrams the socket refused (counted as lost)
	LossBackoffs          uint64 // heavy-loss rounds that cut the bandwidth estimate
}

// outSeg is a segment sent and not yet cumulatively acknowledged.
type outSeg struct {
	seq    uint64
	data   []byte
	fin    bool
	xmits  int
	sentAt time.Time
	sentTs uint32 // timestamp of the last transmission, to spot spurious retransmissions
	sacked bool   // delivered; kept until the cumulative ack passes it
	lost   bool   // declared lost, waiting to be retransmitted
	// Delivery-rate state when last sent (see rateSample).
	rsDelivered   int64
	rsDeliveredAt time.Time
	rsFirstSentAt time.Time
	rsAppLimited  bool
}

func (s *outSeg) wire() int { return len(s.data) + headerLen }

// burst bounds the datagrams built per pass of the send loop, so the lock
// is not held across long runs of socket writes.
const burst = 32

// initialPeerWindow is assumed until the peer's first acknowledgement
// advertises its real window.
const initialPeerWindow = 64

// Conn is a reliable, ordered byte stream over a datagram connection. Over
// DTLS it comes from Dial or a Listener; it implements net.Conn.
type Conn struct {
	lower net.Conn // one Read or Write is one datagram
	dtls  *dtls.Conn
	cid   bool // the DTLS session negotiated connection IDs
	opt   Options
	mss   int
	epoch time.Time // zero of the timestamp clock

	kick     chan struct{} // wakes the send loop
	readable chan struct{}
	writable chan struct{}
	done     chan struct{} // closed when the Conn fails or is closed
	flushed  chan struct{} // closed once our FIN is acknowledged
	loopDone chan struct{}
	readDone chan struct{}

	mu      sync.Mutex
	err     error
	closing bool
	rdl     time.Time
	wdl     time.Time

	// Send side.
	pbuf          []byte // written, not yet segmented: pbuf[poff:]
	poff          int
	out           []*outSeg // sequence numbers sndUna..sndNxt-1
	outBytes      int
	sndUna        uint64
	sndNxt        uint64
	peerRight     uint64 // highest sequence+1 the peer has room for
	finQueued     bool
	finSent       bool
	inflight      int
	lostCount     int
	delivered     int64
	deliveredAt   time.Time
	firstSentAt   time.Time
	appLimited    int64 // delivered count until which samples are app-limited; 0: not
	rackSentAt    time.Time
	highDelivered uint64 // one above the highest sequence known delivered
	rackSeq       uint64
	rackDeadline  time.Time
	rtoAt         time.Time
	probeAt       time.Time // tail loss probe due; zero: none armed
	rtoResend     bool      // a timeout's retransmission goes out regardless of window and pacing
	nextSend      time.Time
	lastSend      time.Time
	lastRecv      time.Time
	lastProbe     time.Time
	pingTs        uint32
	pingOut       bool
	rtt           rttEstimator
	reoMult       int // RACK reordering window in quarters of the min RTT, raised by spurious retransmissions
	lostSinceSpur int
	cc            *bbr
	free          [][]byte  // payload buffers for reuse
	freeSegs      []*outSeg // segment records for reuse: no allocation per segment in steady state
	flushedClosed bool

	// Receive side.
	rcvNxt     uint64
	ooo        map[uint64][]byte // out-of-order payloads above rcvNxt
	oooFin     uint64            // sequence of an out-of-order FIN, +1; 0: none
	ranges     []sackBlock       // received runs above rcvNxt, ascending
	lastOOO    uint64            // the most recent out-of-order arrival, reported first-class in acks
	blocksBuf  []sackBlock
	rbuf       []byte // in order, not yet Read: rbuf[roff:]
	roff       int
	eof        bool
	tsRecent   uint32
	ackPending int
	ackDue     time.Time
	ackNow     bool

	stats Stats
}

// newConn starts the reliability engine over lower, whose Read and Write
// each carry one datagram.
func newConn(lower net.Conn, opt Options) *Conn {
	now := time.Now()
	c := &Conn{
		lower:     lower,
		opt:       opt,
		mss:       opt.mss(),
		epoch:     now,
		kick:      make(chan struct{}, 1),
		readable:  make(chan struct{}, 1),
		writable:  make(chan struct{}, 1),
		done:      make(chan struct{}),
		flushed:   make(chan struct{}),
		loopDone:  make(chan struct{}),
		readDone:  make(chan struct{}),
		peerRight: initialPeerWindow,
		lastSend:  now,
		lastRecv:  now,
		rtt:       newRTTEstimator(opt.MinRTO, opt.MaxRTO),
		reoMult:   1,
		ooo:       make(map[uint64][]byte),
	}
	c.cc = newBBR(c.mss+headerLen, opt.InitialCwnd)
	go c.readLoop()
	go c.sendLoop()
	return c
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// failLocked ends the Conn with err; the first error wins.
func (c *Conn) failLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
}

// tsNow is the timestamp clock: microseconds since the Conn began,
// wrapping, never 0 (0 on the wire means "no echo").
func (c *Conn) tsNow(now time.Time) uint32 {
	v := uint32(now.Sub(c.epoch).Microseconds())
	if v == 0 {
		v = 1
	}
	return v
}

// Read reads the stream. After the peer's end of stream it returns io.EOF.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		if avail := len(c.rbuf) - c.roff; avail > 0 && len(p) > 0 {
			before := c.rcvWndLocked()
			n := copy(p, c.rbuf[c.roff:])
			c.roff += n
			if c.roff == len(c.rbuf) {
				c.rbuf, c.roff = c.rbuf[:0], 0
			} else if c.roff > cap(c.rbuf)/2 {
				k := copy(c.rbuf, c.rbuf[c.roff:])
				c.rbuf, c.roff = c.rbuf[:k], 0
			}
			// A receiver that was nearly full tells the sender at once that
			// room opened, rather than leaving it to probe.
			update := before < uint32(c.opt.RecvWindow/2) && c.rcvWndLocked() >= uint32(c.opt.RecvWindow/2)
			if update {
				c.ackNow = true
			}
			c.mu.Unlock()
			if update {
				signal(c.kick)
			}
			return n, nil
		}
		if c.eof && len(c.rbuf) == c.roff {
			c.mu.Unlock()
			return 0, io.EOF
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return 0, err
		}
		if len(p) == 0 {
			c.mu.Unlock()
			return 0, nil
		}
		dl := c.rdl
		c.mu.Unlock()
		if err := c.wait(c.readable, dl); err != nil {
			return 0, err
		}
	}
}

// Write queues p for sending; it blocks while the send buffer is full.
func (c *Conn) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		c.mu.Lock()
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return written, err
		}
		if c.closing {
			c.mu.Unlock()
			return written, net.ErrClosed
		}
		if space := c.opt.SendBuffer - c.bufferedLocked(); space > 0 {
			k := min(space, len(p)-written)
			if c.poff > 0 && c.poff >= len(c.pbuf)/2 {
				n := copy(c.pbuf, c.pbuf[c.poff:])
				c.pbuf, c.poff = c.pbuf[:n], 0
			}
			c.pbuf = append(c.pbuf, p[written:written+k]...)
			written += k
			c.mu.Unlock()
			signal(c.kick)
			continue
		}
		dl := c.wdl
		c.mu.Unlock()
		if err := c.wait(c.writable, dl); err != nil {
			return written, err
		}
	}
	return written, nil
}

func (c *Conn) bufferedLocked() int { return len(c.pbuf) - c.poff + c.outBytes }

// wait blocks until ch is signalled, the Conn ends, or deadline passes.
func (c *Conn) wait(ch chan struct{}, deadline time.Time) error {
	if deadline.IsZero() {
		select {
		case <-ch:
		case <-c.done:
		}
		return nil
	}
	d := time.Until(deadline)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-c.done:
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
	return nil
}

// Close flushes what was written (for up to Options.CloseTimeout), tells
// the peer the stream ended, and closes the DTLS session.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		<-c.loopDone
		return nil
	}
	c.closing = true
	flush := c.err == nil
	if flush {
		c.finQueued = true
	}
	c.mu.Unlock()
	signal(c.kick)
	var ferr error
	if flush {
		t := time.NewTimer(c.opt.CloseTimeout)
		select {
		case <-c.flushed:
		case <-c.done:
		case <-t.C:
			c.mu.Lock()
			ferr = fmt.Errorf("rudp: close %s: %d bytes not acknowledged within %s", c.RemoteAddr(), c.bufferedLocked(), c.opt.CloseTimeout)
			c.mu.Unlock()
		}
		t.Stop()
	}
	c.mu.Lock()
	c.failLocked(net.ErrClosed)
	c.mu.Unlock()
	<-c.loopDone
	<-c.readDone
	return ferr
}

// LocalAddr returns the local address of the datagram socket.
func (c *Conn) LocalAddr() net.Addr { return c.lower.LocalAddr() }

// RemoteAddr returns the peer's current address; with connection IDs it
// follows the peer when its address changes.
func (c *Conn) RemoteAddr() net.Addr { return c.lower.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline bounds current and future Reads.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	signal(c.readable)
	return nil
}

// SetWriteDeadline bounds current and future Writes.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	signal(c.writable)
	return nil
}

// Stats returns a snapshot of the counters and estimates.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.SRTT, s.RTTVar, s.MinRTT, s.RTO = c.rtt.srtt, c.rtt.rttvar, c.rtt.minRTT, c.rtt.rto()
	s.Cwnd, s.Inflight = c.cc.cwnd(c.rtt.minRTT), c.inflight
	s.PacingRate, s.Bandwidth = c.cc.pacingRate(c.rtt.srtt), c.cc.btlBw
	s.Mode, s.LossBackoffs = c.cc.mode.String(), c.cc.lossCuts
	return s
}

// readLoop feeds received datagrams to the engine.
func (c *Conn) readLoop() {
	defer close(c.readDone)
	buf := make([]byte, 1<<16)
	var seg segment
	for {
		n, err := c.lower.Read(buf)
		if err != nil {
			c.mu.Lock()
			ended := c.err != nil
			switch {
			case c.closing:
				c.failLocked(net.ErrClosed)
			case errors.Is(err, io.EOF):
				c.failLocked(ErrPeerClosed)
			case errors.Is(err, net.ErrClosed) || ended:
				c.failLocked(fmt.Errorf("rudp: read from %s: %w", c.RemoteAddr(), err))
			default:
				// Pion hands up records it could not authenticate or
				// decode, and non-fatal alerts, and reads on; anyone can
				// send those to our port, so they must not end the session.
				c.stats.ReadErrors++
				c.mu.Unlock()
				c.opt.Logger.Debug("rudp: dropped record", "peer", c.RemoteAddr().String(), "err", err)
				continue
			}
			c.mu.Unlock()
			signal(c.readable)
			return
		}
		now := time.Now()
		c.mu.Lock()
		if derr := decodeSegment(buf[:n], &seg); derr != nil {
			c.stats.Malformed++
			c.mu.Unlock()
			c.opt.Logger.Debug("rudp: dropped datagram", "peer", c.RemoteAddr().String(), "err", derr)
			continue
		}
		c.onSegmentLocked(now, &seg)
		c.mu.Unlock()
		signal(c.kick)
	}
}

func (c *Conn) onSegmentLocked(now time.Time, seg *segment) {
	c.lastRecv = now
	if c.rtt.backoff > 0 {
		// The peer is reachable again: retry soon instead of after the
		// backed-off timeout, so a restored link resumes at once.
		c.rtt.progressed()
		if c.inflight > 0 {
			c.rtoAt = now.Add(c.rtt.rto())
		}
	}
	c.processAckLocked(now, seg)
	switch seg.kind {
	case kindData, kindFin:
		c.receiveLocked(now, seg)
	case kindPing:
		c.tsRecent = seg.tsval
		c.ackNow = true
	}
}

// processAckLocked applies the acknowledgement every segment carries.
func (c *Conn) processAckLocked(now time.Time, seg *segment) {
	if seg.ack > c.sndNxt {
		return // acknowledges what was never sent: ignore the whole ack
	}
	if r := seg.ack + uint64(seg.wnd); r > c.peerRight {
		c.peerRight = r
	}
	// A copy, not a pointer: acknowledged records are recycled below.
	var newest outSeg
	have := false
	for c.sndUna < seg.ack {
		s := c.out[0]
		if !s.sacked {
			c.deliverLocked(now, s, seg.tsecr, &newest, &have)
		}
		c.out[0] = nil
		c.out = c.out[1:]
		c.outBytes -= len(s.data)
		c.sndUna++
		if s.fin && !c.flushedClosed {
			c.flushedClosed = true
			close(c.flushed)
		}
		if cap(s.data) == c.mss {
			c.free = append(c.free, s.data[:0])
		}
		*s = outSeg{}
		c.freeSegs = append(c.freeSegs, s)
	}
	for _, b := range seg.blocks {
		lo, hi := max(b.start, c.sndUna), min(b.end, c.sndNxt)
		for q := lo; q < hi; q++ {
			if s := c.out[q-c.sndUna]; !s.sacked {
				s.sacked = true
				c.deliverLocked(now, s, seg.tsecr, &newest, &have)
			}
		}
	}
	if !have {
		if c.pingOut && seg.tsecr == c.pingTs {
			c.pingOut = false
			c.rtt.sample(time.Duration(c.tsNow(now)-seg.tsecr)*time.Microsecond, now)
		}
		return
	}
	if c.appLimited != 0 && c.delivered > c.appLimited {
		c.appLimited = 0
	}
	var sampleRTT time.Duration
	if seg.tsecr != 0 {
		if r := time.Duration(c.tsNow(now)-seg.tsecr) * time.Microsecond; r < time.Minute {
			c.rtt.sample(r, now)
			sampleRTT = r
		}
	}
	c.rtt.progressed()
	rs := rateSample{
		delivered:      c.delivered - newest.rsDelivered,
		priorDelivered: newest.rsDelivered,
		appLimited:     newest.rsAppLimited,
		rtt:            sampleRTT,
		interval:       max(newest.sentAt.Sub(newest.rsFirstSentAt), now.Sub(newest.rsDeliveredAt)),
	}
	c.firstSentAt = newest.sentAt
	c.cc.onAck(now, rs, c.delivered, c.inflight, c.rtt.minRTT)
	if newest.sentAt.After(c.rackSentAt) || (newest.sentAt.Equal(c.rackSentAt) && newest.seq > c.rackSeq) {
		c.rackSentAt, c.rackSeq = newest.sentAt, newest.seq
	}
	c.detectLossLocked(now)
	if c.inflight > 0 {
		c.rtoAt = now.Add(c.rtt.rto())
		c.probeAt = now.Add(c.probeTimeout())
	} else {
		c.rtoAt, c.probeAt = time.Time{}, time.Time{}
	}
	signal(c.writable)
}

func (c *Conn) deliverLocked(now time.Time, s *outSeg, tsecr uint32, newest *outSeg, have *bool) {
	if s.xmits > 1 && tsecr != 0 && int32(tsecr-s.sentTs) < 0 {
		// The ack echoes a segment sent before this retransmission, so an
		// earlier copy arrived: the path reorders more than RACK allowed
		// for (the Eifel test, RFC 3522). Widen the window.
		c.stats.SpuriousRetransmits++
		c.reoMult = min(c.reoMult+1, 4*4)
		c.lostSinceSpur = 0
	}
	if s.lost {
		s.lost = false
		c.lostCount--
	} else {
		c.inflight -= s.wire()
	}
	c.delivered += int64(s.wire())
	c.deliveredAt = now
	c.highDelivered = max(c.highDelivered, s.seq+1)
	c.stats.BytesAcked += uint64(len(s.data))
	if !*have || s.sentAt.After(newest.sentAt) || (s.sentAt.Equal(newest.sentAt) && s.seq > newest.seq) {
		*newest, *have = *s, true
	}
}

// detectLossLocked declares lost each segment in flight that was sent
// before the newest delivered one and has been out longer than an RTT
// plus a reordering allowance (RACK, RFC 8985). Time-based detection also
// catches lost retransmissions, which duplicate-ack counting cannot.
func (c *Conn) detectLossLocked(now time.Time) {
	c.rackDeadline = time.Time{}
	if c.rackSentAt.IsZero() {
		return
	}
	rtt := c.rtt.latest
	if rtt == 0 {
		rtt = initialRTO
	}
	reo := max(time.Duration(c.reoMult)*c.rtt.minRTT/4, time.Millisecond)
	if c.rtt.srtt > 0 {
		reo = min(reo, c.rtt.srtt)
	}
	wait := rtt + reo
	for _, s := range c.out {
		if s.seq >= c.highDelivered {
			// Nothing above it was reported delivered: an ack the
			// receiver could not fit or that was lost says nothing.
			break
		}
		if s.sacked || s.lost || s.xmits == 0 {
			continue
		}
		if s.sentAt.After(c.rackSentAt) || (s.sentAt.Equal(c.rackSentAt) && s.seq >= c.rackSeq) {
			if s.xmits == 1 {
				// Sent once, after the newest delivered segment: every
				// later sequence number was first sent later still.
				break
			}
			continue
		}
		if d := s.sentAt.Add(wait); now.Before(d) {
			if c.rackDeadline.IsZero() || d.Before(c.rackDeadline) {
				c.rackDeadline = d
			}
			continue
		}
		c.markLostLocked(s)
	}
}

func (c *Conn) markLostLocked(s *outSeg) {
	if c.lostSinceSpur++; c.lostSinceSpur >= 64 && c.reoMult > 1 {
		// Losses without spurious retransmissions: narrow the window
		// again, so real losses are repaired sooner (RFC 8985 7.2).
		c.reoMult--
		c.lostSinceSpur = 0
	}
	s.lost = true
	c.inflight -= s.wire()
	c.lostCount++
	c.stats.SegmentsLost++
	c.cc.onLost()
}

// onTimeoutLocked handles an expired retransmission timer: the oldest
// segment in flight is presumed lost and the timeout backs off. Only that
// one: once its retransmission is acknowledged, RACK finds the others that
// are really missing, and a spurious timeout (a queue grew faster than the
// estimate) costs one segment rather than a window.
func (c *Conn) onTimeoutLocked(now time.Time) {
	c.stats.Timeouts++
	c.rtt.timedOut()
	c.cc.onRTO()
	for _, s := range c.out {
		if !s.sacked && !s.lost && s.xmits > 0 {
			c.markLostLocked(s)
			c.rtoResend = true
			break
		}
	}
	// Backed off: the next expiry retransmits the next oldest.
	c.rtoAt, c.probeAt = now.Add(c.rtt.rto()), time.Time{}
}

// probeTimeout is how long after the last progress a tail loss probe goes
// out: two smoothed RTTs (RFC 8985 7.2), so a lost last segment of a burst
// is repaired in a few RTTs rather than after the retransmission timeout.
func (c *Conn) probeTimeout() time.Duration {
	if c.rtt.srtt == 0 {
		return initialRTO
	}
	return max(2*c.rtt.srtt+c.opt.AckDelay, 10*time.Millisecond)
}

// tailLocked returns the highest segment still in flight, for a probe.
func (c *Conn) tailLocked() *outSeg {
	for i := len(c.out) - 1; i >= 0; i-- {
		if s := c.out[i]; !s.sacked && !s.lost && s.xmits > 0 {
			return s
		}
	}
	return nil
}

// rcvWndLocked is how many segments at and above rcvNxt the receiver
// takes: the window less what waits for Read, so the right edge never
// moves left and memory stays within about two windows.
func (c *Conn) rcvWndLocked() uint32 {
	queued := (len(c.rbuf) - c.roff + c.mss - 1) / c.mss
	return uint32(max(c.opt.RecvWindow-queued, 0))
}

func (c *Conn) receiveLocked(now time.Time, seg *segment) {
	c.stats.SegmentsReceived++
	c.tsRecent = seg.tsval
	switch {
	case seg.seq < c.rcvNxt:
		c.stats.DuplicatesReceived++
		c.ackNow = true
	case seg.seq-c.rcvNxt >= uint64(c.rcvWndLocked()):
		c.ackNow = true // beyond the window: dropped; the ack restates the window
	case seg.seq == c.rcvNxt:
		c.acceptLocked(seg.kind == kindFin, seg.payload)
		filled := len(c.ranges) > 0
		for {
			if p, ok := c.ooo[c.rcvNxt]; ok {
				delete(c.ooo, c.rcvNxt)
				c.acceptLocked(false, p)
				if cap(p) == c.mss {
					c.free = append(c.free, p[:0])
				}
				continue
			}
			if c.oooFin != 0 && c.oooFin-1 == c.rcvNxt {
				c.oooFin = 0
				c.acceptLocked(true, nil)
				continue
			}
			break
		}
		for len(c.ranges) > 0 && c.ranges[0].end <= c.rcvNxt {
			c.ranges = c.ranges[1:]
		}
		c.ackPending++
		// Filling a hole, ending the stream or a second segment: ack now
		// (RFC 5681 4.2); otherwise wait a little for a second segment.
		if filled || c.eof || c.ackPending >= 2 {
			c.ackNow = true
		} else if c.ackDue.IsZero() {
			c.ackDue = now.Add(c.opt.AckDelay)
		}
	default:
		if _, ok := c.ooo[seg.seq]; ok || (c.oooFin != 0 && c.oooFin-1 == seg.seq) || c.inRangesLocked(seg.seq) {
			c.stats.DuplicatesReceived++
		} else {
			if seg.kind == kindFin {
				c.oooFin = seg.seq + 1
			} else {
				c.ooo[seg.seq] = append(c.bufLocked(), seg.payload...)
			}
			c.addRangeLocked(seg.seq)
			c.lastOOO = seg.seq
		}
		c.ackNow = true // out of order: the sender learns of the hole at once
	}
}

func (c *Conn) acceptLocked(fin bool, p []byte) {
	c.rcvNxt++
	if c.eof {
		return // nothing follows an end of stream
	}
	if fin {
		c.eof = true
	} else {
		c.rbuf = append(c.rbuf, p...)
		c.stats.BytesReceived += uint64(len(p))
	}
	signal(c.readable)
}

func (c *Conn) bufLocked() []byte {
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free = c.free[:n-1]
		return b
	}
	return make([]byte, 0, c.mss)
}

func (c *Conn) inRangesLocked(seq uint64) bool {
	i := sort.Search(len(c.ranges), func(i int) bool { return c.ranges[i].end > seq })
	return i < len(c.ranges) && c.ranges[i].start <= seq
}

// addRangeLocked records seq as received in the ascending run list.
func (c *Conn) addRangeLocked(seq uint64) {
	c.ranges = addRange(c.ranges, seq)
}

// addRange inserts seq into r (ascending, disjoint, non-adjacent runs) and
// returns the result, merging runs that become adjacent.
func addRange(r []sackBlock, seq uint64) []sackBlock {
	i := sort.Search(len(r), func(i int) bool { return r[i].end >= seq })
	switch {
	case i < len(r) && r[i].start <= seq && seq < r[i].end:
		return r
	case i < len(r) && r[i].end == seq:
		r[i].end++
		if i+1 < len(r) && r[i+1].start == r[i].end {
			r[i].end = r[i+1].end
			r = append(r[:i+1], r[i+2:]...)
		}
		return r
	case i < len(r) && r[i].start == seq+1:
		r[i].start = seq
		return r
	}
	r = append(r, sackBlock{})
	copy(r[i+1:], r[i:])
	r[i] = sackBlock{seq, seq + 1}
	return r
}

// sendLoop is the only writer to the datagram connection.
func (c *Conn) sendLoop() {
	defer close(c.loopDone)
	defer c.lower.Close()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	bufs := make([][]byte, burst)
	for i := range bufs {
		bufs[i] = make([]byte, 0, c.opt.MTU)
	}
	for {
		c.mu.Lock()
		n, wake := c.fillLocked(time.Now(), bufs)
		ended := c.err != nil
		c.mu.Unlock()
		for _, b := range bufs[:n] {
			if _, err := c.lower.Write(b); err != nil {
				// A datagram the socket refuses (no route during an
				// outage) is a lost datagram; the idle timeout decides
				// when the session is dead.
				c.mu.Lock()
				c.stats.WriteErrors++
				c.mu.Unlock()
			}
		}
		if ended {
			return
		}
		if n > 0 {
			continue
		}
		d := time.Hour
		if !wake.IsZero() {
			d = max(time.Until(wake), 0)
		}
		timer.Reset(d)
		select {
		case <-c.kick:
		case <-timer.C:
		case <-c.done:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// fillLocked builds the datagrams due now into bufs and returns how many,
// and when to look again if nothing is due.
func (c *Conn) fillLocked(now time.Time, bufs [][]byte) (int, time.Time) {
	if c.err != nil {
		return 0, time.Time{}
	}
	if now.Sub(c.lastRecv) >= c.opt.IdleTimeout {
		c.failLocked(fmt.Errorf("rudp: %s: nothing received for %s: %w", c.RemoteAddr(), c.opt.IdleTimeout, ErrIdleTimeout))
		return 0, time.Time{}
	}
	if !c.rtoAt.IsZero() && !now.Before(c.rtoAt) {
		c.onTimeoutLocked(now)
	}
	if !c.rackDeadline.IsZero() && !now.Before(c.rackDeadline) {
		c.detectLossLocked(now)
	}
	var wake time.Time
	soonest := func(t time.Time) {
		if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	n := 0
	cwnd := c.cc.cwnd(c.rtt.minRTT)
	rate := c.cc.pacingRate(c.rtt.srtt)
	windowBlocked := false
	for n < len(bufs) {
		s := c.nextLostLocked()
		force := s != nil && c.rtoResend
		if force {
			// The rest of the window is still counted in flight, so the
			// window would hold this one back indefinitely.
			c.rtoResend = false
		} else if s != nil {
			if c.inflight > 0 && c.inflight+s.wire() > cwnd {
				break
			}
		} else {
			hasNew := len(c.pbuf) > c.poff || (c.finQueued && !c.finSent)
			if !hasNew {
				break
			}
			if c.sndNxt >= c.peerRight {
				windowBlocked = true
				break
			}
			if c.inflight > 0 && c.inflight+c.mss+headerLen > cwnd {
				break
			}
		}
		if rate > 0 && c.nextSend.After(now) && !force {
			soonest(c.nextSend)
			break
		}
		if s == nil {
			s = c.newSegmentLocked()
		}
		bufs[n] = c.transmitLocked(now, s, bufs[n])
		n++
		if rate > 0 {
			// Token bucket: a little credit may build up so timer slack
			// does not cost throughput, but no more than a short burst.
			credit := max(time.Millisecond, time.Duration(float64(2*c.mss)/rate*1e9))
			if c.nextSend.Before(now.Add(-credit)) {
				c.nextSend = now.Add(-credit)
			}
			c.nextSend = c.nextSend.Add(time.Duration(float64(s.wire()) / rate * 1e9))
		}
	}
	if !c.probeAt.IsZero() && !now.Before(c.probeAt) && n == 0 && c.lostCount == 0 && c.inflight > 0 && c.probeAt.Before(c.rtoAt) {
		// Nothing else is going out and acks stopped: resend the newest
		// segment so its ack (SACK) reveals what before it was lost.
		if s := c.tailLocked(); s != nil {
			bufs[n] = c.transmitLocked(now, s, bufs[n])
			n++
		}
		c.probeAt = time.Time{}
	}
	if n < len(bufs) && c.lostCount == 0 && len(c.pbuf) == c.poff && c.inflight < c.cc.bdp(c.rtt.minRTT) {
		// Short of data with the pipe not full: rate samples until this
		// flight is delivered say less about the path than about the
		// application. (With a BDP in flight they do describe the path,
		// and startup must be able to see that it is full.)
		c.appLimited = max(c.delivered+int64(c.inflight), 1)
	}
	if windowBlocked {
		c.appLimited = max(c.delivered+int64(c.inflight), 1)
	}
	if n < len(bufs) && (c.ackNow || (!c.ackDue.IsZero() && !now.Before(c.ackDue))) {
		bufs[n] = c.ackLocked(now, bufs[n])
		n++
	}
	soonest(c.ackDue)
	// Probe a closed peer window, since the ack that reopens it may be lost.
	if windowBlocked && c.inflight == 0 {
		if now.Sub(c.lastProbe) >= c.rtt.rto() && n < len(bufs) {
			bufs[n] = c.pingLocked(now, bufs[n])
			n++
			c.lastProbe = now
		}
		soonest(c.lastProbe.Add(c.rtt.rto()))
	}
	if now.Sub(c.lastSend) >= c.opt.KeepAlive && n < len(bufs) {
		bufs[n] = c.pingLocked(now, bufs[n])
		n++
	}
	soonest(c.lastSend.Add(c.opt.KeepAlive))
	soonest(c.lastRecv.Add(c.opt.IdleTimeout))
	if c.inflight > 0 {
		soonest(c.rtoAt)
		soonest(c.probeAt)
	}
	soonest(c.rackDeadline)
	return n, wake
}

// nextLostLocked returns the lowest segment waiting for retransmission.
func (c *Conn) nextLostLocked() *outSeg {
	if c.lostCount == 0 {
		return nil
	}
	for _, s := range c.out {
		if s.lost {
			return s
		}
	}
	return nil
}

func (c *Conn) newSegmentLocked() *outSeg {
	var s *outSeg
	if n := len(c.freeSegs); n > 0 {
		s = c.freeSegs[n-1]
		c.freeSegs = c.freeSegs[:n-1]
	} else {
		s = new(outSeg)
	}
	s.seq = c.sndNxt
	if k := min(c.mss, len(c.pbuf)-c.poff); k > 0 {
		s.data = append(c.bufLocked(), c.pbuf[c.poff:c.poff+k]...)
		c.poff += k
		if c.poff == len(c.pbuf) {
			c.pbuf, c.poff = c.pbuf[:0], 0
		}
	} else {
		s.fin = true
		c.finSent = true
	}
	c.sndNxt++
	c.out = append(c.out, s)
	c.outBytes += len(s.data)
	return s
}

// header fills the fields every segment carries about the reverse
// direction.
func (c *Conn) headerLocked(now time.Time, kind uint8) segment {
	return segment{kind: kind, ack: c.rcvNxt, wnd: c.rcvWndLocked(), tsval: c.tsNow(now), tsecr: c.tsRecent}
}

func (c *Conn) transmitLocked(now time.Time, s *outSeg, buf []byte) []byte {
	probe := s.xmits > 0 && !s.lost // a tail loss probe: still counted in flight
	if s.xmits > 0 {
		if s.lost {
			s.lost = false
			c.lostCount--
		}
		c.stats.SegmentsRetransmitted++
	} else {
		c.stats.BytesSent += uint64(len(s.data))
	}
	c.stats.SegmentsSent++
	s.xmits++
	if c.inflight == 0 {
		// Nothing in flight: a rate sample must not span the idle time.
		c.firstSentAt, c.deliveredAt = now, now
		c.rtoAt = now.Add(c.rtt.rto())
	}
	if c.rtoAt.IsZero() {
		c.rtoAt = now.Add(c.rtt.rto())
	}
	if !probe {
		c.inflight += s.wire()
		c.probeAt = now.Add(c.probeTimeout())
	}
	s.sentAt = now
	s.sentTs = c.tsNow(now)
	s.rsDelivered, s.rsDeliveredAt, s.rsFirstSentAt = c.delivered, c.deliveredAt, c.firstSentAt
	s.rsAppLimited = c.appLimited != 0
	c.cc.onSend()
	kind := uint8(kindData)
	if s.fin {
		kind = kindFin
	}
	seg := c.headerLocked(now, kind)
	seg.seq, seg.payload = s.seq, s.data
	if len(c.ranges) == 0 {
		// The cumulative ack rides along; with holes, the SACK-bearing
		// ack still goes out separately.
		c.ackPending, c.ackDue = 0, time.Time{}
	}
	c.lastSend = now
	return appendSegment(buf[:0], &seg)
}

func (c *Conn) ackLocked(now time.Time, buf []byte) []byte {
	seg := c.headerLocked(now, kindAck)
	seg.blocks = c.reportBlocksLocked()
	c.ackNow, c.ackPending, c.ackDue = false, 0, time.Time{}
	c.stats.AcksSent++
	c.lastSend = now
	return appendSegment(buf[:0], &seg)
}

// reportBlocksLocked picks the SACK blocks an ack carries: all of them if
// they fit, else the lowest (the holes to repair first) plus the one
// holding the latest arrival, so every arrival is reported at least once
// (RFC 2018 4) and the sender's scoreboard stays complete even with more
// holes than fit in a datagram.
func (c *Conn) reportBlocksLocked() []sackBlock {
	room := min((c.opt.MTU-recordOverhead-headerLen)/blockLen, maxBlocks)
	if len(c.ranges) <= room {
		return c.ranges
	}
	b := append(c.blocksBuf[:0], c.ranges[:room-1]...)
	i := sort.Search(len(c.ranges), func(i int) bool { return c.ranges[i].end > c.lastOOO })
	if i < len(c.ranges) && i >= room-1 && c.ranges[i].start <= c.lastOOO {
		b = append(b, c.ranges[i])
	} else {
		b = append(b, c.ranges[room-1])
	}
	c.blocksBuf = b
	return b
}

func (c *Conn) pingLocked(now time.Time, buf []byte) []byte {
	seg := c.headerLocked(now, kindPing)
	c.pingTs, c.pingOut = seg.tsval, true
	c.stats.KeepalivesSent++
	c.lastSend = now
	return appendSegment(buf[:0], &seg)
}
