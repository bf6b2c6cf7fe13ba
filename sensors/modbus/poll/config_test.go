package poll

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidateKeys(t *testing.T) {
	good := func() Config {
		b := DefaultBusConfig()
		b.Name, b.Serial.Device = "rs485", "/dev/ttyS1"
		tb := DefaultBusConfig()
		tb.Name, tb.Type, tb.Address = "plc", BusTCP, "10.0.0.7:502"
		return Config{Buses: []BusConfig{b, tb}, Devices: []DeviceConfig{
			dev("meter", "rs485", 7, time.Second, RegisterConfig{Name: "flow", Register: "holding", Address: 0, Type: "float32"}),
			dev("relay", "plc", 0, time.Second, RegisterConfig{Name: "trip", Register: "coil", Address: 4}),
		}}
	}
	require.NoError(t, good().Validate())
	for _, c := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"bus type", func(c *Config) { c.Buses[0].Type = "serial" }, `buses[0].type: "serial" is not rtu or tcp`},
		{"serial key", func(c *Config) { c.Buses[0].Serial.Parity = "mark" }, `buses[0].serial.parity: "mark"`},
		{"tcp address", func(c *Config) { c.Buses[1].Address = "10.0.0.7" }, `buses[1].address: "10.0.0.7" is not host:port`},
		{"in flight", func(c *Config) { c.Buses[1].MaxInFlight = 0 }, `buses[1].max_in_flight: 0 out of range 1..64`},
		{"dup bus", func(c *Config) { c.Buses[1].Name = "rs485" }, `buses[1].name: "rs485" is already used by buses[0]`},
		{"unknown bus", func(c *Config) { c.Devices[1].Bus = "plc2" }, `devices[1].bus: "plc2" names no bus`},
		{"rtu broadcast unit", func(c *Config) { c.Devices[0].Unit = 0 }, `devices[0].unit: 0 out of range 1..247`},
		{"coalesce", func(c *Config) { c.Devices[0].Coalesce = "yes" }, `devices[0].coalesce: "yes" is not on or off`},
		{"gap", func(c *Config) { c.Devices[0].MaxGap = 200 }, `devices[0].max_gap: 200 out of range 0..124`},
		{"reserved name", func(c *Config) { c.Devices[0].Registers[0].Name = "device" }, `devices[0].registers[0].name: "device" is a field every reading has`},
		{"table", func(c *Config) { c.Devices[1].Registers[0].Register = "holdings" }, `devices[1].registers[0].register: "holdings" is not coil`},
		{"beyond 65535", func(c *Config) { c.Devices[0].Registers[0].Address = 65535 }, `devices[0].registers[0].address: 65535 (+2) beyond`},
		{"priority", func(c *Config) { c.Devices[0].Priority = "urgent" }, `devices[0].priority: "urgent"`},
		{"busy backoff", func(c *Config) { c.Devices[0].BusyBackoff = 0 }, `devices[0].busy_backoff: 0s out of range 1ms..1m`},
		{"busy timeout", func(c *Config) { c.Devices[1].BusyTimeout = -time.Second }, `devices[1].busy_timeout: -1s out of range 0..10m`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := good()
			c.mod(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func TestFrameErrorRateWindows(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(1_000_000, 0)
	w.add(t0.Add(-20*time.Minute), 100, 100) // its bucket is reused 15 minutes later
	w.add(t0.Add(-5*time.Minute), 100, 50)   // 50 % five minutes ago
	w.add(t0, 100, 10)                       // 10 % now
	require.InDelta(t, 0.10, w.rate(t0, time.Minute), 1e-9)
	require.InDelta(t, 0.30, w.rate(t0, 15*time.Minute), 1e-9)
	require.Zero(t, w.rate(t0.Add(30*time.Minute), 15*time.Minute))
}

func TestDiagnosticLimiter(t *testing.T) {
	l := limiter{perMinute: 2}
	t0 := time.Unix(1_000_000, 0)
	require.True(t, l.allow(t0))
	require.True(t, l.allow(t0))
	require.False(t, l.allow(t0))
	require.False(t, l.allow(t0.Add(10*time.Second)))
	require.True(t, l.allow(t0.Add(40*time.Second)), "a token back after 30 s")
	require.Equal(t, uint64(2), l.total)
}
