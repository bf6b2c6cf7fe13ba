package ptp

import (
	"sync/atomic"
	"time"

	"github.com/weirgw/weir/event"
)

// Status is everything known about the clock, as `weir ptp` and the admin
// socket's /v1/ptp show it. Records carry only its Quality part.
type Status struct {
	Mode         Mode   `json:"mode"`
	Source       string `json:"source"`
	State        string `json:"state"`
	ErrorBoundNS int64  `json:"error_bound_ns"` // negative: unknown
	// Grandmaster is the clock identity of the grandmaster in the
	// "001122.fffe.334455" form ptp4l's pmc prints; empty when none is known.
	Grandmaster        string    `json:"grandmaster,omitempty"`
	GrandmasterPresent bool      `json:"grandmaster_present"`
	PortState          string    `json:"port_state,omitempty"`
	OffsetNS           int64     `json:"offset_ns"`     // last offset from the master
	PathDelayNS        int64     `json:"path_delay_ns"` // last mean path delay
	LastSync           time.Time `json:"last_sync,omitzero"`
	Error              string    `json:"error,omitempty"` // last failure to learn the state

	// Built-in slave only.
	// CorrectionNS is what the disciplined software clock adds to the
	// local oscillator now; FrequencyPPB its frequency correction.
	CorrectionNS int64   `json:"correction_ns,omitempty"`
	FrequencyPPB float64 `json:"frequency_ppb,omitempty"`
	Timestamping string  `json:"timestamping,omitempty"` // hardware, software or user
	Servo        string  `json:"servo,omitempty"`        // the PI servo's state
	// Messages counts what the slave received, by verdict: malformed and
	// ignored messages are counted here and otherwise dropped. The
	// built-in slave adds its servo's verdicts on the offsets: "spike"
	// (one skipped) and "servo_reset" (its spike filter gave up after 15
	// in a row and the servo started over).
	Messages map[string]uint64 `json:"messages,omitempty"`

	// linuxptp only: the grandmaster's time properties, from the local
	// ptp4l's TIME_PROPERTIES_DATA_SET; all zero until UTCOffsetKnown.
	UTCOffsetKnown     bool   `json:"utc_offset_known"`
	UTCOffset          int    `json:"utc_offset"`       // TAI − UTC in s, as announced
	UTCOffsetValid     bool   `json:"utc_offset_valid"` // the grandmaster vouches for it
	Leap61             bool   `json:"leap61,omitempty"`
	Leap59             bool   `json:"leap59,omitempty"`
	PTPTimescale       bool   `json:"ptp_timescale"` // TAI; false: arbitrary (ARB)
	TimeTraceable      bool   `json:"time_traceable"`
	FrequencyTraceable bool   `json:"frequency_traceable"`
	TimeSource         string `json:"time_source,omitempty"` // GNSS, INTERNAL_OSCILLATOR, ...
	// PHC is the PTP hardware clock time is read from (clock.linuxptp.phc);
	// empty for CLOCK_REALTIME.
	PHC string `json:"phc,omitempty"`
}

// snapshot is one immutable view of the clock's synchronisation, replaced
// whole by the one goroutine that learns it and read without locks by Now.
type snapshot struct {
	status Status // State and ErrorBoundNS are evaluated at read time
	sync   Sync
}

// published holds the latest snapshot. Until the first sample it reads as
// a free-running clock of its source with an unknown bound.
type published struct {
	mode   Mode
	source event.TimeSource
	hold   HoldoverConfig
	p      atomic.Pointer[snapshot]
}

func newPublished(mode Mode, source event.TimeSource, hold HoldoverConfig) *published {
	pb := &published{mode: mode, source: source, hold: hold}
	pb.p.Store(&snapshot{
		status: Status{Mode: mode, Source: source.String()},
		sync:   Sync{State: event.ClockFreerun, Bound: -1},
	})
	return pb
}

// observe runs the holdover machine on s and publishes the result with
// st, the mode's own view (grandmaster, offset, ...). Only one goroutine
// calls it.
func (pb *published) observe(s Sample, st Status) event.ClockState {
	prev := pb.p.Load()
	next := pb.hold.Step(prev.sync, s)
	st.Mode, st.Source = pb.mode, pb.source.String()
	if !next.LastLock.IsZero() {
		st.LastSync = next.LastLock
	}
	pb.p.Store(&snapshot{status: st, sync: next})
	return next.State
}

// Now is one clock read, one atomic load and the holdover arithmetic.
func (pb *published) Now() (time.Time, event.Quality) {
	now := time.Now()
	state, bound := pb.hold.At(pb.p.Load().sync, now)
	return now, event.Quality{Source: pb.source, State: state, ErrorBound: bound}
}

// Status returns the latest snapshot evaluated now.
func (pb *published) Status() Status {
	s := pb.p.Load()
	st := s.status
	state, bound := pb.hold.At(s.sync, time.Now())
	st.State, st.ErrorBoundNS = state.String(), bound
	return st
}
