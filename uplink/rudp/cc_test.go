package rudp

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ccSim drives the controller with a round-by-round model of a path of
// capacity rate bytes/s, base round-trip time rtt and a drop-tail queue
// of one BDP, losing each segment at random with probability loss before
// the queue, for rounds round trips. It returns the controller and the
// link's utilisation over the second half of the run.
func ccSim(t *testing.T, rate float64, rtt time.Duration, loss float64, rounds int) (*bbr, float64) {
	t.Helper()
	const mss = 1136
	b := newBBR(mss, 16)
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(1000, 0)
	capacity := int(rate * rtt.Seconds()) // bytes served per round
	qmax := capacity
	queue := 0
	var delivered, half int64
	for i := 0; i < rounds; i++ {
		if i == rounds/2 {
			half = delivered
		}
		sendable := b.cwnd(rtt, rtt)
		if pr := b.pacingRate(rtt); pr > 0 {
			sendable = min(sendable, int(pr*rtt.Seconds()))
		}
		arrived := 0
		for k := 0; k < sendable/mss; k++ {
			b.onSend()
			if r.Float64() < loss {
				b.onLost()
				continue
			}
			if queue+arrived+mss > capacity+qmax {
				b.onLost() // the queue overflows
				continue
			}
			arrived += mss
		}
		served := min(queue+arrived, capacity)
		queue = queue + arrived - served
		prior := delivered
		delivered += int64(served)
		now = now.Add(rtt)
		sample := rtt + time.Duration(float64(queue)/rate*1e9)
		b.onAck(now, rateSample{delivered: int64(served), interval: rtt, priorDelivered: prior, rtt: sample}, delivered, queue, rtt)
	}
	return b, float64(delivered-half) / float64(capacity*(rounds-rounds/2))
}

func TestCongestionControl(t *testing.T) {
	const rate = 10e6 // bytes/s
	rtt := 20 * time.Millisecond
	bdp := rate * rtt.Seconds()
	tests := []struct {
		name    string
		loss    float64
		minUtil float64 // link utilisation in steady state
		minCwnd float64 // of the BDP
		maxUtil float64
	}{
		{name: "lossless", loss: 0, minUtil: 0.9, minCwnd: 1.5, maxUtil: 1},
		// Random loss costs only the lost fraction, where AIMD would have
		// collapsed to a few segments.
		{name: "10% random loss", loss: 0.10, minUtil: 0.85, minCwnd: 1.5, maxUtil: 1},
		{name: "30% random loss", loss: 0.30, minUtil: 0.7, minCwnd: 1.5, maxUtil: 1},
		// Beyond maxCompensated, loss is taken for congestion and the
		// sender backs off.
		{name: "70% loss", loss: 0.70, maxUtil: 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, util := ccSim(t, rate, rtt, tt.loss, 300)
			t.Logf("utilisation %.2f bw %.0f cwnd %d mode %s cuts %d", util, b.btlBw, b.cwnd(rtt, rtt), b.mode, b.lossCuts)
			require.GreaterOrEqual(t, util, tt.minUtil)
			require.LessOrEqual(t, util, tt.maxUtil)
			require.GreaterOrEqual(t, float64(b.cwnd(rtt, rtt)), tt.minCwnd*bdp)
			require.Equal(t, "probe_bw", b.mode.String())
			// A rare round where random loss and a probe's overflow
			// coincide may cut once or twice; noise must not spiral.
			require.LessOrEqual(t, b.lossCuts, uint64(2))
		})
	}
}

func TestCongestionHeavyLossGuard(t *testing.T) {
	rtt := 20 * time.Millisecond
	now := time.Unix(1, 0)
	b := newBBR(1000, 10)
	b.enterProbeBW(now)
	b.slots[0], b.btlBw = 1e6, 1e6
	round := func(sent, lost int) {
		for i := 0; i < sent; i++ {
			b.onSend()
		}
		for i := 0; i < lost; i++ {
			b.onLost()
		}
		now = now.Add(rtt)
		b.onAck(now, rateSample{priorDelivered: b.nextRound}, b.nextRound+1, 0, rtt)
	}
	round(40, 10) // 25 %: noise
	require.Zero(t, b.lossCuts)
	round(40, 30) // 75 %: a queue overflowing
	require.EqualValues(t, 1, b.lossCuts)
	require.InDelta(t, lossBackoff*1e6, b.btlBw, 1)
	round(10, 9) // too few segments to judge
	require.EqualValues(t, 1, b.lossCuts)
}

func TestCongestionStartupAndTimeout(t *testing.T) {
	b := newBBR(1000, 10)
	require.Equal(t, 10000, b.cwnd(0, 0), "initial window before any sample")
	require.Zero(t, b.pacingRate(0), "unpaced before an RTT is known")
	require.InDelta(t, startupGain*10000/0.1, b.pacingRate(100*time.Millisecond), 1)
	b.onRTO()
	require.Equal(t, 1000, b.cwnd(0, 0), "one segment in flight after a timeout")
	b.onAck(time.Unix(1, 0), rateSample{delivered: 1000, interval: 100 * time.Millisecond}, 1000, 0, 100*time.Millisecond)
	require.Greater(t, b.cwnd(100*time.Millisecond, 100*time.Millisecond), 1000, "window restored once the path delivers")
}

// TestNoCollapseUnderLoss runs the whole engine over an emulated 10 MB/s
// path with 10 ms RTT and 10 % random loss each way. How fast is for
// BenchmarkGoodput and `make bench` to measure; this checks what must hold
// however loaded the machine is: every byte arrives in order, random loss
// is never taken for a collapsing path (the heavy-loss guard stays off),
// and retransmissions stay near the loss rather than flooding the path.
func TestNoCollapseUnderLoss(t *testing.T) {
	data := randomBytes(2<<20, 3)
	l := linkCfg{delay: 5 * time.Millisecond, rate: 10e6, queue: 20 * time.Millisecond, loss: 0.10}
	ab, ba := l, l
	ab.seed, ba.seed = 21, 22
	w, r := newConnPair(ab, ba, Options{})
	defer r.Close()
	got := transfer(t, w, r, data)
	require.True(t, bytes.Equal(data, got))
	st := w.Stats()
	t.Logf("sent %d segments, %d retransmitted (%.1f %%), %d timeouts, %d loss backoffs",
		st.SegmentsSent, st.SegmentsRetransmitted, 100*float64(st.SegmentsRetransmitted)/float64(st.SegmentsSent), st.Timeouts, st.LossBackoffs)
	require.Zero(t, st.LossBackoffs, "10 %% random loss taken for a collapsing path")
	require.Less(t, st.SegmentsRetransmitted, st.SegmentsSent/3, "retransmissions far beyond a 10 %% loss")
}
