package ptp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirgw/weir/gateway/event"
)

func TestSystemClock(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	before := time.Now()
	now, q := c.Now()
	require.False(t, now.Before(before))
	require.Equal(t, event.Quality{Source: event.TimeSystem, State: event.ClockFreerun, ErrorBound: -1}, q)
}

func TestValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	_, err := New(Config{Mode: "gps"})
	require.ErrorContains(t, err, `mode: "gps" is not supported`)
}
