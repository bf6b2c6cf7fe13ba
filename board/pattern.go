package board

import (
	"fmt"
	"time"

	"periph.io/x/conn/v3/physic"
)

// Pattern is what a status LED does.
type Pattern uint8

// Patterns. A blink starts lit when the pattern is set, so a change shows
// at once.
const (
	Off  Pattern = iota
	On           // steady
	Slow         // blinking at SlowBlink
	Fast         // blinking at FastBlink
)

// Blink rates: slow reads as "attention", fast as "something is wrong".
const (
	SlowBlink = 1 * physic.Hertz
	FastBlink = 4 * physic.Hertz
)

var patternNames = [...]string{"off", "on", "slow", "fast"}

func (p Pattern) String() string {
	if int(p) < len(patternNames) {
		return patternNames[p]
	}
	return fmt.Sprintf("pattern(%d)", uint8(p))
}

// MarshalText writes the pattern's name, for status JSON.
func (p Pattern) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a pattern's name.
func (p *Pattern) UnmarshalText(b []byte) error {
	for i, n := range patternNames {
		if n == string(b) {
			*p = Pattern(i)
			return nil
		}
	}
	return fmt.Errorf("board: unknown LED pattern %q", b)
}

// halfPeriod is how long a blinking LED stays lit, then dark.
func (p Pattern) halfPeriod() time.Duration {
	switch p {
	case Slow:
		return SlowBlink.Period() / 2
	case Fast:
		return FastBlink.Period() / 2
	}
	return 0
}

// lit says whether the LED is lit elapsed after the pattern was set, and
// how long until that changes (0: never).
func (p Pattern) lit(elapsed time.Duration) (bool, time.Duration) {
	switch p {
	case On:
		return true, 0
	case Slow, Fast:
		h := p.halfPeriod()
		phase := elapsed % (2 * h)
		if phase < h {
			return true, h - phase
		}
		return false, 2*h - phase
	}
	return false, 0
}
