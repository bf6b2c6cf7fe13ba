package sender

import (
	"math"
	"time"
)

// windowGain is how many bandwidth-delay products of batches a session
// keeps in flight. One covers a clean path; under random loss every batch
// behind a lost segment waits about one and a half round trips more for
// its resend (two when the resend is lost too), so the batches sent
// meanwhile need room: three keeps the pipe full through that, and on a
// path whose queue builds, it keeps at most two products queued. Longer
// stalls (a TCP retransmission timeout) are measured and added (acked).
const windowGain = 3

// stallGain is how many times the batches the path could deliver during
// the longest stall the window holds beyond the product: once for the
// batches sent during a stall, held behind it, and once for those queued
// at the collector before it, which keep the collector busy through it.
// With the stall counted once the collector idles for most of each stall
// and then has the burst after it to drain.
const stallGain = 2

// fullRateGrowth and fullRateRounds end startup: three round trips
// without the rate growing by a quarter (BBR's full-bandwidth test).
const (
	fullRateGrowth = 1.25
	fullRateRounds = 3
)

// windowFilter is how long the delivery rate and the ack latency
// estimates remember their max and min: long enough to span a loss
// stall and a burst after it, short enough to follow a path that changed.
const windowFilter = 10 * time.Second

// initialWindow is the window a session starts with, before the first acks:
// the fixed default of earlier versions.
const initialWindow = 16

// minWindow is the least the session keeps in flight (never more than
// the configured window): on a fast local link one batch is in the
// collector's fsync, one on the way, one being cut.
const minWindow = 4

// windowSizer sizes a session's window of batches in flight to the path,
// the way BBR sizes its congestion window: gain × the highest delivery
// rate seen × the lowest ack latency seen (Data sent to Ack received,
// the collector's fsync included), plus the batches the path could have
// delivered during the longest stall seen. The min latency is the path without a
// queue, so a session whose batches queue somewhere does not grow its
// window by the queue it builds; the max rate is what the path delivered
// at best, so the window does not shrink through a loss stall. A small
// window matters to critical records, which are sent ahead of the
// backlog but queue behind the batches already written to the session.
//
// A window that covers more than the path keeps a queue at the collector,
// so no batch sees the bare path again once the first ones have: when the
// min latency is windowFilter old, the window drops to one batch until a
// batch sent alone is acked, and its latency is the new min (BBR's
// ProbeRTT). That costs about one round trip of throughput every 10 s.
type windowSizer struct {
	floor, ceil int

	delivered   uint64    // batches acked this session
	deliveredAt time.Time // when the last of them was

	// Startup, as BBR's: the first estimates come from the few batches
	// of a session's first round trips and say nothing of the path yet,
	// so until the rate stops growing the window grows by one batch per
	// batch acked (doubling each round trip) from initialWindow.
	startup    bool
	startWin   int
	roundEnd   uint64  // delivered count that ends the current round trip
	fullRate   float64 // the rate when it last grew by fullRateGrowth
	fullRounds int     // round trips since

	rate     maxFilter     // batches per second
	stall    maxFilter     // batches the path could have delivered in the longest wait for an ack
	minLat   time.Duration // 0: none yet
	minLatAt time.Time     // when it was measured
	probeAt  time.Time     // not zero: probing since then
}

func newWindowSizer(ceil int, now time.Time) *windowSizer {
	return &windowSizer{floor: min(minWindow, ceil), ceil: ceil, deliveredAt: now, startup: true, startWin: min(initialWindow, ceil)}
}

// sent returns what a batch sent now carries, to be passed back to acked.
func (w *windowSizer) sent() (delivered uint64, at time.Time) { return w.delivered, w.deliveredAt }

// acked takes the ack of one batch, sent at sent when delivered batches
// were acked, the last at deliveredAt.
func (w *windowSizer) acked(now, sent time.Time, delivered uint64, deliveredAt time.Time) {
	// A stall: no ack for a while although this batch was in flight all
	// along (sent before the last ack), as when a lost segment holds every
	// batch behind it in the ordered stream until its resend arrives. The
	// batches the path could have delivered meanwhile are what the window
	// needs beyond the product to keep sending through the next stall (BBR
	// adds its measure of ack aggregation to its window alike). Acks that
	// keep to the rate, a queue however deep among them, add nothing.
	if prev := w.deliveredAt; w.delivered > 0 && sent.Before(prev) {
		if r, ok := w.rate.get(now); ok {
			w.stall.add(now, r*now.Sub(prev).Seconds()-1)
		}
	}
	w.delivered++
	w.deliveredAt = now
	if lat := now.Sub(sent); lat > 0 {
		switch {
		case !w.probeAt.IsZero() && !sent.Before(w.probeAt):
			w.minLat, w.minLatAt, w.probeAt = lat, now, time.Time{}
		case w.minLat == 0 || lat <= w.minLat:
			w.minLat, w.minLatAt = lat, now
		}
	}
	// BBR's delivery rate sample: the batches acked between this batch's
	// send and its ack, over the time since the ack before its send (so a
	// batch sent into an idle session measures the path, not the idle).
	if iv := now.Sub(deliveredAt); iv > 0 {
		w.rate.add(now, float64(w.delivered-delivered)/iv.Seconds())
	}
	if !w.startup {
		return
	}
	w.startWin = min(w.startWin+1, w.ceil)
	// A round trip ends with the ack of the first batch sent after it
	// began; three without the rate growing by a quarter end startup.
	if delivered < w.roundEnd {
		return
	}
	w.roundEnd = w.delivered
	r, _ := w.rate.get(now)
	if r >= w.fullRate*fullRateGrowth {
		w.fullRate, w.fullRounds = r, 0
		return
	}
	if w.fullRounds++; w.fullRounds >= fullRateRounds {
		w.startup = false
	}
}

// size is the window now.
func (w *windowSizer) size(now time.Time) int {
	if w.probeAt.IsZero() && w.minLat > 0 && now.Sub(w.minLatAt) >= windowFilter {
		w.probeAt = now
	}
	if !w.probeAt.IsZero() {
		return 1
	}
	r, ok := w.rate.get(now)
	if !ok || w.minLat == 0 {
		return w.startWin
	}
	stall, _ := w.stall.get(now)
	need := windowGain*r*w.minLat.Seconds() + 1 + stallGain*max(stall, 0)
	if need >= float64(w.ceil) || math.IsNaN(need) {
		return w.ceil
	}
	n := max(w.floor, int(math.Ceil(need)))
	if w.startup {
		n = max(n, w.startWin)
	}
	return n
}

// maxFilter keeps the max of the samples of the last windowFilter, in two
// halves: the max of the current half and of the one before it.
type maxFilter struct{ f extremeFilter }

func (m *maxFilter) add(now time.Time, v float64) {
	m.f.add(now, v, func(a, b float64) bool { return a > b })
}
func (m *maxFilter) get(now time.Time) (float64, bool) {
	return m.f.get(now, func(a, b float64) bool { return a > b })
}

type extremeFilter struct {
	start           time.Time // of the current half
	cur, prev       float64
	hasCur, hasPrev bool
}

func (f *extremeFilter) roll(now time.Time) {
	const half = windowFilter / 2
	switch {
	case !f.hasCur && !f.hasPrev:
		f.start = now
	case now.Sub(f.start) >= 2*half:
		f.hasCur, f.hasPrev, f.start = false, false, now
	case now.Sub(f.start) >= half:
		f.prev, f.hasPrev = f.cur, f.hasCur
		f.hasCur, f.start = false, f.start.Add(half)
	}
}

func (f *extremeFilter) add(now time.Time, v float64, better func(a, b float64) bool) {
	f.roll(now)
	if !f.hasCur || better(v, f.cur) {
		f.cur, f.hasCur = v, true
	}
}

func (f *extremeFilter) get(now time.Time, better func(a, b float64) bool) (float64, bool) {
	f.roll(now)
	switch {
	case f.hasCur && f.hasPrev:
		if better(f.prev, f.cur) {
			return f.prev, true
		}
		return f.cur, true
	case f.hasCur:
		return f.cur, true
	case f.hasPrev:
		return f.prev, true
	}
	return 0, false
}
