package ptp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirgw/weir/event"
)

var testHold = HoldoverConfig{OffsetThreshold: time.Millisecond, FrequencyUncertaintyPPB: 1000, Limit: time.Minute}

func TestHoldoverStep(t *testing.T) {
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	locked := Sync{State: event.ClockLocked, Bound: 2000, LastLock: t0}
	holdover := Sync{State: event.ClockHoldover, Bound: 2000, LastLock: t0}
	freerun := Sync{State: event.ClockFreerun, Bound: -1}
	for name, tc := range map[string]struct {
		prev Sync
		s    Sample
		want Sync
	}{
		"freerun locks on a good sample":        {freerun, Sample{At: at(time.Second), Synced: true, Offset: 500 * time.Microsecond, Bound: 700}, Sync{event.ClockLocked, 700, at(time.Second)}},
		"negative offset within threshold":      {freerun, Sample{At: at(time.Second), Synced: true, Offset: -time.Millisecond, Bound: 1e6}, Sync{event.ClockLocked, 1e6, at(time.Second)}},
		"freerun stays without master":          {freerun, Sample{At: at(time.Second)}, freerun},
		"freerun stays beyond threshold":        {freerun, Sample{At: at(time.Second), Synced: true, Offset: 2 * time.Millisecond}, freerun},
		"locked refreshes":                      {locked, Sample{At: at(time.Second), Synced: true, Offset: time.Microsecond, Bound: 1500}, Sync{event.ClockLocked, 1500, at(time.Second)}},
		"locked to holdover on master lost":     {locked, Sample{At: at(time.Second)}, holdover},
		"locked to holdover on offset":          {locked, Sample{At: at(time.Second), Synced: true, Offset: -1001 * time.Microsecond}, holdover},
		"locked straight to freerun past limit": {locked, Sample{At: at(2 * time.Minute)}, Sync{event.ClockFreerun, -1, t0}},
		"holdover stays within limit":           {holdover, Sample{At: at(time.Minute)}, holdover},
		"holdover to freerun past limit":        {holdover, Sample{At: at(time.Minute + 1)}, Sync{event.ClockFreerun, -1, t0}},
		"holdover relocks":                      {holdover, Sample{At: at(30 * time.Second), Synced: true, Bound: 900}, Sync{event.ClockLocked, 900, at(30 * time.Second)}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, testHold.Step(tc.prev, tc.s))
		})
	}
}

func TestHoldoverAt(t *testing.T) {
	t0 := time.Now()
	for name, tc := range map[string]struct {
		s         Sync
		after     time.Duration
		wantState event.ClockState
		wantBound int64
	}{
		"locked at the sample":         {Sync{event.ClockLocked, 2000, t0}, 0, event.ClockLocked, 2000},
		"locked grows between samples": {Sync{event.ClockLocked, 2000, t0}, time.Second, event.ClockLocked, 3000},
		"holdover grows 1 ppm":         {Sync{event.ClockHoldover, 2000, t0}, 30 * time.Second, event.ClockHoldover, 32000},
		"holdover at the limit":        {Sync{event.ClockHoldover, 2000, t0}, time.Minute, event.ClockHoldover, 62000},
		"holdover past the limit":      {Sync{event.ClockHoldover, 2000, t0}, time.Minute + 1, event.ClockFreerun, -1},
		"freerun is unknown":           {Sync{event.ClockFreerun, -1, t0}, time.Second, event.ClockFreerun, -1},
		"clock behind the sample":      {Sync{event.ClockLocked, 2000, t0}, -time.Second, event.ClockLocked, 2000},
	} {
		t.Run(name, func(t *testing.T) {
			state, bound := testHold.At(tc.s, t0.Add(tc.after))
			require.Equal(t, tc.wantState, state)
			require.Equal(t, tc.wantBound, bound)
		})
	}
}

func TestValidateKeys(t *testing.T) {
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"default":                 {func(*Config) {}, ""},
		"zero threshold":          {func(c *Config) { c.Holdover.OffsetThreshold = 0 }, "holdover.offset_threshold: 0s must be positive"},
		"zero ppb":                {func(c *Config) { c.Holdover.FrequencyUncertaintyPPB = 0 }, "holdover.frequency_uncertainty_ppb: 0 must be in"},
		"huge ppb":                {func(c *Config) { c.Holdover.FrequencyUncertaintyPPB = 2e6 }, "holdover.frequency_uncertainty_ppb: 2e+06 must be in"},
		"negative limit":          {func(c *Config) { c.Holdover.Limit = -time.Second }, "holdover.limit: -1s must not be negative"},
		"zero limit is fine":      {func(c *Config) { c.Holdover.Limit = 0 }, ""},
		"bad mode":                {func(c *Config) { c.Mode = "gps" }, `mode: "gps" is not supported`},
		"linuxptp default":        {func(c *Config) { c.Mode = ModeLinuxPTP }, ""},
		"linuxptp no socket":      {func(c *Config) { c.Mode, c.LinuxPTP.Socket = ModeLinuxPTP, "" }, "linuxptp.socket: required"},
		"linuxptp fast poll":      {func(c *Config) { c.Mode, c.LinuxPTP.PollInterval = ModeLinuxPTP, time.Millisecond }, "linuxptp.poll_interval: 1ms is below 10ms"},
		"system ignores linuxptp": {func(c *Config) { c.LinuxPTP.Socket = "" }, ""},
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestPublishedHoldover(t *testing.T) {
	pb := newPublished("linuxptp", event.TimePTP, HoldoverConfig{OffsetThreshold: time.Millisecond, FrequencyUncertaintyPPB: 1e6, Limit: time.Hour})
	now := time.Now()
	require.Equal(t, event.ClockLocked, pb.observe(Sample{At: now, Synced: true, Bound: 100}, Status{Grandmaster: "gm", OffsetNS: 5}))
	st := pb.Status()
	require.Equal(t, "locked", st.State)
	require.Equal(t, "gm", st.Grandmaster)
	require.Equal(t, now, st.LastSync)
	require.Equal(t, event.ClockHoldover, pb.observe(Sample{At: now.Add(time.Millisecond)}, Status{}))
	time.Sleep(2 * time.Millisecond)
	_, q := pb.Now()
	require.Equal(t, event.ClockHoldover, q.State)
	// 1e6 ppb (0.1 %) over at least 2 ms since the lock: at least 2 µs more.
	require.GreaterOrEqual(t, q.ErrorBound, int64(100+2000))
	require.Equal(t, now, pb.Status().LastSync)
}
