package rudp

import (
	"math"
	"time"
)

// Congestion control: a model-based controller after BBR (Cardwell et al.,
// "BBR: Congestion-Based Congestion Control", ACM Queue 2016). It
// estimates the bottleneck bandwidth as the highest delivery rate seen
// over the last bwRounds round trips and the propagation delay as the
// lowest RTT over minRTTWindow, paces at a gain times that bandwidth, and
// caps the data in flight at twice their product plus what acknowledgements
// bunched up by the receiver's scheduling showed (extraAcked).
//
// Why not AIMD: on the links this is for, loss is mostly random (radio,
// long fibre with bad splices), not a sign of a full queue. Halving per
// lost segment at 10 % loss keeps the window at a few segments; even
// "once per round trip" halving settles near 1/sqrt(p) segments.
//
// Random loss. Plain BBR still shrinks under it: delivered is (1-p) of
// sent, so each sample is (1-p) of the pacing rate and only the 1.25 probe
// phase makes up for it, which fails from 20 % loss. So each sample is
// divided by (1 - p), p the random loss rate, and the question is how to
// tell random loss from congestion. The answer here is that random loss
// does not depend on how fast one sends and congestion does: p is measured
// on the transmissions sent while pacing below the estimate (ProbeBW's
// 0.75 phase, and drain), which cannot overflow a bottleneck the estimate
// describes, over the last 2 x lossWindow of them. Loss of the probes
// above the estimate does not count, so a policer or a buffer that drops
// rather than queues cannot talk the estimate up: with p capped at
// maxCompensated, even an estimate inflated by a third drains at the
// bottleneck's rate.
//
// Congestion. A round trip is congested when its lowest RTT shows a
// standing queue (queued) and it lost significantly more than p (more
// than excessSigmas binomial deviations, at least excessFloor): loss that
// comes with a queue and beyond the random rate is a queue overflowing.
// The response is TCP-friendly AIMD on a rate cap, bwLo, below the model:
// a cut to congestionBeta (0.7, as CUBIC) of the rate, or to what the
// round delivered if that is less (the bottleneck's rate fell), at most
// once per round trip and not again for segments sent before the cut, and then
// congestionAI segments per round trip more (CUBIC's Reno-friendly
// increase for that beta, RFC 9438 4.3); no probing above it meanwhile.
// The cap lifts when it reaches the model or after bwLoHold without
// congestion. So the flow holds its rate through random loss of any
// pattern, and backs off like a TCP flow where a queue is full.

const (
	bwRounds      = 10    // max-filter window of the bandwidth estimate, in round trips
	startupGain   = 2.885 // 2/ln 2: doubles the delivery rate each round trip
	probeCwndGain = 2.0
	fullBwGrowth  = 1.25 // startup ends after three rounds growing less than this
	fullBwRounds  = 3
	minCwndSegs   = 8 // fewer leave RACK too few later segments to detect a loss by, at 10 % loss

	// maxCompensated caps the random loss rate a bandwidth sample is
	// corrected for (a third more at most); at 25 % random loss and above
	// the estimate slowly follows the delivery rate down.
	maxCompensated = 0.25
	// lossWindow is the size of each of the two buckets of low-gain
	// transmissions the random loss rate is measured over; lossMinResolved
	// are needed before it is believed.
	lossWindow      = 256
	lossMinResolved = 32

	congestionBeta    = 0.7
	congestionAI      = 0.5 // segments per round trip: 3(1-beta)/(1+beta)
	congestionMinSent = 8   // a round of fewer says too little about its loss rate
	excessFloor       = 0.02
	excessSigmas      = 3
	bwLoHold          = 2 * time.Second
	// maxExtraAcked bounds the window added for bunched acknowledgements,
	// as a time at the estimated rate.
	maxExtraAcked = 100 * time.Millisecond
	// cruiseDrainGain is the cruising gain while a standing queue shows.
	cruiseDrainGain = 0.9
	// lowGainMax is the highest pacing gain whose transmissions measure
	// random loss: the drain phases, well below the estimate.
	lowGainMax = 0.8
	// queueSlack is the RTT above the minimum that scheduling alone makes
	// on a busy gateway, not a queue.
	queueSlack = 2 * time.Millisecond
)

// queued reports whether a round's lowest RTT shows a standing queue.
func queued(roundMin, minRTT time.Duration) bool {
	return roundMin > 0 && minRTT > 0 && roundMin > minRTT+minRTT/8+queueSlack
}

// excessLoss reports whether lost of sent is more than random loss at rate
// p explains.
func excessLoss(lost, sent int, p float64) bool {
	if sent < congestionMinSent {
		return false
	}
	dev := math.Sqrt(max(p, 0.01) * (1 - p) / float64(sent))
	return float64(lost)/float64(sent) > p+max(excessFloor, excessSigmas*dev)
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
	acked          int64         // bytes this acknowledgement delivered
}

// lossCount is one bucket of low-gain transmissions and how many were lost.
type lossCount struct{ n, lost int }

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

	// This round trip's transmissions, losses declared and lowest RTT.
	roundSent   int
	roundLost   int
	roundMinRTT time.Duration
	roundStart  time.Time
	roundFrom   int64 // delivered count at roundStart
	queued      bool  // the last round trip showed a standing queue

	// Random loss, measured on low-gain transmissions.
	lossCur, lossPrev lossCount
	lossRate          float64

	// Congestion response: a rate cap below the model (0: none).
	bwLo     float64
	cutAt    time.Time
	cutRound uint64
	cuts     uint64

	// Acknowledgement aggregation: data acked beyond the estimated rate
	// since aggStart, and its per-round maxima.
	aggStart   time.Time
	aggAcked   int64
	extraSlots [bwRounds]int64
	extraAcked int64
}

func newBBR(mss, initCwndSegs int) *bbr {
	return &bbr{mss: mss, initCwnd: initCwndSegs * mss, pacingGain: startupGain, cwndGain: startupGain}
}

// onSend counts a transmission towards this round's loss fraction and
// reports whether it goes out below the estimate (a low-gain one, which
// measures random loss when it is resolved).
func (b *bbr) onSend() (lowGain bool) {
	b.roundSent++
	return b.pacingGain <= lowGainMax
}

// onLost counts a segment declared lost.
func (b *bbr) onLost() { b.roundLost++ }

// onResolved counts a low-gain transmission delivered or lost.
func (b *bbr) onResolved(lost bool) {
	b.lossCur.n++
	if lost {
		b.lossCur.lost++
	}
	if b.lossCur.n >= lossWindow {
		b.lossPrev, b.lossCur = b.lossCur, lossCount{}
	}
	if n := b.lossCur.n + b.lossPrev.n; n >= lossMinResolved {
		b.lossRate = float64(b.lossCur.lost+b.lossPrev.lost) / float64(n)
	}
}

// onRTO reacts to a retransmission timeout: the path may be gone, so only
// one segment probes it until an acknowledgement shows it is back.
func (b *bbr) onRTO() { b.rtoCapped = true }

// bw is the rate the model allows: the estimate, or the congestion cap
// below it.
func (b *bbr) bw() float64 {
	if b.bwLo > 0 && b.bwLo < b.btlBw {
		return b.bwLo
	}
	return b.btlBw
}

// onAck updates the model from one acknowledgement that delivered data.
func (b *bbr) onAck(now time.Time, rs rateSample, delivered int64, inflight int, minRTT time.Duration) {
	b.rtoCapped = false
	if rs.rtt > 0 && (b.roundMinRTT == 0 || rs.rtt < b.roundMinRTT) {
		b.roundMinRTT = rs.rtt
	}
	if rs.priorDelivered >= b.nextRound {
		b.endRound(now, delivered, minRTT)
		b.roundStart, b.roundFrom = now, delivered
		b.nextRound = delivered
		b.round++
		b.slots[b.round%bwRounds] = 0
		b.extraSlots[b.round%bwRounds] = 0
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
			if b.mode != modeStartup {
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
	b.aggregate(now, rs.acked)
	switch b.mode {
	case modeDrain:
		if inflight <= b.bdp(minRTT) {
			b.enterProbeBW(now)
		}
	case modeProbeBW:
		if minRTT > 0 && now.Sub(b.cycleStamp) > minRTT {
			b.cycleIdx = (b.cycleIdx + 1) % probePhases
			b.cycleStamp = now
			b.pacingGain = b.phaseGain()
		}
	}
}

// phaseGain is the current phase's pacing gain. Under a congestion cap the
// flow does not probe above it; cruising while the last round trip still
// showed a standing queue, it drains a little: an estimate a few percent
// above the bottleneck (the maximum of noisy, loss-compensated samples)
// would otherwise build a queue round by round until it overflowed.
func (b *bbr) phaseGain() float64 {
	g := probeGain(b.cycleIdx)
	switch {
	case g > 1 && b.bwLo > 0:
		return 1
	case g == 1 && b.queued:
		return cruiseDrainGain
	}
	return g
}

// endRound judges the round trip that just ended: was it congested?
func (b *bbr) endRound(now time.Time, delivered int64, minRTT time.Duration) {
	sent, lost := b.roundSent, b.roundLost
	b.roundSent, b.roundLost = 0, 0
	b.queued = queued(b.roundMinRTT, minRTT)
	b.roundMinRTT = 0
	congested := b.queued && excessLoss(lost, sent, b.lossRate)
	defer func() {
		if b.mode == modeProbeBW {
			b.pacingGain = b.phaseGain()
		}
	}()
	switch {
	case congested && b.mode == modeStartup:
		// The queue the startup built overflowed: the pipe is full.
		b.enterDrain()
	case congested && b.mode == modeProbeBW && (b.cuts == 0 || b.round > b.cutRound+1):
		// Segments of the round after a cut were mostly sent before it:
		// their losses are the same episode.
		b.bwLo = b.bw() * congestionBeta
		if d := now.Sub(b.roundStart); !b.roundStart.IsZero() && d > 0 {
			// Not above what the round delivered, either: when the
			// bottleneck's rate fell, the queue says so long before the
			// estimate forgets the old rate.
			b.bwLo = min(b.bwLo, float64(delivered-b.roundFrom)/d.Seconds()/(1-min(b.lossRate, maxCompensated)))
		}
		if minRTT > 0 {
			b.bwLo = max(b.bwLo, float64(minCwndSegs*b.mss)/minRTT.Seconds())
		}
		b.cutAt, b.cutRound = now, b.round
		b.cuts++
	case congested:
	case b.bwLo > 0:
		if now.Sub(b.cutAt) > bwLoHold {
			b.bwLo = 0
		} else if minRTT > 0 {
			b.bwLo += congestionAI * float64(b.mss) / minRTT.Seconds()
			if b.bwLo >= b.btlBw {
				b.bwLo = 0
			}
		}
	}
}

// aggregate tracks how far acknowledgements run ahead of the estimated
// rate (a receiver that is scheduled late acks in bursts), so the window
// can cover the data they hold back (BBR's extra_acked).
func (b *bbr) aggregate(now time.Time, acked int64) {
	bw := b.bw()
	if bw == 0 || acked <= 0 {
		return
	}
	expected := int64(bw * now.Sub(b.aggStart).Seconds())
	if b.aggStart.IsZero() || b.aggAcked <= expected {
		b.aggStart, b.aggAcked = now, 0
		expected = 0
	}
	b.aggAcked += acked
	extra := min(b.aggAcked-expected, int64(bw*maxExtraAcked.Seconds()))
	s := &b.extraSlots[b.round%bwRounds]
	*s = max(*s, extra)
	b.extraAcked = 0
	for _, v := range b.extraSlots {
		b.extraAcked = max(b.extraAcked, v)
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
		b.enterDrain()
	}
}

func (b *bbr) enterDrain() {
	b.mode = modeDrain
	b.pacingGain, b.cwndGain = 1/startupGain, startupGain
}

func (b *bbr) enterProbeBW(now time.Time) {
	b.mode = modeProbeBW
	b.cwndGain = probeCwndGain
	// Start cruising rather than draining: the drain phase just emptied
	// the queue (BBR picks a random phase other than 0.75).
	b.cycleIdx, b.cycleStamp = 2, now
	b.pacingGain = b.phaseGain()
}

func (b *bbr) bdp(minRTT time.Duration) int {
	if b.bw() == 0 || minRTT == 0 {
		return b.initCwnd
	}
	return int(b.bw() * minRTT.Seconds())
}

// cwnd is how many bytes may be in flight: the gain times the
// bandwidth-delay product on the minimum RTT, so a standing queue never
// grows past one BDP whatever the RTT does, plus the largest burst of
// bunched acknowledgements lately, so a receiver scheduled late (a busy
// collector, DTLS on a slow core) does not stall the sender.
func (b *bbr) cwnd(minRTT time.Duration) int {
	if b.rtoCapped {
		return b.mss
	}
	if b.bw() == 0 || minRTT == 0 {
		return b.initCwnd
	}
	// The segments a receiver waits for before it acks (ackEvery), and
	// one more, cover delayed acknowledgements.
	w := int(b.cwndGain*float64(b.bdp(minRTT))) + int(b.extraAcked) + (ackEvery+1)*b.mss
	if b.mode == modeStartup {
		w = max(w, b.initCwnd)
	}
	return max(w, minCwndSegs*b.mss)
}

// pacingRate is the send rate in bytes/s; 0 means unpaced (nothing measured yet).
//
// In startup it is never below the initial window's rate (as Linux's BBR
// never lowers the pacing rate before the pipe is found full): a session's
// first samples come from a short exchange (the uplink's Hello and
// Welcome), a few hundred bytes over a round trip, and pacing the first
// batch at a gain over that would leave it doubling its way up for several
// round trips (TestSimFirstBatchAfterHello: 4.4 round trips for 64 KB at
// 40 ms without the floor, 2.5 with it).
func (b *bbr) pacingRate(srtt time.Duration) float64 {
	var initial float64
	if srtt > 0 {
		initial = b.pacingGain * float64(b.initCwnd) / srtt.Seconds()
	}
	bw := b.bw()
	switch {
	case bw > 0 && b.mode == modeStartup:
		return max(b.pacingGain*bw, initial)
	case bw > 0:
		return b.pacingGain * bw
	}
	return initial
}
