package board

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPatternLit(t *testing.T) {
	ms := time.Millisecond
	for _, tt := range []struct {
		p       Pattern
		elapsed time.Duration
		lit     bool
		next    time.Duration
	}{
		{Off, 0, false, 0},
		{On, time.Hour, true, 0},
		{Slow, 0, true, 500 * ms},
		{Slow, 499 * ms, true, ms},
		{Slow, 500 * ms, false, 500 * ms},
		{Slow, 1200 * ms, true, 300 * ms},
		{Fast, 0, true, 125 * ms},
		{Fast, 130 * ms, false, 120 * ms},
		{Fast, 250 * ms, true, 125 * ms},
	} {
		lit, next := tt.p.lit(tt.elapsed)
		require.Equal(t, tt.lit, lit, "%s at %s", tt.p, tt.elapsed)
		require.Equal(t, tt.next, next, "%s at %s", tt.p, tt.elapsed)
	}
	var p Pattern
	require.NoError(t, p.UnmarshalText([]byte("fast")))
	require.Equal(t, Fast, p)
	require.Error(t, p.UnmarshalText([]byte("strobe")))
}
