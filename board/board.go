package board

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"periph.io/x/conn/v3/gpio"
)

// Board is the appliance's hardware as its profile and configuration
// describe it: status LEDs, the tamper switch and the RS-485 driver
// enable. Any of them may be absent. The watchdog is opened apart
// (OpenWatchdog), by whoever decides when the pipeline is healthy.
type Board struct {
	cfg     Config
	profile Profile
	log     *slog.Logger

	mu      sync.Mutex // guards the LEDs
	leds    [numLEDs]*led
	ledWake chan struct{}
	tamper  *tamper
	de      *DriverEnable
	sim     *Sim
	simMu   sync.Mutex // serializes <sim.dir>/leds writes
	opened  []gpio.PinIO
}

// pinFinder finds a pin by its configured name on the running host.
// sysLED reports a LED of /sys/class/leds, whose "on" is always high.
type pinFinder interface {
	find(p Profile, name string) (pin gpio.PinIO, sysLED bool, err error)
}

// Open validates cfg, finds every pin the profile and configuration name
// and sets them up: LEDs dark, the driver released, the tamper input
// biased and edge-triggered. Errors name the key (pins.tamper: ...).
func Open(cfg Config, log *slog.Logger) (*Board, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("board: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	p := profiles[cfg.Profile]
	b := &Board{cfg: cfg, profile: p, log: log, ledWake: make(chan struct{}, 1)}
	var finder pinFinder
	if p.Name == "sim" {
		b.sim = newSim(cfg.Sim.Dir)
	} else {
		finder = newHostPins()
	}
	get := func(r role, input, isLED bool) (gpio.PinIO, string, bool, error) {
		name := cfg.pin(p, r)
		if name == "" || name == PinNone {
			return nil, "", false, nil
		}
		if b.sim != nil {
			return b.sim.pin(r, name, input), name, false, nil
		}
		pin, sysLED, err := finder.find(p, name)
		if err != nil {
			return nil, "", false, fmt.Errorf("board: pins.%s: %w", r.key, err)
		}
		if sysLED && !isLED {
			return nil, "", false, fmt.Errorf("board: pins.%s: %s is a LED, not a GPIO line", r.key, name)
		}
		b.opened = append(b.opened, pin)
		return pin, name, sysLED, nil
	}
	fail := func(err error) (*Board, error) {
		b.release()
		return nil, err
	}
	ledOn := level(cfg.LEDs.Active)
	for i, r := range ledRoles {
		pin, name, sysLED, err := get(r, false, true)
		if err != nil {
			return fail(err)
		}
		if pin == nil {
			continue
		}
		on := ledOn
		if sysLED {
			on = gpio.High
		}
		if err := pin.Out(!on); err != nil {
			return fail(fmt.Errorf("board: pins.%s: %s: %w", r.key, name, err))
		}
		b.leds[i] = &led{pin: pin, pinName: name, on: on}
	}
	pin, name, _, err := get(roleTamper, true, false)
	if err != nil {
		return fail(err)
	}
	if pin != nil {
		if err := pin.In(pull(cfg.Tamper.Pull), gpio.BothEdges); err != nil {
			return fail(fmt.Errorf("board: pins.tamper: %s: input with %s bias and edges: %w", name, cfg.Tamper.Pull, err))
		}
		b.tamper = &tamper{pin: pin, pinName: name, openLvl: level(cfg.Tamper.OpenLevel), debounce: cfg.Tamper.Debounce,
			status: TamperStatus{Pin: name}}
		if b.sim != nil {
			// A simulated switch starts closed, whatever its bias made it.
			_ = b.sim.pins[roleTamper.key].Out(!b.tamper.openLvl)
		}
	}
	if dev := cfg.rs485Device(p); dev != "" {
		pin, name, _, err := get(roleRS485DE, false, false)
		if err != nil {
			return fail(err)
		}
		if pin != nil {
			b.de = &DriverEnable{pin: pin, pinName: name, device: dev, active: level(cfg.RS485.Active)}
			if err := b.de.Set(false); err != nil {
				return fail(fmt.Errorf("board: pins.rs485_de: %w", err))
			}
		}
	}
	return b, nil
}

// Run drives the LEDs and watches the tamper switch until ctx ends,
// calling onTamper for each debounced change (and once at start if the
// enclosure is open). It returns nil when ctx ends.
func (b *Board) Run(ctx context.Context, onTamper func(TamperEvent)) error {
	var wg sync.WaitGroup
	wg.Go(func() { b.runLEDs(ctx) })
	if b.tamper != nil {
		wg.Go(func() { b.tamper.watch(ctx, onTamper) })
	}
	if b.sim != nil && b.sim.dir != "" {
		wg.Go(func() { b.runSimDir(ctx) })
	}
	wg.Wait()
	return nil
}

// Close darkens the LEDs, releases the RS-485 driver and the pins.
func (b *Board) Close() error {
	b.ledsOff()
	var err error
	if b.de != nil {
		err = b.de.Set(false)
	}
	b.release()
	return err
}

func (b *Board) release() {
	for _, p := range b.opened {
		closePin(p)
	}
	b.opened = nil
}

// DriverEnable returns the RS-485 driver-enable pin and the serial line
// it serves; nil when the board has none.
func (b *Board) DriverEnable() *DriverEnable { return b.de }

// Profile is the board's profile name.
func (b *Board) Profile() string { return b.profile.Name }

// Status is the board as `weir status` shows it.
type Status struct {
	Profile string        `json:"profile"`
	LEDs    []LEDStatus   `json:"leds,omitempty"`
	Tamper  *TamperStatus `json:"tamper,omitempty"`
	RS485   *RS485Status  `json:"rs485,omitempty"`
}

// Status takes a snapshot.
func (b *Board) Status() Status {
	st := Status{Profile: b.profile.Name, LEDs: b.ledStatus()}
	if b.tamper != nil {
		t := b.tamper.snapshot()
		st.Tamper = &t
	}
	if b.de != nil {
		d := b.de.snapshot()
		st.RS485 = &d
	}
	return st
}

// TamperOpen reports whether the enclosure is open now (false without a
// switch).
func (b *Board) TamperOpen() bool {
	return b.tamper != nil && b.tamper.snapshot().Open
}

func level(l Level) gpio.Level { return l == High }

func pull(s string) gpio.Pull {
	switch s {
	case "up":
		return gpio.PullUp
	case "down":
		return gpio.PullDown
	}
	return gpio.Float
}
