package board

import (
	"context"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// TamperEvent is a change of the enclosure switch, after debouncing.
type TamperEvent struct {
	Open bool
	At   time.Time // when the level settled
	// AtStart: the enclosure was already open when the board was opened
	// (opened while the gateway was down, or a cut wire).
	AtStart  bool
	Pin      string
	Openings uint64 // since start, this one included
	Closings uint64
}

// TamperStatus is the switch as `weir status` shows it.
type TamperStatus struct {
	Pin      string    `json:"pin"`
	Open     bool      `json:"open"`
	Since    time.Time `json:"since,omitzero"`
	Openings uint64    `json:"openings"`
	Closings uint64    `json:"closings"`
}

// tamper watches the enclosure switch: edges wake it, and a level counts
// once the input has been quiet for the debounce time, so a bouncing
// contact makes one event.
type tamper struct {
	pin      gpio.PinIO
	pinName  string
	openLvl  gpio.Level
	debounce time.Duration

	mu     sync.Mutex
	status TamperStatus
}

// settleCap bounds how long chatter may postpone reading the level: a
// contact that never settles is still reported.
const settleCap = 2 * time.Second

// watch reports every debounced change of the switch until ctx ends.
func (t *tamper) watch(ctx context.Context, report func(TamperEvent)) {
	// No edge for this long: read the level anyway, which catches an
	// edge the driver missed. The line has then been quiet for at least
	// the debounce time.
	idle := max(250*time.Millisecond, t.debounce)
	open := t.pin.Read() == t.openLvl
	t.mu.Lock()
	t.status.Open, t.status.Since = open, time.Now()
	if open {
		t.status.Openings++
	}
	ev := TamperEvent{Open: open, At: t.status.Since, AtStart: true, Pin: t.pinName, Openings: t.status.Openings}
	t.mu.Unlock()
	if open {
		report(ev)
	}
	for ctx.Err() == nil {
		if t.pin.WaitForEdge(idle) {
			t.settle()
		}
		now := t.pin.Read() == t.openLvl
		if now == open {
			continue
		}
		open = now
		t.mu.Lock()
		t.status.Open, t.status.Since = open, time.Now()
		if open {
			t.status.Openings++
		} else {
			t.status.Closings++
		}
		ev := TamperEvent{Open: open, At: t.status.Since, Pin: t.pinName, Openings: t.status.Openings, Closings: t.status.Closings}
		t.mu.Unlock()
		report(ev)
	}
}

// settle waits until no edge has come for the debounce time.
func (t *tamper) settle() {
	deadline := time.Now().Add(settleCap)
	for t.pin.WaitForEdge(t.debounce) {
		if time.Now().After(deadline) {
			return
		}
	}
}

func (t *tamper) snapshot() TamperStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}
