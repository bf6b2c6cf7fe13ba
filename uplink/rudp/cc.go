package rudp

import "time"

// Congestion control: a model-based controller after BBR (Cardwell et al.,
// "BBR: Congestion-Based Congestion Control", ACM Queue 2016). It estimates
// the bottleneck bandwidth as the highest delivery rate seen over the last
// bwRounds round trips and the propagation delay as the lowest RTT over
// minRTTWindow, paces at a gain times that bandwidth and caps the data in
// flight at a gain times their product.
//
// Why not AIMD: on the links this is for, loss is mostly random (radio,
// long fibre with bad splices), not a sign of a full queue. Halving per
// lost segment at 10 % loss keeps the window at a few segments; even
// "once per round trip" halving settles near 1/sqrt(p) segments. Delivery
// rate is what a lossy path still carries, so it keeps the link busy and
// loses only the lost fraction.
//
// Plain BBR still shrinks under heavy random loss: delivered is (1-p)
// of sent, so each sample is (1-p) of the pacing rate and only the 1.25
// probe phase can make that up, which fails above 20 % loss. Outside
// startup, a sample taken while the RTT shows no queue (queueFree) is
// divided by (1 - smoothed loss rate, at most maxCompensated): loss without
// queueing delay is the link's, and the send rate it sustained is the
// capacity. When a queue builds, samples are taken as they are, so
// congestion is measured, not compensated.
//
// The one loss reaction kept is a heavy-loss guard: a round trip losing more than lossThreshold of at least
// lossMinSent segments (a queue overflowing after the capacity dropped,
// not noise) shrinks the bandwidth estimate, at most once per round trip.
// The threshold sits well above the random loss the link is built for: a
// lower one cuts on noise, the window shrinks, small rounds are noisier
// still, and the estimate spirals down (the 30 % case in cc_test.go).

const (
	bwRounds      = 10    // max-filter window of the bandwidth estimate, in round trips
	startupGain   = 2.885 // 2/ln 2: doubles the delivery rate each round trip
	probeCwndGain = 2.0
	fullBwGrowth  = 1.25 // startup ends after three rounds growing less than this
	fullBwRounds  = 3
	lossThreshold = 0.5  // fraction lost in a round that counts as congestion, far above random loss
	lossMinSent   = 20   // fewer segments in a round say too little about the loss rate
	lossBackoff   = 0.85 // what the heavy-loss guard leaves of the estimate
	minCwndSegs   = 8    // fewer leave RACK too few later segments to detect a loss by, at 10 % loss
	// maxCompensated caps the loss rate a bandwidth sample is corrected
	// for: enough, with the 1.25 probe, to hold the estimate up to about
	// 35 % random loss, while loss at a buffer that drops rather than
	// queues (a socket buffer overflowing) can inflate it by a third at
	// most.
	maxCompensated = 0.25
)

// queueFree reports whether an RTT sample shows no standing queue: within
// a quarter (and 1 ms of scheduling noise) of the path's minimum. Loss
// without a queue is the link's, not congestion.
func queueFree(rtt, minRTT time.Duration) bool {
	return rtt > 0 && minRTT > 0 && rtt <= minRTT+minRTT/4+time.Millisecond
}

// probeGain is ProbeBW's pacing cycle of probePhases: probe above the
// estimate for one min-RTT, drain the queue that made for one, then cruise
// for six.
func probeGain(phase int) float64 {
	switch phase {
	case 0:
		return 1.25
	case 1:
		return 0.75
	}
	return 1
}

const probePhases = 8

type ccMode uint8

const (
	modeStartup ccMode = iota
	modeDrain
	modeProbeBW
)

func (m ccMode) String() string {
	switch m {
	case modeStartup:
		return "startup"
	case modeDrain:
		return "drain"
	}
	return "probe_bw"
}

// rateSample is what one acknowledgement tells the controller: delivered
// bytes over interval, measured from the newest segment it acknowledges.
type rateSample struct {
	delivered      int64         // bytes delivered between that segment's send and now
	interval       time.Duration // max of its send and ack spans
	priorDelivered int64         // connection's delivered count when that segment was sent
	appLimited     bool          // the sender was short of data when it was sent
	rtt            time.Duration // latest RTT sample; 0 if none came with this ack
}

// bbr is the controller state. All sizes are bytes of wire payload.
type bbr struct {
	mss      int
	initCwnd int

	mode        ccMode
	slots       [bwRounds]float64 // per-round maximum delivery rate, bytes/s
	btlBw       float64
	round       uint64
	nextRound   int64 // delivered count that ends the current round
	fullBw      float64
	fullBwCount int
	cycleIdx    int
	cycleStamp  time.Time
	pacingGain  float64
	cwndGain    float64
	rtoCapped   bool // after a timeout, one segment in flight until something is delivered
	roundSent   int
	roundLost   int
	lossCuts    uint64
	lossRate    float64 // smoothed per-round fraction of segments lost
}

func newBBR(mss, initCwndSegs int) *bbr {
	return &bbr{mss: mss, initCwnd: initCwndSegs * mss, pacingGain: startupGain, cwndGain: startupGain}
}

// onSend counts a transmission towards this round's loss fraction.
func (b *bbr) onSend() { b.roundSent++ }

// onLost counts a segment declared lost.
func (b *bbr) onLost() { b.roundLost++ }

// onRTO reacts to a retransmission timeout: the path may be gone, so only
// one segment probes it until an acknowledgement shows it is back.
func (b *bbr) onRTO() { b.rtoCapped = true }

// onAck updates the model from one acknowledgement that delivered data.
func (b *bbr) onAck(now time.Time, rs rateSample, delivered int64, inflight int, minRTT time.Duration) {
	b.rtoCapped = false
	if rs.priorDelivered >= b.nextRound {
		b.nextRound = delivered
		b.round++
		b.slots[b.round%bwRounds] = 0
		b.endRound()
		b.checkFullPipe(rs)
	}
	if rs.interval > 0 && rs.delivered > 0 {
		// Intervals shorter than the path's RTT come from acks bunched up
		// in transit and overstate the rate (BBR discards them too).
		if minRTT == 0 || rs.interval >= minRTT/2 {
			bw := float64(rs.delivered) / rs.interval.Seconds()
			// Not in startup: there the losses are mostly its own
			// overshoot, and inflating samples would keep it from
			// noticing the pipe is full.
			if b.mode != modeStartup && queueFree(rs.rtt, minRTT) {
				// The path carried what was sent, less random loss, with no
				// queue building: its capacity is the send rate, not the
				// delivery rate. Without this the estimate shrinks by the
				// loss fraction every round trip and the 1.25 probe can
				// only make it up below 20 % loss.
				bw /= 1 - min(b.lossRate, maxCompensated)
			}
			if !rs.appLimited || bw >= b.btlBw {
				s := &b.slots[b.round%bwRounds]
				*s = max(*s, bw)
				b.btlBw = 0
				for _, v := range b.slots {
					b.btlBw = max(b.btlBw, v)
				}
			}
		}
	}
	switch b.mode {
	case modeDrain:
		if inflight <= b.bdp(minRTT) {
			b.enterProbeBW(now)
		}
	case modeProbeBW:
		if minRTT > 0 && now.Sub(b.cycleStamp) > minRTT {
			b.cycleIdx = (b.cycleIdx + 1) % probePhases
			b.cycleStamp = now
			b.pacingGain = probeGain(b.cycleIdx)
		}
	}
}

// endRound applies the heavy-loss guard once per round trip.
func (b *bbr) endRound() {
	sent, lost := b.roundSent, b.roundLost
	b.roundSent, b.roundLost = 0, 0
	if sent > 0 {
		// Weighted by the round's size, so small rounds move it little.
		w := min(float64(sent)/lossMinSent, 1) / 4
		b.lossRate = (1-w)*b.lossRate + w*float64(lost)/float64(sent)
	}
	if sent >= lossMinSent && float64(lost) > lossThreshold*float64(sent) && b.mode != modeStartup {
		for i := range b.slots {
			b.slots[i] *= lossBackoff
		}
		b.btlBw *= lossBackoff
		b.lossCuts++
	}
}

func (b *bbr) checkFullPipe(rs rateSample) {
	if b.mode != modeStartup || rs.appLimited {
		return
	}
	if b.btlBw >= b.fullBw*fullBwGrowth {
		b.fullBw, b.fullBwCount = b.btlBw, 0
		return
	}
	b.fullBwCount++
	if b.fullBwCount >= fullBwRounds {
		b.mode = modeDrain
		b.pacingGain, b.cwndGain = 1/startupGain, startupGain
	}
}

func (b *bbr) enterProbeBW(now time.Time) {
	b.mode = modeProbeBW
	b.cwndGain = probeCwndGain
	// Start cruising rather than draining: the drain phase just emptied
	// the queue (BBR picks a random phase other than 0.75).
	b.cycleIdx, b.cycleStamp = 2, now
	b.pacingGain = probeGain(b.cycleIdx)
}

func (b *bbr) bdp(minRTT time.Duration) int {
	if b.btlBw == 0 || minRTT == 0 {
		return b.initCwnd
	}
	return int(b.btlBw * minRTT.Seconds())
}

// cwnd is how many bytes may be in flight. Pacing sets the rate; the
// window only has to keep acknowledgements that come late from stalling
// it, so it is sized on the smoothed RTT when that exceeds the minimum:
// where delay comes from scheduling and bunched acks rather than a queue
// (a busy gateway, DTLS on a slow core), a window on the minimum RTT
// would cap the rate below the path's, the delivery rate would follow it
// down, and the estimate would collapse.
func (b *bbr) cwnd(minRTT, srtt time.Duration) int {
	if b.rtoCapped {
		return b.mss
	}
	if b.btlBw == 0 || minRTT == 0 {
		return b.initCwnd
	}
	rtt := max(minRTT, srtt)
	if b.mode != modeProbeBW {
		// Startup's own queue inflates the smoothed RTT; sized on it, the
		// window would feed the overshoot it is meant to bound.
		rtt = minRTT
	}
	// Three extra segments cover delayed and bunched acknowledgements.
	w := int(b.cwndGain*float64(b.bdp(rtt))) + 3*b.mss
	if b.mode == modeStartup {
		w = max(w, b.initCwnd)
	}
	return max(w, minCwndSegs*b.mss)
}

// pacingRate is the send rate in bytes/s; 0 means unpaced (nothing measured yet).
func (b *bbr) pacingRate(srtt time.Duration) float64 {
	if b.btlBw > 0 {
		return b.pacingGain * b.btlBw
	}
	if srtt > 0 {
		return b.pacingGain * float64(b.initCwnd) / srtt.Seconds()
	}
	return 0
}
