package boardtest

import (
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/weirgw/weir/board"
)

// sampleEvery is far below the fastest blink's half period (125 ms).
const sampleEvery = 5 * time.Millisecond

// Watch samples pin for window (at least 1.2 s, to see a slow blink's
// change twice) and returns the pattern it showed, lit meaning level on.
// Steady: on or off; fewer than five changes: a slow blink; more: fast.
func Watch(pin gpio.PinIn, on gpio.Level, window time.Duration) board.Pattern {
	window = max(window, 1200*time.Millisecond)
	end := time.Now().Add(window)
	last := pin.Read()
	changes := 0
	for time.Now().Before(end) {
		time.Sleep(sampleEvery)
		if l := pin.Read(); l != last {
			changes++
			last = l
		}
	}
	switch {
	case changes == 0 && last == on:
		return board.On
	case changes == 0:
		return board.Off
	case changes < 5:
		return board.Slow
	}
	return board.Fast
}

// WaitFor watches pin until it shows want or timeout passes, and returns
// the last pattern seen.
func WaitFor(pin gpio.PinIn, on gpio.Level, want board.Pattern, timeout time.Duration) board.Pattern {
	end := time.Now().Add(timeout)
	for {
		got := Watch(pin, on, 0)
		if got == want || time.Now().After(end) {
			return got
		}
	}
}
