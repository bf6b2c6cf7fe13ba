package board

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config is the board section of the gateway's configuration. Zero values
// take their defaults (DefaultConfig); a pin left empty takes the
// profile's.
type Config struct {
	// Profile names the board: sim, raspberrypi4, beaglebone-black or
	// generic (see doc.go).
	Profile string `mapstructure:"profile" yaml:"profile"`
	// Pins override the profile's; "none" turns a feature off (no tamper
	// switch wired, say). generic has no defaults: only the pins named
	// here are used.
	Pins   Pins         `mapstructure:"pins" yaml:"pins"`
	LEDs   LEDConfig    `mapstructure:"leds" yaml:"leds"`
	Tamper TamperConfig `mapstructure:"tamper" yaml:"tamper"`
	RS485  RS485Config  `mapstructure:"rs485" yaml:"rs485"`
	// Watchdog is the hardware watchdog and the health check that kicks
	// it (and systemd's, under WatchdogSec).
	Watchdog WatchdogConfig `mapstructure:"watchdog" yaml:"watchdog"`
	Sim      SimConfig      `mapstructure:"sim" yaml:"sim"`
}

// Pins names the board's pins by role. Forms: a header name of the
// profile (GPIO17 on raspberrypi4, P9_23 on beaglebone-black), a line as
// the kernel names it (gpioinfo), gpiochipN:OFFSET, led:NAME for a LED of
// /sys/class/leds, or none.
type Pins struct {
	PowerLED string `mapstructure:"power_led" yaml:"power_led"`
	LinkLED  string `mapstructure:"link_led" yaml:"link_led"`
	SpoolLED string `mapstructure:"spool_led" yaml:"spool_led"`
	AlertLED string `mapstructure:"alert_led" yaml:"alert_led"`
	Tamper   string `mapstructure:"tamper" yaml:"tamper"`
	RS485DE  string `mapstructure:"rs485_de" yaml:"rs485_de"`
}

// PinNone in a pin's key turns its feature off.
const PinNone = "none"

// LEDConfig says how the LEDs are wired and how long an alert shows.
type LEDConfig struct {
	// Active is the level that lights a GPIO LED: high (LED to ground) or
	// low (LED to the supply). LEDs of /sys/class/leds ignore it.
	Active Level `mapstructure:"active" yaml:"active"`
	// AlertHold keeps the alert LED blinking this long after the last
	// alert or critical record.
	AlertHold time.Duration `mapstructure:"alert_hold" yaml:"alert_hold"`
}

// TamperConfig describes the enclosure switch.
type TamperConfig struct {
	// OpenLevel is the input's level while the enclosure is open: high
	// for a normally closed switch to ground with a pull-up (the default,
	// which also reads open when a wire is cut), low for the reverse.
	OpenLevel Level `mapstructure:"open_level" yaml:"open_level"`
	// Pull is the input's bias: up, down or none (an external resistor).
	Pull string `mapstructure:"pull" yaml:"pull"`
	// Debounce is how long the input must stay quiet after an edge before
	// its level counts.
	Debounce time.Duration `mapstructure:"debounce" yaml:"debounce"`
}

// RS485Config ties the driver-enable pin to a serial line.
type RS485Config struct {
	// Device is the serial line whose transceiver the driver-enable pin
	// switches; inputs on it with rs485.mode pin (or auto, where the
	// kernel cannot) use the pin. Empty: the profile's.
	Device string `mapstructure:"device" yaml:"device"`
	// Active is the level that enables the driver (DE is active high on
	// the usual transceivers; low where an inverter sits between).
	Active Level `mapstructure:"active" yaml:"active"`
}

// WatchdogConfig configures the hardware watchdog and the health check.
type WatchdogConfig struct {
	// Device is the watchdog (/dev/watchdog). Empty: the profile's
	// (none for sim and generic); none: no hardware watchdog.
	Device string `mapstructure:"device" yaml:"device"`
	// Timeout is set on the device (WDIOC_SETTIMEOUT, whole seconds): the
	// board resets this long after the last kick.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
	// Interval is how often the pipeline's health is checked; each healthy
	// check kicks the watchdog (and systemd's, more often if WatchdogSec
	// asks).
	Interval time.Duration `mapstructure:"interval" yaml:"interval"`
	// Stall is how long a source may wait on a spool write, or a Modbus
	// bus stay past its schedule, before it counts as wedged (a spool held
	// full for want of an uplink does not count).
	Stall time.Duration `mapstructure:"stall" yaml:"stall"`
}

// SimConfig is for the sim profile only.
type SimConfig struct {
	// Dir, when set, connects the simulated pins to files, for the demo
	// and tests of the daemon: writing 1 or 0 to <dir>/tamper sets the
	// tamper input, and <dir>/leds shows each LED's pattern.
	Dir string `mapstructure:"dir" yaml:"dir"`
}

// Level is a pin level in configuration: high or low.
type Level string

// Levels.
const (
	High Level = "high"
	Low  Level = "low"
)

// Defaults.
const (
	DefaultDebounce          = 50 * time.Millisecond
	DefaultAlertHold         = 5 * time.Minute
	DefaultWatchdogTimeout   = 30 * time.Second
	DefaultWatchdogInterval  = 5 * time.Second
	DefaultWatchdogStall     = time.Minute
	DefaultWatchdogDevice    = "/dev/watchdog"
	maxWatchdogTimeout       = time.Hour
	minWatchdogCheckInterval = 10 * time.Millisecond
)

// DefaultConfig is the section with every default; Profile is left for
// the configuration to name.
func DefaultConfig() Config {
	return Config{
		LEDs:     LEDConfig{Active: High, AlertHold: DefaultAlertHold},
		Tamper:   TamperConfig{OpenLevel: High, Pull: "up", Debounce: DefaultDebounce},
		RS485:    RS485Config{Active: High},
		Watchdog: WatchdogConfig{Timeout: DefaultWatchdogTimeout, Interval: DefaultWatchdogInterval, Stall: DefaultWatchdogStall},
	}
}

// withDefaults fills zero values.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.LEDs.Active == "" {
		c.LEDs.Active = d.LEDs.Active
	}
	if c.LEDs.AlertHold == 0 {
		c.LEDs.AlertHold = d.LEDs.AlertHold
	}
	if c.Tamper.OpenLevel == "" {
		c.Tamper.OpenLevel = d.Tamper.OpenLevel
	}
	if c.Tamper.Pull == "" {
		c.Tamper.Pull = d.Tamper.Pull
	}
	if c.Tamper.Debounce == 0 {
		c.Tamper.Debounce = d.Tamper.Debounce
	}
	if c.RS485.Active == "" {
		c.RS485.Active = d.RS485.Active
	}
	w := &c.Watchdog
	if w.Timeout == 0 {
		w.Timeout = d.Watchdog.Timeout
	}
	if w.Interval == 0 {
		w.Interval = d.Watchdog.Interval
	}
	if w.Stall == 0 {
		w.Stall = d.Watchdog.Stall
	}
	return c
}

// Validate checks the section without touching hardware; errors name the
// key under board. A pin that does not exist on the running host is
// found by Open, which names the key too.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	p, ok := profiles[c.Profile]
	if !ok {
		if c.Profile == "" {
			bad("profile", "empty; one of %s", strings.Join(ProfileNames(), ", "))
		} else {
			bad("profile", "%q is not a known board (one of %s)", c.Profile, strings.Join(ProfileNames(), ", "))
		}
	}
	c = c.withDefaults()
	for _, l := range []struct {
		key string
		v   Level
	}{{"leds.active", c.LEDs.Active}, {"tamper.open_level", c.Tamper.OpenLevel}, {"rs485.active", c.RS485.Active}} {
		if l.v != High && l.v != Low {
			bad(l.key, "%q is not high or low", l.v)
		}
	}
	if !slices.Contains([]string{"up", "down", "none"}, c.Tamper.Pull) {
		bad("tamper.pull", "%q is not up, down or none", c.Tamper.Pull)
	}
	if c.Tamper.Debounce < time.Millisecond || c.Tamper.Debounce > 5*time.Second {
		bad("tamper.debounce", "%s out of range 1ms..5s", c.Tamper.Debounce)
	}
	if c.LEDs.AlertHold < time.Second || c.LEDs.AlertHold > 24*time.Hour {
		bad("leds.alert_hold", "%s out of range 1s..24h", c.LEDs.AlertHold)
	}
	w := c.Watchdog
	if w.Timeout < time.Second || w.Timeout > maxWatchdogTimeout || w.Timeout%time.Second != 0 {
		bad("watchdog.timeout", "%s is not whole seconds in 1s..1h (the device counts seconds)", w.Timeout)
	}
	if w.Interval < minWatchdogCheckInterval || w.Interval > w.Timeout/2 {
		bad("watchdog.interval", "%s out of range %s..%s (half of watchdog.timeout, so one late check does not reset the board)",
			w.Interval, minWatchdogCheckInterval, w.Timeout/2)
	}
	if w.Stall < w.Interval || w.Stall > time.Hour {
		bad("watchdog.stall", "%s out of range %s (watchdog.interval)..1h", w.Stall, w.Interval)
	}
	if ok {
		for _, r := range roles {
			pin := c.pin(p, r)
			if err := p.checkPin(pin); err != nil {
				bad("pins."+r.key, "%v", err)
			}
		}
		de := c.pin(p, roleRS485DE)
		if de != "" && de != PinNone && c.rs485Device(p) == "" && c.Pins.RS485DE != "" {
			bad("rs485.device", "empty: name the serial line whose driver pins.rs485_de switches")
		}
		if c.Sim.Dir != "" && c.Profile != "sim" {
			bad("sim.dir", "only the sim profile has simulated pins")
		}
	}
	return errors.Join(errs...)
}

// pin is the effective pin of role r: the configuration's, else the
// profile's; "" or none when the role has none.
func (c Config) pin(p Profile, r role) string {
	if v := r.get(&c.Pins); v != "" {
		return v
	}
	return r.get(&p.Pins)
}

func (c Config) rs485Device(p Profile) string {
	if c.RS485.Device != "" {
		return c.RS485.Device
	}
	return p.RS485Device
}

// WatchdogDevice is the effective watchdog device: "" when there is none
// to open.
func (c Config) WatchdogDevice() string {
	d := c.Watchdog.Device
	if d == "" {
		d = profiles[c.Profile].Watchdog
	}
	if d == PinNone {
		return ""
	}
	return d
}

// Effective returns c with its defaults filled in, for callers that read
// the timings (the gateway's health check).
func (c Config) Effective() Config { return c.withDefaults() }

// role is one pin's job on the board.
type role struct {
	key string // its key under pins
	get func(*Pins) string
}

var (
	rolePowerLED = role{"power_led", func(p *Pins) string { return p.PowerLED }}
	roleLinkLED  = role{"link_led", func(p *Pins) string { return p.LinkLED }}
	roleSpoolLED = role{"spool_led", func(p *Pins) string { return p.SpoolLED }}
	roleAlertLED = role{"alert_led", func(p *Pins) string { return p.AlertLED }}
	roleTamper   = role{"tamper", func(p *Pins) string { return p.Tamper }}
	roleRS485DE  = role{"rs485_de", func(p *Pins) string { return p.RS485DE }}
	roles        = []role{rolePowerLED, roleLinkLED, roleSpoolLED, roleAlertLED, roleTamper, roleRS485DE}
)
