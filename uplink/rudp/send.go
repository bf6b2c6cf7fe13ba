package rudp

// The send side: one goroutine builds and writes every datagram, paced,
// within the congestion and receive windows.

import (
	"fmt"
	"sort"
	"time"
)

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
			// Token bucket: credit builds up while the loop sleeps past
			// its time, so a busy machine's late wakeups do not cost
			// rate: the delivery rate would follow the pacer down and
			// the estimate with it (TestSimLateWakeups: a seventh of the
			// link at up to 5 ms late with 1 ms of credit). An eighth of the
			// path's RTT bounds the burst that makes up for it, well
			// inside the window's second BDP.
			credit := max(time.Millisecond, time.Duration(float64(2*c.mss)/rate*1e9), c.rtt.minRTT/8)
			if c.nextSend.Before(now.Add(-credit)) {
				c.nextSend = now.Add(-credit)
			}
			c.nextSend = c.nextSend.Add(time.Duration(float64(s.wire()) / rate * 1e9))
		}
	}
	if !c.probeAt.IsZero() && !now.Before(c.probeAt) {
		if n == 0 && c.lostCount == 0 && c.inflight > 0 && c.probeAt.Before(c.rtoAt) {
			// Nothing else is going out and acks stopped: resend the
			// newest segment so its ack (SACK) reveals what before it was
			// lost.
			if s := c.tailLocked(); s != nil {
				bufs[n] = c.transmitLocked(now, s, bufs[n])
				n++
			}
		}
		// Disarmed either way: retransmissions waiting for the window or
		// pacing re-arm it when they go out, and the timeout covers the
		// rest. Left armed, a due probe that cannot go would wake this
		// loop at once, again and again, until an ack came.
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
	// Sends while a timeout holds the window at one segment measure the
	// recovery, not the path: like app-limited ones, they may raise the
	// estimate but not lower it.
	s.rsAppLimited = c.appLimited != 0 || c.cc.rtoCapped
	s.lowGain = c.cc.onSend()
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
// they fit, else a few of the lowest (the holes to repair first), the one
// holding the latest arrival, and the highest. Each run is reported in
// every ack while it is among the highest, so one lost ack does not hide
// it (RFC 2018 4: repeat the most recent blocks). Before, past the lowest
// the latest arrival's run alone was reported, each run about once: with
// more runs than fit (a window of a few BDPs at 10 % loss), a run whose
// ack was lost stayed unknown to the sender, which then resent it: a
// quarter of the resends of a bulk transfer over the lab's 20 ms link at
// 10 % loss were spurious, none now, and goodput rose from 8.6 to 11.6-13
// MB/s (TestSimManyHolesNoSpuriousResends).
func (c *Conn) reportBlocksLocked() []sackBlock {
	room := min((c.opt.MTU-recordOverhead-headerLen)/blockLen, maxBlocks)
	n := len(c.ranges)
	if n <= room {
		return c.ranges
	}
	low := room / 4
	high := room - low - 1
	b := append(c.blocksBuf[:0], c.ranges[:low]...)
	i := sort.Search(n, func(i int) bool { return c.ranges[i].end > c.lastOOO })
	if i >= low && i < n-high && c.ranges[i].start <= c.lastOOO {
		b = append(b, c.ranges[i])
	} else {
		high++
	}
	b = append(b, c.ranges[n-high:]...)
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
