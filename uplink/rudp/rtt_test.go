package rudp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRTTEstimator(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		samples  []time.Duration
		timeouts int
		srtt     time.Duration
		rttvar   time.Duration
		rto      time.Duration
	}{
		{name: "no sample", rto: time.Second},
		{name: "first sample", samples: []time.Duration{100 * ms}, srtt: 100 * ms, rttvar: 50 * ms, rto: 300 * ms},
		// 7/8*100+1/8*200 = 112.5; 3/4*50 + 1/4*100 = 62.5; rto = 112.5+250
		{name: "second sample", samples: []time.Duration{100 * ms, 200 * ms}, srtt: 112500 * time.Microsecond, rttvar: 62500 * time.Microsecond, rto: 362500 * time.Microsecond},
		{name: "steady", samples: []time.Duration{50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms}, srtt: 50 * ms, rttvar: 105705 * time.Nanosecond, rto: 250 * ms},
		{name: "min clamp", samples: []time.Duration{time.Millisecond}, srtt: ms, rttvar: ms / 2, rto: 201 * ms},
		{name: "max clamp", samples: []time.Duration{5 * time.Second}, srtt: 5 * time.Second, rttvar: 2500 * ms, rto: 4 * time.Second},
		{name: "backoff doubles", samples: []time.Duration{100 * ms}, timeouts: 2, srtt: 100 * ms, rttvar: 50 * ms, rto: 1200 * ms},
		{name: "backoff capped", samples: []time.Duration{100 * ms}, timeouts: 10, srtt: 100 * ms, rttvar: 50 * ms, rto: 4 * time.Second},
		{name: "backoff before sample", timeouts: 1, rto: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRTTEstimator(200*ms, 4*time.Second)
			now := time.Unix(0, 0)
			for _, s := range tt.samples {
				e.sample(s, now)
			}
			for i := 0; i < tt.timeouts; i++ {
				e.timedOut()
			}
			require.Equal(t, tt.srtt, e.srtt, "srtt")
			require.InDelta(t, tt.rttvar, e.rttvar, float64(time.Microsecond), "rttvar")
			require.InDelta(t, tt.rto, e.rto(), float64(time.Microsecond), "rto")
			e.progressed()
			require.LessOrEqual(t, e.rto(), max(tt.rto, time.Second))
		})
	}
}

func TestMinRTTWindow(t *testing.T) {
	e := newRTTEstimator(200*time.Millisecond, 4*time.Second)
	t0 := time.Unix(0, 0)
	e.sample(10*time.Millisecond, t0)
	e.sample(30*time.Millisecond, t0.Add(time.Second))
	require.Equal(t, 10*time.Millisecond, e.minRTT)
	// The path got longer: after the window a higher sample takes over.
	e.sample(30*time.Millisecond, t0.Add(minRTTWindow+time.Second))
	require.Equal(t, 30*time.Millisecond, e.minRTT)
}
