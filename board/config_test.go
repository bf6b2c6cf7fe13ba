package board

import (
	"strings"
	"testing"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestValidate(t *testing.T) {
	cfg := func(profile string, f func(*Config)) Config {
		c := DefaultConfig()
		c.Profile = profile
		if f != nil {
			f(&c)
		}
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid; else a substring of the error
	}{
		{"sim", cfg("sim", nil), ""},
		{"raspberrypi4", cfg("raspberrypi4", nil), ""},
		{"beaglebone-black", cfg("beaglebone-black", nil), ""},
		{"generic with pins", cfg("generic", func(c *Config) {
			c.Pins = Pins{PowerLED: "led:pwr", Tamper: "gpiochip1:5", RS485DE: "UART_DE"}
			c.RS485.Device = "/dev/ttyS3"
		}), ""},
		{"zero values take defaults", Config{Profile: "sim"}, ""},
		{"empty profile", cfg("", nil), "profile: empty; one of beaglebone-black, generic, raspberrypi4, sim"},
		{"unknown profile", cfg("raspberrypi5", nil), `profile: "raspberrypi5" is not a known board`},
		{"pin not on the Pi header", cfg("raspberrypi4", func(c *Config) { c.Pins.Tamper = "GPIO72" }),
			`pins.tamper: "GPIO72" is not a GPIO of the raspberrypi4 header (GPIO2..GPIO27)`},
		{"Pi header name, any case", cfg("raspberrypi4", func(c *Config) { c.Pins.Tamper = "gpio21" }), ""},
		{"pin not on the BeagleBone header", cfg("beaglebone-black", func(c *Config) { c.Pins.RS485DE = "P8_99" }),
			`pins.rs485_de: "P8_99" is not a GPIO of the beaglebone-black header (P8_7,`},
		{"malformed pin", cfg("generic", func(c *Config) { c.Pins.AlertLED = "not a pin" }), `pins.alert_led: "not a pin" is not a pin`},
		{"led without name", cfg("generic", func(c *Config) { c.Pins.AlertLED = "led:" }), `pins.alert_led: "led:": want led:NAME`},
		{"driver enable without its line", cfg("generic", func(c *Config) { c.Pins.RS485DE = "gpiochip0:4" }),
			"rs485.device: empty"},
		{"bad level", cfg("sim", func(c *Config) { c.Tamper.OpenLevel = "open" }), `tamper.open_level: "open" is not high or low`},
		{"bad pull", cfg("sim", func(c *Config) { c.Tamper.Pull = "strong" }), `tamper.pull: "strong" is not up, down or none`},
		{"debounce too long", cfg("sim", func(c *Config) { c.Tamper.Debounce = time.Minute }), "tamper.debounce: 1m0s out of range"},
		{"watchdog timeout not whole seconds", cfg("sim", func(c *Config) { c.Watchdog.Timeout = 1500 * time.Millisecond }),
			"watchdog.timeout: 1.5s is not whole seconds"},
		{"watchdog interval over half the timeout", cfg("sim", func(c *Config) { c.Watchdog.Interval = 20 * time.Second }),
			"watchdog.interval: 20s out of range 10ms..15s"},
		{"stall below the interval", cfg("sim", func(c *Config) { c.Watchdog.Stall = time.Second }),
			"watchdog.stall: 1s out of range 5s"},
		{"sim dir on real hardware", cfg("raspberrypi4", func(c *Config) { c.Sim.Dir = "/tmp/x" }), "sim.dir: only the sim profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestExampleIsValid decodes the embedded example as the gateway does and
// validates it, so the example never shows a broken section.
func TestExampleIsValid(t *testing.T) {
	var doc struct {
		Board map[string]any `yaml:"board"`
	}
	require.NoError(t, yaml.Unmarshal(ExampleYAML(), &doc))
	c := DefaultConfig()
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &c, ErrorUnused: true,
		DecodeHook: mapstructure.StringToTimeDurationHookFunc()})
	require.NoError(t, err)
	require.NoError(t, d.Decode(doc.Board))
	require.NoError(t, c.Validate())
	require.Equal(t, "raspberrypi4", c.Profile)
	require.Equal(t, "/dev/watchdog", c.WatchdogDevice())
	require.Equal(t, 15*time.Second, c.Watchdog.Timeout)
}

func TestWatchdogDevice(t *testing.T) {
	for _, tt := range []struct{ profile, device, want string }{
		{"raspberrypi4", "", "/dev/watchdog"},
		{"raspberrypi4", "none", ""},
		{"sim", "", ""},
		{"sim", "/tmp/fifo", "/tmp/fifo"},
		{"generic", "", ""},
	} {
		c := Config{Profile: tt.profile, Watchdog: WatchdogConfig{Device: tt.device}}
		require.Equal(t, tt.want, c.WatchdogDevice(), "%s %q", tt.profile, tt.device)
	}
}

func TestProfilesHaveTheirHeaderDefaults(t *testing.T) {
	for _, name := range ProfileNames() {
		p := profiles[name]
		for _, r := range roles {
			pin := r.get(&p.Pins)
			require.NoError(t, p.checkPin(pin), "%s %s", name, r.key)
			if p.header != nil && pin != "" && !strings.HasPrefix(pin, "led:") {
				_, ok := p.headerLine(pin)
				require.True(t, ok, "%s: default %s %s is not on its header", name, r.key, pin)
			}
		}
	}
}
