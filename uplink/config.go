package uplink

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the gateway's uplink. With no endpoints the uplink is off and
// records stay in the spool until one is configured.
type Config struct {
	Endpoints       []Endpoint    `mapstructure:"endpoints" yaml:"endpoints"`
	TLS             TLSConfig     `mapstructure:"tls" yaml:"tls"`
	BatchMaxRecords int           `mapstructure:"batch_max_records" yaml:"batch_max_records"`
	BatchMaxBytes   int           `mapstructure:"batch_max_bytes" yaml:"batch_max_bytes"`
	Window          int           `mapstructure:"window" yaml:"window"` // batches in flight
	ConnectTimeout  time.Duration `mapstructure:"connect_timeout" yaml:"connect_timeout"`
	AckTimeout      time.Duration `mapstructure:"ack_timeout" yaml:"ack_timeout"`
	ReconnectMin    time.Duration `mapstructure:"reconnect_min" yaml:"reconnect_min"`
	ReconnectMax    time.Duration `mapstructure:"reconnect_max" yaml:"reconnect_max"`
}

// Endpoint is one collector. Endpoints are tried in order.
type Endpoint struct {
	Address    string `mapstructure:"address" yaml:"address"`         // host:port
	ServerName string `mapstructure:"server_name" yaml:"server_name"` // certificate name to expect; default: the host of address
}

// DefaultConfig has no endpoint: the uplink is off until one is named.
func DefaultConfig() Config {
	return Config{
		BatchMaxRecords: 1000,
		BatchMaxBytes:   1 << 20,
		Window:          4,
		ConnectTimeout:  10 * time.Second,
		AckTimeout:      30 * time.Second,
		ReconnectMin:    time.Second,
		ReconnectMax:    time.Minute,
	}
}

// Enabled reports whether any endpoint is configured.
func (c Config) Enabled() bool { return len(c.Endpoints) > 0 }

// Validate checks the configuration without I/O; errors name the key.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	for i, e := range c.Endpoints {
		if _, port, err := net.SplitHostPort(e.Address); err != nil || port == "" {
			add(fmt.Sprintf("endpoints[%d].address", i), "%q is not host:port", e.Address)
		}
	}
	if c.Enabled() {
		if err := c.TLS.Validate(); err != nil {
			errs = append(errs, prefixErrors("tls.", err))
		}
	}
	if c.BatchMaxRecords < 1 || c.BatchMaxRecords > 100000 {
		add("batch_max_records", "%d is outside 1..100000", c.BatchMaxRecords)
	}
	if c.BatchMaxBytes < 1024 || c.BatchMaxBytes > DefaultMaxFrame/2 {
		add("batch_max_bytes", "%d is outside 1024..%d", c.BatchMaxBytes, DefaultMaxFrame/2)
	}
	if c.Window < 1 || c.Window > 64 {
		add("window", "%d is outside 1..64", c.Window)
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{{"connect_timeout", c.ConnectTimeout}, {"ack_timeout", c.AckTimeout},
		{"reconnect_min", c.ReconnectMin}, {"reconnect_max", c.ReconnectMax}} {
		if d.val <= 0 {
			add(d.key, "%s must be positive", d.val)
		}
	}
	if c.ReconnectMax < c.ReconnectMin {
		add("reconnect_max", "%s is below reconnect_min %s", c.ReconnectMax, c.ReconnectMin)
	}
	return errors.Join(errs...)
}

// prefixErrors puts prefix before each joined error's key.
func prefixErrors(prefix string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = append(errs, fmt.Errorf("%s%w", prefix, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s%w", prefix, err)
}
