package board

import (
	"context"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// LED is one of the status LEDs.
type LED uint8

// The status LEDs.
const (
	LEDPower LED = iota
	LEDLink
	LEDSpool
	LEDAlert
	numLEDs
)

var ledNames = [numLEDs]string{"power", "link", "spool", "alert"}
var ledRoles = [numLEDs]role{rolePowerLED, roleLinkLED, roleSpoolLED, roleAlertLED}

func (l LED) String() string {
	if l < numLEDs {
		return ledNames[l]
	}
	return "led?"
}

// led is one LED's pin and what it shows. Guarded by Board.mu.
type led struct {
	pin     gpio.PinOut
	pinName string
	on      gpio.Level // the level that lights it
	pattern Pattern
	reason  string
	since   time.Time
	lit     bool
	failed  bool // the last Out failed (logged once)
}

// LEDStatus is one LED as `weir status` shows it.
type LEDStatus struct {
	Name    string    `json:"name"`
	Pin     string    `json:"pin"`
	Pattern Pattern   `json:"pattern"`
	Reason  string    `json:"reason,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

// SetLED sets what an LED shows and why (for status). Setting the pattern
// it already shows changes nothing, so a blink keeps its phase; the
// reason is updated. A board without that LED ignores it.
func (b *Board) SetLED(which LED, p Pattern, reason string) {
	if which >= numLEDs {
		return
	}
	b.mu.Lock()
	l := b.leds[which]
	if l == nil {
		b.mu.Unlock()
		return
	}
	l.reason = reason
	changed := l.pattern != p
	if changed {
		l.pattern, l.since = p, time.Now()
	}
	b.mu.Unlock()
	if changed {
		// Shown before SetLED returns; the loop then keeps the blink.
		b.stepLEDs(time.Now())
		select {
		case b.ledWake <- struct{}{}:
		default:
		}
		b.simShowLEDs()
	}
}

// LEDPattern returns what an LED shows (Off for a board without it).
func (b *Board) LEDPattern(which LED) Pattern {
	b.mu.Lock()
	defer b.mu.Unlock()
	if which >= numLEDs || b.leds[which] == nil {
		return Off
	}
	return b.leds[which].pattern
}

// runLEDs drives the LEDs' pins: each is written when its pattern says it
// changes, and the loop sleeps until the next change.
func (b *Board) runLEDs(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := b.stepLEDs(time.Now())
		if next <= 0 {
			next = time.Hour
		}
		t.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-b.ledWake:
		case <-t.C:
		}
	}
}

// stepLEDs writes every LED whose level is due to change and returns how
// long until the next change.
func (b *Board) stepLEDs(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	var next time.Duration
	for i, l := range b.leds {
		if l == nil {
			continue
		}
		want, d := l.pattern.lit(now.Sub(l.since))
		if d > 0 && (next == 0 || d < next) {
			next = d
		}
		if want == l.lit && !l.failed {
			continue
		}
		lvl := l.on
		if !want {
			lvl = !lvl
		}
		if err := l.pin.Out(lvl); err != nil {
			if !l.failed {
				b.log.Warn("board: LED not set", "led", LED(i).String(), "pin", l.pinName, "err", err)
			}
			l.failed = true
			continue
		}
		l.lit, l.failed = want, false
	}
	return next
}

// ledsOff darkens every LED, at close.
func (b *Board) ledsOff() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.leds {
		if l != nil {
			_ = l.pin.Out(!l.on)
			l.lit, l.pattern = false, Off
		}
	}
}

func (b *Board) ledStatus() []LEDStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []LEDStatus
	for i, l := range b.leds {
		if l == nil {
			continue
		}
		out = append(out, LEDStatus{Name: LED(i).String(), Pin: l.pinName, Pattern: l.pattern, Reason: l.reason, Since: l.since})
	}
	return out
}
