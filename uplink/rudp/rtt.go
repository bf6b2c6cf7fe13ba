package rudp

import "time"

// rttEstimator keeps the smoothed round-trip time and its variance and
// derives the retransmission timeout, as RFC 6298 lays out. Samples come
// from echoed timestamps, so a retransmitted segment's ack measures that
// transmission and Karn's ambiguity does not arise.
type rttEstimator struct {
	minRTO, maxRTO time.Duration

	srtt, rttvar time.Duration
	latest       time.Duration // most recent sample
	minRTT       time.Duration // lowest sample over the last minRTTWindow (at least half of it)
	// The minimum is kept in two halves of the window: minCur since
	// minCurAt, and minPrev over the half before.
	minCur, minPrev time.Duration
	minCurAt        time.Time
	backoff         uint // consecutive timeouts; doubles the timeout each
	sampled         bool
}

// initialRTO is RFC 6298's value before the first sample (2.1: 1 s).
const initialRTO = time.Second

// minRTTWindow is how long a minimum RTT stands, so a path that got longer
// is noticed (BBR uses 10 s). It is the lowest of the samples over the
// window, not the first after it: a sample taken behind a queue would
// otherwise become the path's delay, and the window on it would keep the
// queue standing.
const minRTTWindow = 10 * time.Second

// clockGranularity is the G of RFC 6298: the timestamp clock ticks in
// microseconds, but timers fire no finer than about a millisecond.
const clockGranularity = time.Millisecond

func newRTTEstimator(minRTO, maxRTO time.Duration) rttEstimator {
	return rttEstimator{minRTO: minRTO, maxRTO: maxRTO}
}

// sample folds in one measurement taken at now.
func (e *rttEstimator) sample(r time.Duration, now time.Time) {
	if r <= 0 {
		r = time.Microsecond
	}
	e.latest = r
	if !e.sampled {
		e.srtt, e.rttvar, e.sampled = r, r/2, true
	} else {
		d := e.srtt - r
		if d < 0 {
			d = -d
		}
		e.rttvar = (3*e.rttvar + d) / 4
		e.srtt = (7*e.srtt + r) / 8
	}
	if e.minCurAt.IsZero() || now.Sub(e.minCurAt) > minRTTWindow/2 {
		prev := e.minCur
		if !e.minCurAt.IsZero() && now.Sub(e.minCurAt) > minRTTWindow {
			prev = 0 // its samples are older than the window
		}
		e.minPrev, e.minCur, e.minCurAt = prev, r, now
	}
	e.minCur = min(e.minCur, r)
	e.minRTT = e.minCur
	if e.minPrev > 0 {
		e.minRTT = min(e.minRTT, e.minPrev)
	}
}

// rto is the current timeout including backoff, clamped to [minRTO, maxRTO].
func (e *rttEstimator) rto() time.Duration {
	base := initialRTO
	if e.sampled {
		// MinRTO bounds the variance term rather than the sum, as Linux
		// does: a queue filling adds delay faster than RTTVAR follows, and
		// a timeout only a few ms above SRTT then fires spuriously.
		base = e.srtt + max(clockGranularity, 4*e.rttvar, e.minRTO)
	}
	base = min(base, e.maxRTO)
	for i := uint(0); i < e.backoff && base < e.maxRTO; i++ {
		base *= 2
	}
	return min(base, e.maxRTO)
}

// timedOut records an expiry: the next timeout is twice as long (5.5).
func (e *rttEstimator) timedOut() {
	if e.backoff < 16 {
		e.backoff++
	}
}

// progressed clears the backoff once the peer is heard acknowledging again.
func (e *rttEstimator) progressed() { e.backoff = 0 }
