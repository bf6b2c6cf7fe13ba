package rudp

// Acknowledgement processing and loss recovery: SACK scoreboard, RACK
// loss detection, tail loss probes and the retransmission timer.

import (
	"time"
)

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
	before := c.delivered
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
				// The receiver keeps what it has acknowledged (it never
				// reneges), so the copy here is no longer needed: the
				// send buffer frees up while holes below are repaired.
				c.outBytes -= len(s.data)
				if cap(s.data) == c.mss {
					c.free = append(c.free, s.data[:0])
				}
				s.data = nil
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
		acked:          c.delivered - before,
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
	if s.lowGain {
		s.lowGain = false
		c.cc.onResolved(false)
	}
	c.delivered += int64(s.wire())
	c.deliveredAt = now
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
	if s.lowGain {
		s.lowGain = false
		c.cc.onResolved(true)
	}
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
	pto := 2 * c.rtt.srtt
	if c.inflight <= c.mss+headerLen {
		pto += c.opt.AckDelay // a lone segment's ack may be delayed
	}
	return max(pto, 2*time.Millisecond)
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
