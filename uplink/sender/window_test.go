package sender

import (
	"math/rand/v2"
	"testing"
	"time"
)

// pathSim is a session draining a backlog over a path, on a simulated
// clock: batches go out as the window allows, cross the path in rtt, wait
// their turn at a collector that takes proc for each (its fsync), and are
// acked in order. A stalled batch (a lost segment resent) arrives stall
// later, and holds every batch behind it, as the ordered stream does.
type pathSim struct {
	rtt, proc, stall time.Duration
	lossP            float64 // chance a batch has a lost segment
	ceil             int
	seed             uint64
}

// run drains for d and returns batches acked per second and the window at
// the last ack outside a probe of the latency.
func (p pathSim) run(d time.Duration) (rate float64, window int) {
	rng := rand.New(rand.NewPCG(p.seed, 1))
	start := time.Unix(1_700_000_000, 0)
	now := start
	ws := newWindowSizer(p.ceil, now)
	type batch struct {
		f       inflight
		ackAt   time.Time
		arrived time.Time
	}
	var (
		flight      []batch
		lastArrival time.Time // the ordered stream: none arrives before the one ahead of it
		freeAt      = start   // the collector's next free moment
		acked       int
	)
	for now.Sub(start) < d {
		for len(flight) < ws.size(now) {
			f := inflight{sent: now}
			f.delivered, f.deliveredAt = ws.sent()
			arr := now.Add(p.rtt / 2)
			if rng.Float64() < p.lossP {
				arr = arr.Add(p.stall)
			}
			arr = later(arr, lastArrival)
			lastArrival = arr
			done := later(arr, freeAt).Add(p.proc)
			freeAt = done
			flight = append(flight, batch{f: f, arrived: arr, ackAt: done.Add(p.rtt / 2)})
		}
		b := flight[0]
		flight = flight[1:]
		now = later(now, b.ackAt)
		ws.acked(now, b.f.sent, b.f.delivered, b.f.deliveredAt)
		acked++
		if w := ws.size(now); w > 1 {
			window = w
		}
	}
	return float64(acked) / now.Sub(start).Seconds(), window
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func TestWindowSizer(t *testing.T) {
	const ceil = 64
	for _, c := range []struct {
		name     string
		path     pathSim
		min, max int     // window at the end
		minShare float64 // of the collector's capacity (1/proc) delivered
	}{
		// A near collector: the fsync is the path; few batches cover it.
		{"local", pathSim{rtt: 200 * time.Microsecond, proc: 8 * time.Millisecond}, minWindow, 6, 0.95},
		// 40 ms round trip, 8 ms a batch: about 6 batches are the
		// bandwidth-delay product, and three of them are kept. The batches
		// beyond one product queue at the collector, which raises the ack
		// latency: a window sized by the mean latency would grow by its
		// own queue to the ceiling.
		{"far", pathSim{rtt: 40 * time.Millisecond, proc: 8 * time.Millisecond}, 15, 22, 0.95},
		// Every second batch waits a resend (60 ms): the window the
		// clean path gets keeps the collector busy through the stalls.
		{"far lossy", pathSim{rtt: 40 * time.Millisecond, proc: 8 * time.Millisecond, stall: 60 * time.Millisecond, lossP: 0.5}, 15, 30, 0.9},
		// A resend that waits out TCP's retransmission timeout (200 ms
		// at least) stalls the stream for five round trips: the batches
		// acked in a burst after it size the window up by the stall.
		{"far, long stalls", pathSim{rtt: 40 * time.Millisecond, proc: 8 * time.Millisecond, stall: 250 * time.Millisecond, lossP: 0.2}, 30, ceil, 0.85},
		// 100 ms round trip: the product exceeds the ceiling.
		{"very far", pathSim{rtt: 100 * time.Millisecond, proc: 2 * time.Millisecond}, ceil, ceil, 0.95},
		// A slow link (a batch takes 0.5 s to cross): the window falls to
		// its floor, so a critical record waits behind few batches.
		{"slow link", pathSim{rtt: 60 * time.Millisecond, proc: 500 * time.Millisecond}, minWindow, minWindow + 1, 0.95},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.path.ceil, c.path.seed = ceil, 7
			rate, w := c.path.run(60 * time.Second)
			t.Logf("window %d, %.1f batches/s", w, rate)
			if w < c.min || w > c.max {
				t.Errorf("window %d, want %d..%d", w, c.min, c.max)
			}
			if share := rate * c.path.proc.Seconds(); share < c.minShare {
				t.Errorf("delivered %.1f batches/s, %.2f of the collector's capacity, want at least %.2f (window %d)",
					rate, share, c.minShare, w)
			}
		})
	}
}

// TestWindowSizerFixedIsWorseUnderLoss: the check that the sizing is what
// keeps the lossy far path going: a fixed window of 16 (the old default)
// loses a good part of the rate there.
func TestWindowSizerFixedIsWorseUnderLoss(t *testing.T) {
	p := pathSim{rtt: 40 * time.Millisecond, proc: 8 * time.Millisecond, stall: 60 * time.Millisecond, lossP: 0.5, seed: 7}
	p.ceil = 64
	sized, _ := p.run(60 * time.Second)
	p.ceil = 8 // below the product: the sim's fixed-window baseline
	fixed, _ := p.run(60 * time.Second)
	if fixed >= 0.9*sized {
		t.Errorf("a fixed window of 8 delivered %.1f batches/s, the sized one %.1f: the sim does not show the stall", fixed, sized)
	}
}

func TestExtremeFilterExpires(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var m maxFilter
	if _, ok := m.get(now); ok {
		t.Fatal("empty filter has a value")
	}
	m.add(now, 10)
	m.add(now.Add(time.Second), 3)
	if v, _ := m.get(now.Add(2 * time.Second)); v != 10 {
		t.Fatalf("max %v, want 10", v)
	}
	m.add(now.Add(6*time.Second), 4) // a new half: 10 is in the one before
	if v, _ := m.get(now.Add(6 * time.Second)); v != 10 {
		t.Fatalf("max %v one half on, want 10", v)
	}
	if v, _ := m.get(now.Add(11 * time.Second)); v != 4 {
		t.Fatalf("max %v two halves on, want 4", v)
	}
	if _, ok := m.get(now.Add(30 * time.Second)); ok {
		t.Fatal("a filter with nothing in 10 s still has a value")
	}
}

// TestWindowSizerStartup: a session that starts with a backlog (the
// collector returned) reaches the path's rate within its first second.
// The first acks come from the few batches of the first round trips and
// understate the rate; sized from them alone, the window fell to its
// floor and took seconds to climb back.
func TestWindowSizerStartup(t *testing.T) {
	for _, c := range []struct {
		name     string
		path     pathSim
		minShare float64
	}{
		{"far", pathSim{rtt: 40 * time.Millisecond, proc: 8 * time.Millisecond}, 0.85},
		{"far lossy", pathSim{rtt: 40 * time.Millisecond, proc: 8 * time.Millisecond, stall: 60 * time.Millisecond, lossP: 0.5}, 0.8},
		{"far, long stalls", pathSim{rtt: 40 * time.Millisecond, proc: 8 * time.Millisecond, stall: 250 * time.Millisecond, lossP: 0.2}, 0.7},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.path.ceil, c.path.seed = 64, 7
			rate, w := c.path.run(time.Second)
			share := rate * c.path.proc.Seconds()
			t.Logf("first second: %.2f of the collector's capacity, window %d", share, w)
			if share < c.minShare {
				t.Errorf("first second delivered %.2f of the collector's capacity, want at least %.2f (window %d)", share, c.minShare, w)
			}
		})
	}
}
