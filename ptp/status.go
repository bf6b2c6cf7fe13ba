package ptp

import (
	"sync/atomic"
	"time"

	"github.com/weirgw/weir/gateway/event"
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
}

// snapshot is one immutable view of the clock's synchronisation, replaced
// whole by the goroutine that learns it and read without locks by Now.
type snapshot struct {
	status  Status
	quality event.Quality
}

// published holds the latest snapshot. The zero value reads as a
// free-running clock of the given source with an unknown bound.
type published struct {
	mode   Mode
	source event.TimeSource
	p      atomic.Pointer[snapshot]
}

func newPublished(mode Mode, source event.TimeSource) *published {
	pb := &published{mode: mode, source: source}
	pb.store(&snapshot{
		status:  Status{Mode: mode, Source: source.String(), State: event.ClockFreerun.String(), ErrorBoundNS: -1},
		quality: event.Quality{Source: source, State: event.ClockFreerun, ErrorBound: -1},
	})
	return pb
}

func (pb *published) store(s *snapshot) { pb.p.Store(s) }

// Now is one clock read and one atomic load.
func (pb *published) Now() (time.Time, event.Quality) {
	now := time.Now()
	return now, pb.p.Load().quality
}

// Status returns the latest snapshot's status.
func (pb *published) Status() Status { return pb.p.Load().status }
