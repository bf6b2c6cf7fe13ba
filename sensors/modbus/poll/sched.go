package poll

import (
	"context"
	"time"
)

// schedClock is the scheduler's time: when polls are due, how long a
// worker waits, a busy device's back-off and the EMI windows. In the field
// it is the system's; tests use one that moves only when told, so what
// depends on time (polls made, diagnostics let through, back-off waits)
// is exact rather than a guess about a loaded machine.
type schedClock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemSched struct{}

func (systemSched) Now() time.Time                         { return time.Now() }
func (systemSched) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sleep waits d on the bus's clock; false if ctx ended first.
func (b *Bus) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-b.sched.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
