package ptp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirgw/weir/event"
)

func TestSystemClock(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	before := time.Now()
	now, q := c.Now()
	require.False(t, now.Before(before))
	require.Equal(t, event.Quality{Source: event.TimeSystem, State: event.ClockFreerun, ErrorBound: -1}, q)
	require.Equal(t, Status{Mode: ModeSystem, Source: "system", State: "freerun", ErrorBoundNS: -1}, c.Status())
}

func TestValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	_, err := New(Config{Mode: "gps"})
	require.ErrorContains(t, err, `mode: "gps" is not supported`)
}

func TestPublished(t *testing.T) {
	pb := newPublished("linuxptp", event.TimePTP, testHold)
	_, q := pb.Now()
	require.Equal(t, event.Quality{Source: event.TimePTP, State: event.ClockFreerun, ErrorBound: -1}, q)
	require.Equal(t, "freerun", pb.Status().State)

	require.Equal(t, int64(-1), pb.Status().ErrorBoundNS)
}

func BenchmarkNow(b *testing.B) {
	for _, bc := range []struct {
		name string
		c    interface {
			Now() (time.Time, event.Quality)
		}
	}{
		{"system", System{}},
		{"published", newPublished("linuxptp", event.TimePTP, testHold)},
		{"builtin", newBuiltin(Config{Mode: ModeBuiltin, Holdover: testHold, Builtin: DefaultBuiltin()}, realtime{})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.c.Now()
			}
		})
	}
}
