package board

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// Sim is the sim profile's pins: periph's gpiotest pins, which tests read
// (LEDs, driver enable) and drive (the tamper input: push a level on its
// EdgesChan, as a real edge would arrive).
type Sim struct {
	pins map[string]*gpiotest.Pin // by role key: power_led ... tamper, rs485_de
	dir  string
}

// Pin returns the simulated pin of a role (power_led, link_led,
// spool_led, alert_led, tamper, rs485_de), nil if the board has none.
func (s *Sim) Pin(role string) *gpiotest.Pin { return s.pins[role] }

func newSim(dir string) *Sim { return &Sim{pins: map[string]*gpiotest.Pin{}, dir: dir} }

// pin makes the simulated pin for a role; an input gets an edge channel.
func (s *Sim) pin(r role, name string, input bool) *gpiotest.Pin {
	p := &gpiotest.Pin{N: name, Num: len(s.pins)}
	if input {
		p.EdgesChan = make(chan gpio.Level, 16)
	}
	s.pins[r.key] = p
	return p
}

// Sim returns the simulated pins, nil unless the profile is sim.
func (b *Board) Sim() *Sim { return b.sim }

// simPoll is how often the sim's tamper file is read.
const simPoll = 20 * time.Millisecond

// runSimDir connects the simulated tamper input to <dir>/tamper: "open"
// or "closed" (or a level: 1, 0, high, low), read every simPoll; each
// change arrives on the pin as an edge.
func (b *Board) runSimDir(ctx context.Context) {
	p := b.sim.pins[roleTamper.key]
	if p == nil || b.tamper == nil {
		return
	}
	path := filepath.Join(b.sim.dir, "tamper")
	last := p.Read()
	t := time.NewTicker(simPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var lvl gpio.Level
		switch strings.ToLower(string(bytes.TrimSpace(raw))) {
		case "open":
			lvl = b.tamper.openLvl
		case "closed", "close":
			lvl = !b.tamper.openLvl
		case "1", "high":
			lvl = gpio.High
		case "0", "low":
			lvl = gpio.Low
		default:
			continue
		}
		if lvl != last {
			last = lvl
			select {
			case p.EdgesChan <- lvl:
			case <-ctx.Done():
				return
			}
		}
	}
}

// simShowLEDs writes <dir>/leds, one "name pattern" line per LED, when a
// pattern changes (not at every blink).
func (b *Board) simShowLEDs() {
	if b.sim == nil || b.sim.dir == "" {
		return
	}
	var sb strings.Builder
	for _, l := range b.ledStatus() {
		fmt.Fprintf(&sb, "%s %s\n", l.Name, l.Pattern)
	}
	b.simMu.Lock()
	defer b.simMu.Unlock()
	path := filepath.Join(b.sim.dir, "leds")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err == nil {
		_ = os.Rename(tmp, path)
	}
}
