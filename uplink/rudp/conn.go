package rudp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
)

// Errors a Conn fails with (wrapped, naming the peer), besides those of
// the DTLS layer. Test with errors.Is.
var (
	ErrIdleTimeout = errors.New("idle timeout")
	ErrPeerClosed  = errors.New("connection closed by peer")
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
	// BandwidthCap is the rate cap congestion put below the estimate,
	// bytes/s; 0: none.
	BandwidthCap float64
	RandomLoss   float64 // loss rate measured while sending below the estimate
	Mode         string  // congestion controller phase: startup, drain, probe_bw

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
	LossBackoffs          uint64 // congested round trips (a queue and loss beyond the random rate) that cut the rate
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
	lowGain       bool // sent while pacing below the estimate: its fate measures random loss
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
	c := makeConn(lower, opt, time.Now())
	go c.readLoop()
	go c.sendLoop()
	return c
}

// makeConn is a Conn with its engine not started (the fuzzer drives it).
func makeConn(lower net.Conn, opt Options, now time.Time) *Conn {
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
	wait := c.opt.CloseTimeout
	if flush {
		c.finQueued = true
		if c.eof && c.bufferedLocked() == 0 {
			// The peer already ended its stream and has all ours: it
			// is likely closing too, and if its close_notify was lost,
			// nobody is left to acknowledge our end of stream.
			wait = min(wait, 2*c.rtt.rto())
		}
	}
	c.mu.Unlock()
	signal(c.kick)
	var ferr error
	if flush {
		t := time.NewTimer(wait)
		select {
		case <-c.flushed:
		case <-c.done:
		case <-t.C:
			c.mu.Lock()
			if n := c.bufferedLocked(); n > 0 {
				ferr = fmt.Errorf("rudp: close %s: %d bytes not acknowledged within %s", c.RemoteAddr(), n, wait)
			}
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
	s.PacingRate, s.Bandwidth, s.BandwidthCap = c.cc.pacingRate(c.rtt.srtt), c.cc.btlBw, c.cc.bwLo
	s.Mode, s.LossBackoffs, s.RandomLoss = c.cc.mode.String(), c.cc.cuts, c.cc.lossRate
	return s
}
