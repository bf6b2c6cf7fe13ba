package ptp

import (
	"sync/atomic"
	"time"
)

// LocalClock is the oscillator the built-in slave disciplines. Kernel
// receive and transmit time stamps are CLOCK_REALTIME readings; FromKernel
// maps them onto this clock's scale so every time in one exchange is on
// the same one.
type LocalClock interface {
	Now() time.Time
	FromKernel(time.Time) time.Time
}

// realtime is CLOCK_REALTIME, on which kernel time stamps already are.
type realtime struct{}

func (realtime) Now() time.Time                   { return time.Now() }
func (realtime) FromKernel(t time.Time) time.Time { return t }

// discipline is the software clock's correction: at local reading t,
// corrected = t + phase + (t − ref) × freq. Immutable; replaced whole.
type discipline struct {
	ref   int64   // local reading, ns since the epoch, where phase holds
	phase int64   // ns
	freq  float64 // ppb
}

func (d *discipline) at(local int64) int64 {
	return d.phase + int64(float64(local-d.ref)*d.freq/1e9)
}

// softClock is a local clock plus a correction that the servo steers: the
// system clock is left alone, so a bad master cannot move the board's
// time, only Weir's stamps (whose quality then says so). Reading it is one
// clock read and one atomic load; only the servo's goroutine writes it.
type softClock struct {
	local LocalClock
	d     atomic.Pointer[discipline]
}

func newSoftClock(local LocalClock) *softClock {
	c := &softClock{local: local}
	c.d.Store(&discipline{})
	return c
}

// Now returns the local reading and the corrected time. The local one
// keeps its monotonic reading, for the holdover arithmetic.
func (c *softClock) Now() (local, corrected time.Time) {
	local = c.local.Now()
	return local, c.correct(local)
}

// correct maps a local reading onto the disciplined scale.
func (c *softClock) correct(local time.Time) time.Time {
	return local.Add(time.Duration(c.d.Load().at(local.UnixNano())))
}

// Correction is what the clock adds to the local reading at local.
func (c *softClock) Correction(local time.Time) time.Duration {
	return time.Duration(c.d.Load().at(local.UnixNano()))
}

// Frequency is the current frequency correction in ppb.
func (c *softClock) Frequency() float64 { return c.d.Load().freq }

// Step moves the clock by delta from now on.
func (c *softClock) Step(delta time.Duration) {
	now := c.local.Now().UnixNano()
	d := c.d.Load()
	c.d.Store(&discipline{ref: now, phase: d.at(now) + int64(delta), freq: d.freq})
}

// SetFrequency changes the rate from now on, keeping the clock continuous.
func (c *softClock) SetFrequency(ppb float64) {
	now := c.local.Now().UnixNano()
	d := c.d.Load()
	c.d.Store(&discipline{ref: now, phase: d.at(now), freq: ppb})
}
