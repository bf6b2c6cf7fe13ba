package ptp

import (
	"context"
	"fmt"
	"time"

	"github.com/weirgw/weir/event"
)

// Mode selects where time comes from.
type Mode string

const (
	ModeSystem   Mode = "system"
	ModeLinuxPTP Mode = "linuxptp"
	ModeBuiltin  Mode = "builtin"
)

// Clock returns the current time and its quality. Now is on every record's
// path: implementations take no lock and make no call beyond reading the
// clock. Status is for diagnosis (`weir ptp`) and may cost more.
type Clock interface {
	Now() (time.Time, event.Quality)
	Status() Status
	// Run learns the clock's state until ctx is done.
	Run(ctx context.Context) error
}

// New builds the configured clock.
func New(c Config) (Clock, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("ptp: %w", err)
	}
	switch c.Mode {
	case ModeLinuxPTP:
		return newLinuxPTP(c), nil
	case ModeBuiltin:
		return newBuiltin(c, realtime{}), nil
	}
	return System{}, nil
}

// System is CLOCK_REALTIME with nothing known about its accuracy: an NTP
// daemon may or may not be disciplining it, so Weir claims nothing.
type System struct{}

var systemQuality = event.Quality{Source: event.TimeSystem, State: event.ClockFreerun, ErrorBound: -1}

// Now reads CLOCK_REALTIME.
func (System) Now() (time.Time, event.Quality) {
	return time.Now(), systemQuality
}

// Run has nothing to learn: the system clock claims nothing.
func (System) Run(context.Context) error { return nil }

// Status says the system clock is free-running with an unknown bound.
func (System) Status() Status {
	return Status{Mode: ModeSystem, Source: "system", State: "freerun", ErrorBoundNS: -1}
}
