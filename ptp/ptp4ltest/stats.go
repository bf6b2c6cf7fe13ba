package ptp4ltest

import (
	"slices"
	"time"
)

// Locked is the samples at or after from with the servo locked (s2).
func Locked(samples []Sample, from time.Time) []Sample {
	var w []Sample
	for _, s := range samples {
		if s.State == "s2" && !s.At.Before(from) {
			w = append(w, s)
		}
	}
	return w
}

// AbsQuantile is the q-quantile (0 to 1, nearest rank) of |offset| over
// samples; zero when there are none.
func AbsQuantile(samples []Sample, q float64) time.Duration {
	d := make([]time.Duration, len(samples))
	for i, s := range samples {
		d[i] = s.Offset
	}
	return AbsQuantileOf(d, q)
}

// AbsQuantileOf is the q-quantile (0 to 1, nearest rank) of |d|; zero
// when d is empty. Tests comparing another slave with ptp4l use it for
// both, so both are ranked alike.
func AbsQuantileOf(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	abs := make([]time.Duration, len(d))
	for i, v := range d {
		abs[i] = v.Abs()
	}
	slices.Sort(abs)
	i := int(q*float64(len(abs))+0.5) - 1
	return abs[min(max(i, 0), len(abs)-1)]
}
