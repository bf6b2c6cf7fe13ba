package ptp

import (
	"time"

	"github.com/weirgw/weir/event"
)

// Sample is one observation of the synchronisation, as a mode learns it.
type Sample struct {
	At time.Time // when it was observed; carries a monotonic reading
	// Synced: a grandmaster is present and the local port follows it
	// (ptp4l's SLAVE state), so Offset is meaningful.
	Synced bool
	Offset time.Duration // from the master
	// Bound is the error bound, in ns, this sample alone justifies.
	Bound int64
}

// Sync is the state of the holdover machine: a value, replaced by Step.
type Sync struct {
	State event.ClockState
	// Bound is the error bound at LastLock, in ns.
	Bound    int64
	LastLock time.Time // the last locked sample; zero if never
}

// Step is the transition on one sample: a synced sample within the offset
// threshold locks; anything else moves locked to holdover, and holdover to
// freerun once Limit has passed since the last locked sample.
func (h HoldoverConfig) Step(prev Sync, s Sample) Sync {
	if s.Synced && s.Offset.Abs() <= h.OffsetThreshold {
		return Sync{State: event.ClockLocked, Bound: s.Bound, LastLock: s.At}
	}
	switch prev.State {
	case event.ClockLocked, event.ClockHoldover:
		if s.At.Sub(prev.LastLock) > h.Limit {
			return Sync{State: event.ClockFreerun, Bound: -1, LastLock: prev.LastLock}
		}
		return Sync{State: event.ClockHoldover, Bound: prev.Bound, LastLock: prev.LastLock}
	}
	return Sync{State: event.ClockFreerun, Bound: -1, LastLock: prev.LastLock}
}

// At evaluates s at time now without changing it: the bound grows from the
// last locked one by the time elapsed since × the frequency uncertainty,
// in holdover as between locked samples, and holdover past Limit reads as
// freerun with an unknown bound. Pure arithmetic: Now calls it per record.
func (h HoldoverConfig) At(s Sync, now time.Time) (event.ClockState, int64) {
	switch s.State {
	case event.ClockLocked, event.ClockHoldover:
		elapsed := now.Sub(s.LastLock)
		if elapsed < 0 {
			elapsed = 0
		}
		if s.State == event.ClockHoldover && elapsed > h.Limit {
			return event.ClockFreerun, -1
		}
		return s.State, s.Bound + int64(float64(elapsed)*h.FrequencyUncertaintyPPB/1e9)
	}
	return event.ClockFreerun, -1
}
