package rudp

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCongestionStartupAndTimeout(t *testing.T) {
	b := newBBR(1000, 10)
	require.Equal(t, 10000, b.cwnd(0), "initial window before any sample")
	require.Zero(t, b.pacingRate(0), "unpaced before an RTT is known")
	require.InDelta(t, startupGain*10000/0.1, b.pacingRate(100*time.Millisecond), 1)
	b.onRTO()
	require.Equal(t, 1000, b.cwnd(0), "one segment in flight after a timeout")
	b.onAck(time.Unix(1, 0), rateSample{delivered: 1000, interval: 100 * time.Millisecond}, 1000, 0, 100*time.Millisecond)
	require.Greater(t, b.cwnd(100*time.Millisecond), 1000, "window restored once the path delivers")
}

// TestCongestionNeedsQueueAndExcessLoss walks the controller through
// round trips by hand: loss at the random rate never cuts, with or
// without a queue; loss beyond it without a queue (a probe overflowing a
// policer) does not either; beyond it with a queue cuts to 0.7, once per
// episode, and the cap then grows and lifts.
func TestCongestionNeedsQueueAndExcessLoss(t *testing.T) {
	const mss = 1000
	minRTT := 20 * time.Millisecond
	now := time.Unix(1, 0)
	b := newBBR(mss, 10)
	b.enterProbeBW(now)
	b.slots[0], b.btlBw = 1e6, 1e6
	for range 200 { // 10 % random loss measured while draining
		b.onResolved(false)
	}
	for range 22 {
		b.onResolved(true)
	}
	require.InDelta(t, 0.1, b.lossRate, 0.01)
	var delivered int64
	round := func(sent, lost int, rtt time.Duration) {
		for range sent {
			b.onSend()
		}
		for range lost {
			b.onLost()
		}
		now = now.Add(minRTT)
		prior := delivered
		delivered += int64((sent - lost) * mss)
		b.onAck(now, rateSample{priorDelivered: prior, rtt: rtt}, delivered, 0, minRTT)
	}
	round(100, 12, minRTT)   // random loss, no queue
	round(100, 12, 2*minRTT) // random loss behind a queue
	require.Zero(t, b.cuts)
	round(100, 40, minRTT) // beyond random, no queue: a probe at a policer
	require.Zero(t, b.cuts)
	round(100, 40, 2*minRTT) // beyond random, with a queue: congestion
	require.EqualValues(t, 1, b.cuts)
	require.InDelta(t, 0.7e6, b.bwLo, 1)
	require.InDelta(t, 0.7e6, b.bw(), 1)
	round(100, 40, 2*minRTT) // the same episode: sent before the cut took hold
	require.EqualValues(t, 1, b.cuts)
	b.cycleIdx = 0
	require.Equal(t, 1.0, b.phaseGain(), "no probing above the cap")
	before := b.bwLo
	round(100, 0, minRTT)
	round(100, 0, minRTT)
	require.Greater(t, b.bwLo, before, "the cap grows each clean round trip")
	now = now.Add(bwLoHold)
	round(100, 0, minRTT)
	round(100, 0, minRTT)
	require.Zero(t, b.bwLo, "the cap lifts after a while without congestion")
	require.InDelta(t, 1e6, b.bw(), 1)
}

// TestNoCollapseUnderLoss runs the whole engine over an emulated 10 MB/s
// path with 10 ms RTT and 10 % random loss each way, in real time. How
// fast is for BenchmarkGoodput and `make bench` to measure, and whether
// random loss is taken for congestion for TestSimRandomLossKeepsRate on
// the simulated clock (here the 20 ms queue may overflow in startup, which
// is congestion); this checks what must hold however loaded the machine
// is: every byte arrives in order and retransmissions stay near the loss
// rather than flooding the path.
func TestNoCollapseUnderLoss(t *testing.T) {
	data := randomBytes(2<<20, 3)
	l := linkCfg{delay: 5 * time.Millisecond, rate: 10e6, queue: 20 * time.Millisecond, loss: 0.10}
	ab, ba := l, l
	ab.seed, ba.seed = 21, 22
	// The whole stream fits the send buffer, so Close waits for all of
	// it: a minute, not the default 5 s, which a loaded machine running
	// the race detector can need.
	w, r := newConnPair(ab, ba, Options{CloseTimeout: time.Minute})
	defer r.Close()
	got := transfer(t, w, r, data)
	require.True(t, bytes.Equal(data, got))
	st := w.Stats()
	t.Logf("sent %d segments, %d retransmitted (%.1f %%), %d timeouts, %d congestion cuts, random loss measured %.3f",
		st.SegmentsSent, st.SegmentsRetransmitted, 100*float64(st.SegmentsRetransmitted)/float64(st.SegmentsSent), st.Timeouts, st.LossBackoffs, st.RandomLoss)
	require.Less(t, st.SegmentsRetransmitted, st.SegmentsSent/3, "retransmissions far beyond a 10 %% loss")
}

func TestExcessLoss(t *testing.T) {
	tests := []struct {
		lost, sent int
		p          float64
		want       bool
	}{
		{0, 100, 0, false},
		{1, 100, 0, false},
		{5, 100, 0, true},
		{15, 100, 0.1, false},
		{25, 100, 0.1, true},
		{3, 20, 0.1, false},
		{10, 20, 0.1, true},
		{7, 7, 0, false}, // too few to judge
		{130, 1000, 0.1, true},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, excessLoss(tt.lost, tt.sent, tt.p), "%d of %d at p %.2f", tt.lost, tt.sent, tt.p)
	}
}

// The tests below run the whole engine (pacing, RACK, SACK, the
// controller) on the simulated clock of sim_test.go, so each is the same
// run every time and none depends on how loaded the machine is.

// simRate is the bottleneck of the simulated paths, bytes/s.
const simRate = 4e6

// goodputShare is the bottleneck's capacity for payload once a loss rate
// is taken out: what a perfect sender could deliver.
func goodputShare(c *Conn, rate, loss float64) float64 {
	return rate * (1 - loss) * float64(c.mss) / float64(c.mss+headerLen+recordOverhead)
}

// TestSimRandomLossKeepsRate: a bottleneck with a one-BDP drop-tail queue
// and random loss each way after it (where the lab's nftables drops).
// Random loss costs the lost share and no more: over the second half of
// the run the flow delivers at least min of what the bottleneck can carry
// once that share is taken out.
func TestSimRandomLossKeepsRate(t *testing.T) {
	tests := []struct {
		delay time.Duration
		loss  float64
		min   float64
	}{
		{20 * time.Millisecond, 0, 0.95},
		{20 * time.Millisecond, 0.01, 0.95},
		{20 * time.Millisecond, 0.05, 0.9},
		{20 * time.Millisecond, 0.10, 0.9},
		{20 * time.Millisecond, 0.20, 0.9},
		{50 * time.Millisecond, 0.10, 0.9},
		{50 * time.Millisecond, 0.20, 0.8},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%.0f%%", tt.delay, tt.loss*100), func(t *testing.T) {
			t.Parallel()
			s := newSim()
			fwd := newSimPath(simRate, int(simRate*2*tt.delay.Seconds()), tt.delay, tt.loss, 1)
			rev := newSimPath(0, 0, tt.delay, tt.loss, 2)
			snd, rcv := simConnPair(s, Options{}, fwd, rev)
			var mid int64
			start := s.now
			s.runUntil(start.Add(20*time.Second), simHook{at: start.Add(10 * time.Second), fn: func() { mid = rcv.read }})
			got := float64(rcv.read-mid) / 10
			st := snd.c.Stats()
			t.Logf("goodput %.2f MB/s, %.2f of the loss-free share; estimate %.2f MB/s, random loss measured %.3f, congestion cuts %d, queue drops %d",
				got/1e6, got/goodputShare(snd.c, simRate, tt.loss), st.Bandwidth/1e6, st.RandomLoss, st.LossBackoffs, fwd.queueDrops)
			require.GreaterOrEqual(t, got, tt.min*goodputShare(snd.c, simRate, tt.loss))
		})
	}
}

// TestSimQueueCutsRate: the bottleneck drops from 4 to 1 MB/s mid-run
// (a radio falling back to a slower rate), its queue fills and overflows.
// That is congestion, with or without random loss besides: within a
// second the flow sends no faster than the new rate, and then keeps it
// busy without overflowing it again.
func TestSimQueueCutsRate(t *testing.T) {
	for _, loss := range []float64{0, 0.1} {
		t.Run(fmt.Sprintf("%.0f%%", loss*100), func(t *testing.T) {
			t.Parallel()
			s := newSim()
			d := 20 * time.Millisecond
			fwd := newSimPath(simRate, int(simRate*2*d.Seconds()), d, loss, 1)
			rev := newSimPath(0, 0, d, loss, 2)
			snd, rcv := simConnPair(s, Options{}, fwd, rev)
			start := s.now
			var in0, read0, drops0 int
			s.runUntil(start.Add(16*time.Second),
				simHook{at: start.Add(10 * time.Second), fn: func() { fwd.rate = simRate / 4 }},
				simHook{at: start.Add(11 * time.Second), fn: func() {
					in0, read0, drops0 = int(fwd.bytesIn), int(rcv.read), fwd.queueDrops
				}})
			offered := float64(int(fwd.bytesIn)-in0) / 5
			got := float64(int(rcv.read)-read0) / 5
			st := snd.c.Stats()
			t.Logf("offered %.2f MB/s to a 1 MB/s bottleneck, goodput %.2f MB/s, %d queue drops after the first second, congestion cuts %d",
				offered/1e6, got/1e6, fwd.queueDrops-drops0, st.LossBackoffs)
			require.Positive(t, st.LossBackoffs, "the overflow was not taken for congestion")
			require.LessOrEqual(t, offered, 1.1*simRate/4, "still sending above the bottleneck's new rate")
			require.GreaterOrEqual(t, got, 0.85*goodputShare(snd.c, simRate/4, loss), "collapsed below the new rate")
		})
	}
}

// TestSimFairShareWithReno: the flow and a Reno TCP flow share a 2.5 MB/s
// bottleneck through drop-tail queues of one and two BDPs, at three
// RTTs. The flow takes no more than its fair share (a little over half at
// most: the two count their bytes differently), nor is it starved.
func TestSimFairShareWithReno(t *testing.T) {
	tests := []struct {
		delay time.Duration
		bdps  float64
	}{
		{5 * time.Millisecond, 2},
		{20 * time.Millisecond, 1},
		{20 * time.Millisecond, 2},
		{50 * time.Millisecond, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%gbdp", tt.delay, tt.bdps), func(t *testing.T) {
			t.Parallel()
			const rate = 2.5e6
			s := newSim()
			fwd := newSimPath(rate, int(rate*2*tt.delay.Seconds()*tt.bdps), tt.delay, 0, 1)
			reno := newSimReno(s, fwd, newSimPath(0, 0, tt.delay, 0, 2))
			_, rcv := simConnPair(s, Options{}, fwd, newSimPath(0, 0, tt.delay, 0, 3))
			start := s.now
			var r0, t0 int64
			s.runUntil(start.Add(40*time.Second), simHook{at: start.Add(10 * time.Second), fn: func() { r0, t0 = rcv.read, reno.delivered }})
			ours, theirs := float64(rcv.read-r0), float64(reno.delivered-t0)
			share := ours / (ours + theirs)
			t.Logf("rudp %.2f MB/s, reno %.2f MB/s: share %.2f", ours/30e6, theirs/30e6, share)
			require.LessOrEqual(t, share, 0.6)
			require.GreaterOrEqual(t, share, 0.2)
		})
	}
}

// TestSimTwoFlowsShare: a second flow joins a first on the bottleneck;
// they end up with even shares.
func TestSimTwoFlowsShare(t *testing.T) {
	for _, d := range []time.Duration{20 * time.Millisecond, 50 * time.Millisecond} {
		t.Run(d.String(), func(t *testing.T) {
			t.Parallel()
			s := newSim()
			fwd := newSimPath(simRate, int(simRate*2*d.Seconds()), d, 0, 1)
			_, ar := simConnPair(s, Options{}, fwd, newSimPath(0, 0, d, 0, 2))
			var br *simConn
			start := s.now
			var a0, b0 int64
			s.runUntil(start.Add(40*time.Second),
				simHook{at: start.Add(5 * time.Second), fn: func() { _, br = simConnPair(s, Options{}, fwd, newSimPath(0, 0, d, 0, 3)) }},
				simHook{at: start.Add(20 * time.Second), fn: func() { a0, b0 = ar.read, br.read }})
			x, y := float64(ar.read-a0), float64(br.read-b0)
			t.Logf("first %.2f MB/s, second %.2f MB/s", x/20e6, y/20e6)
			require.InDelta(t, 0.5, x/(x+y), 0.15)
		})
	}
}

// TestSimLateWakeups: on a busy gateway the send loop runs late, by up to
// a few milliseconds each time. Pacing must not lose the time it slept
// over: the flow still fills the bottleneck.
func TestSimLateWakeups(t *testing.T) {
	for _, late := range []time.Duration{2 * time.Millisecond, 5 * time.Millisecond} {
		t.Run(late.String(), func(t *testing.T) {
			t.Parallel()
			s := newSim()
			rng := rand.New(rand.NewPCG(7, 8))
			s.late = func() time.Duration { return time.Duration(rng.Int64N(int64(late))) }
			d := 20 * time.Millisecond
			fwd := newSimPath(simRate, int(simRate*2*d.Seconds()), d, 0, 1)
			rev := newSimPath(0, 0, d, 0, 2)
			snd, rcv := simConnPair(s, Options{}, fwd, rev)
			var mid int64
			start := s.now
			s.runUntil(start.Add(20*time.Second), simHook{at: start.Add(10 * time.Second), fn: func() { mid = rcv.read }})
			got := float64(rcv.read-mid) / 10
			st := snd.c.Stats()
			t.Logf("goodput %.2f MB/s, %.2f of the share; estimate %.2f MB/s, congestion cuts %d, queue drops %d",
				got/1e6, got/goodputShare(snd.c, simRate, 0), st.Bandwidth/1e6, st.LossBackoffs, fwd.queueDrops)
			require.GreaterOrEqual(t, got, 0.9*goodputShare(snd.c, simRate, 0))
		})
	}
}

// TestSimFirstBatchAfterHello is a session's start as the uplink makes it:
// a short Hello, its answer, then a batch of 64 KB. The Hello's lone
// segment gives the controller its first bandwidth sample, a few hundred
// bytes over a round trip; the batch must still go out at the startup
// rate of the initial window, not at the pace of that sample, or the first
// acknowledgement after a collector returns waits several round trips
// more for the pacer to double its way back up.
func TestSimFirstBatchAfterHello(t *testing.T) {
	const rtt = 40 * time.Millisecond
	s := newSim()
	fwd := newSimPath(10e6, 0, rtt/2, 0, 1)
	rev := newSimPath(0, 0, rtt/2, 0, 2)
	snd := newSimConn(s, Options{}, fwd, false)
	rcv := newSimConn(s, Options{}, rev, false)
	snd.peer, rcv.peer = rcv, snd
	for _, e := range []*simConn{snd, rcv} {
		// As Dial seeds it: half a handshake of three round trips.
		e.c.rtt.sample(3*rtt/2, s.now)
	}
	s.add(snd)
	s.add(rcv)
	write := func(n int) func() {
		return func() {
			_, err := snd.c.Write(make([]byte, n))
			require.NoError(t, err)
			s.wakes[0] = s.now
		}
	}
	start := s.now
	const hello, batch = 200, 64 << 10
	batchAt := start.Add(rtt + time.Millisecond) // once the Hello's answer is in
	hooks := []simHook{{at: start, fn: write(hello)}, {at: batchAt, fn: write(batch)}}
	end := start
	for rcv.read < hello+batch && end.Before(start.Add(5*time.Second)) {
		end = end.Add(time.Millisecond)
		s.runUntil(end, hooks...)
	}
	require.EqualValues(t, hello+batch, rcv.read)
	took := end.Sub(batchAt)
	t.Logf("batch of %d bytes delivered %s after it was written (%.1f RTT)", batch, took, took.Seconds()/rtt.Seconds())
	// Startup from a window of 16 segments: 16, then about 46 (at 2.885x),
	// so the 60 segments of the batch are in within 2 round trips and a
	// half-trip of delivery; 3 round trips leave a margin.
	require.LessOrEqual(t, took, 3*rtt, "the batch waited on the pacer: it left at the rate of the Hello's sample")
}

// TestSimAcksUnderLoss counts the receiver's acknowledgements per data
// segment over a bottleneck at 20 ms each way, clean and at 10 % random
// loss each way. Each one is a DTLS record both ends must seal or open, so
// a lossy session must not ack much more often than a clean one: only the
// segments that open a hole (and duplicates) are acked at once. Acking
// every out-of-order arrival at once made it about 1 at 10 % loss.
func TestSimAcksUnderLoss(t *testing.T) {
	perSegment := map[float64]float64{}
	for _, loss := range []float64{0, 0.10} {
		s := newSim()
		const delay = 20 * time.Millisecond
		fwd := newSimPath(simRate, int(simRate*2*delay.Seconds()), delay, loss, 1)
		rev := newSimPath(0, 0, delay, loss, 2)
		_, rcv := simConnPair(s, Options{}, fwd, rev)
		s.runUntil(s.now.Add(10 * time.Second))
		st := rcv.c.Stats()
		perSegment[loss] = float64(st.AcksSent) / float64(st.SegmentsReceived)
		t.Logf("loss %.0f %%: %d segments received, %d acks, %.3f per segment", loss*100, st.SegmentsReceived, st.AcksSent, perSegment[loss])
	}
	require.Less(t, perSegment[0], 0.2, "clean: acks are decimated")
	require.Less(t, perSegment[0.10], 0.35, "at 10 % loss: only new holes are acked at once")
}

// TestSimManyHolesNoSpuriousResends: a fast path (40 MB/s, 20 ms each
// way) at 10 % random loss each way keeps far more runs above the
// cumulative point than one ack can list. Each run must still reach the
// sender although one in ten acks is lost, or the sender resends what
// arrived: with the lowest runs and the latest arrival's alone reported,
// 32 % of the resends here were spurious (4792 of 15101), now none.
func TestSimManyHolesNoSpuriousResends(t *testing.T) {
	const rate, delay = 40e6, 20 * time.Millisecond
	s := newSim()
	fwd := newSimPath(rate, int(rate*2*delay.Seconds()), delay, 0.10, 1)
	rev := newSimPath(0, 0, delay, 0.10, 2)
	snd, rcv := simConnPair(s, Options{RecvWindow: 8192}, fwd, rev)
	var most int
	var hooks []simHook
	for at := time.Second; at < 5*time.Second; at += 10 * time.Millisecond {
		hooks = append(hooks, simHook{at: s.now.Add(at), fn: func() { most = max(most, len(rcv.c.ranges)) }})
	}
	s.runUntil(s.now.Add(5*time.Second), hooks...)
	st := snd.c.Stats()
	t.Logf("%d retransmissions, %d spurious; up to %d runs above the cumulative point; %.1f MB/s delivered",
		st.SegmentsRetransmitted, st.SpuriousRetransmits, most, float64(rcv.read)/5e6)
	require.Greater(t, most, maxBlocks, "the runs fit in one ack: the case is not exercised")
	require.Less(t, float64(st.SpuriousRetransmits), 0.02*float64(st.SegmentsRetransmitted), "runs reported to the sender too rarely")
}
