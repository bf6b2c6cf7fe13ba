package rudp

// The receive side: reassembly of the ordered stream, the receive window
// and the SACK runs acks report.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"time"
)

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
				c.failLocked(fmt.Errorf("rudp: %s: %w", c.RemoteAddr(), ErrPeerClosed))
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
		// Filling a hole or ending the stream: ack now (RFC 5681 4.2).
		if filled || c.eof {
			c.ackNow = true
		} else {
			c.delayAckLocked(now)
		}
	default:
		if _, ok := c.ooo[seg.seq]; ok || (c.oooFin != 0 && c.oooFin-1 == seg.seq) || c.inRangesLocked(seg.seq) {
			c.stats.DuplicatesReceived++
			c.ackNow = true
			return
		}
		// A segment that opens a new hole (or lands inside one, a
		// retransmission) is acked at once, so the sender learns of the
		// hole; one that extends the highest run above the holes tells it
		// nothing new and is acked as in-order data is. Acking each of
		// those too made a lossy session, with a hole almost always open,
		// ack every segment, each ack a DTLS record to seal, send, receive
		// and open at the two ends (TestSimAcksUnderLoss: at 10 % loss 1.0
		// ack per segment before, 0.24 now; 0.51 and 0.13 clean).
		extends := len(c.ranges) > 0 && c.ranges[len(c.ranges)-1].end == seg.seq
		if seg.kind == kindFin {
			c.oooFin = seg.seq + 1
		} else {
			c.ooo[seg.seq] = append(c.bufLocked(), seg.payload...)
		}
		c.addRangeLocked(seg.seq)
		c.lastOOO = seg.seq
		if extends {
			c.delayAckLocked(now)
		} else {
			c.ackNow = true
		}
	}
}

// Acknowledgement decimation: the first ackStartup data segments of a
// session are acked every second one (RFC 5681 4.2), so the sender's
// startup sees its window delivered promptly; after that every
// ackEvery-th, or after Options.AckDelay (as Chromium's QUIC does, every
// tenth). Each acknowledgement is a DTLS record, and at these rates the
// ends are bound by the records they seal and open: acking every second
// segment spent a third of the datagrams on acks. Holes are still
// reported at once (receiveLocked), and the sender's window allows for
// the segments an ack waits for (bbr.cwnd).
const (
	ackStartup = 100
	ackEvery   = 8
)

// delayAckLocked counts a segment towards the next acknowledgement.
func (c *Conn) delayAckLocked(now time.Time) {
	c.ackPending++
	every := ackEvery
	if c.stats.SegmentsReceived <= ackStartup {
		every = 2
	}
	if c.ackPending >= every {
		c.ackNow = true
	} else if c.ackDue.IsZero() {
		c.ackDue = now.Add(c.opt.AckDelay)
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
