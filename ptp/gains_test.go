package ptp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// softwareServo is a built-in slave's servo loop on a stepped clock, with
// software stamps and a qualified master.
func softwareServo(t *testing.T) (*Builtin, *slave, *servoLoop) {
	c := DefaultConfig()
	c.Mode = ModeBuiltin
	b := newBuiltin(c, &stepClock{t: t0})
	s := newSlave(testSelf, 0, netip.Addr{}, 10, 7)
	l := newServoLoop(b, s, stampSoftware)
	qualified(t, s, t0)
	return b, s, l
}

// TestServoKeepsSoftwareGains: losing the master unlocks the servo, and
// facebook/time's Unlock puts its hardware gains (kp 0.7, ki 0.3) back;
// the loop must restore the software-stamp gains.
func TestServoKeepsSoftwareGains(t *testing.T) {
	b, _, l := softwareServo(t)
	// Lock: two samples a frequency window apart, then a third.
	for i, at := range []time.Duration{0, freqEstimate, freqEstimate + time.Second} {
		l.measured(&measurement{offset: time.Duration(100 + i), delay: time.Microsecond, local: t0.Add(at)})
	}
	require.Equal(t, "LOCKED", l.state.String())
	// The master goes silent: idle unlocks.
	b.clock.local.(*stepClock).t = t0.Add(time.Minute)
	l.idle()
	require.Equal(t, "HOLDOVER", l.state.String())
	require.Equal(t, softwareKp, l.pcfg.PiKpScale)
	require.Equal(t, softwareKi, l.pcfg.PiKiScale)
}

// TestServoResetCounted: offsets far outside the recent spread are
// skipped as spikes; after 15 in a row the spike filter gives up and the
// servo starts over. Both are counted, and the software gains are back.
func TestServoResetCounted(t *testing.T) {
	b, s, l := softwareServo(t)
	at := time.Duration(0)
	sample := func(offset time.Duration) {
		l.measured(&measurement{offset: offset, delay: time.Microsecond, local: t0.Add(at)})
		at += 250 * time.Millisecond
	}
	sample(100)
	at = freqEstimate
	// Locked, then enough quiet samples to fill the filter's window.
	for i := range 40 {
		sample(time.Duration(100 + i%7*10))
	}
	require.Equal(t, "LOCKED", l.state.String())
	require.Zero(t, s.counts[msgSpike])
	for range 15 {
		sample(200 * time.Microsecond)
	}
	require.Equal(t, uint64(15), s.counts[msgSpike], "skipped, not steered on")
	require.Zero(t, s.counts[msgServoReset])
	sample(200 * time.Microsecond)
	require.Equal(t, uint64(1), s.counts[msgServoReset], "the filter gave up")
	require.Equal(t, softwareKp, l.pcfg.PiKpScale)
	require.Equal(t, softwareKi, l.pcfg.PiKiScale)
	require.Equal(t, uint64(1), b.Status().Messages[msgServoReset])
}
