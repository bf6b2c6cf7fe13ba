package uplink

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Transport names how an endpoint is reached.
type Transport string

const (
	TransportTLS  Transport = "tls"  // TCP with TLS 1.2+, mutual authentication
	TransportDTLS Transport = "dtls" // UDP with DTLS 1.2 (pion/dtls) and the uplink/rudp reliable stream
)

// Mode says how several endpoints share the work.
type Mode string

const (
	// ModeFailover sends to the first healthy endpoint in list order,
	// probes the ones before it and falls back to the first as it returns.
	ModeFailover Mode = "failover"
	// ModeBalance spreads batches over every healthy endpoint; each batch
	// goes to one session, and a batch unacked when its session fails is
	// sent again elsewhere. The collectors must share one sink (and its
	// dedupe state), else each holds only part of the stream.
	ModeBalance Mode = "balance"
)

// Config is the gateway's uplink. With no endpoints the uplink is off and
// records stay in the spool until one is configured.
type Config struct {
	Endpoints []Endpoint `mapstructure:"endpoints" yaml:"endpoints"`
	Mode      Mode       `mapstructure:"mode" yaml:"mode"`
	TLS       TLSConfig  `mapstructure:"tls" yaml:"tls"`
	// Compression of Data payloads: "zstd" or "none"; CompressionLevel is
	// zstd's 1..22 (mapped to the encoder's four speeds).
	Compression      string        `mapstructure:"compression" yaml:"compression"`
	CompressionLevel int           `mapstructure:"compression_level" yaml:"compression_level"`
	BatchMaxRecords  int           `mapstructure:"batch_max_records" yaml:"batch_max_records"`
	BatchMaxBytes    int           `mapstructure:"batch_max_bytes" yaml:"batch_max_bytes"`
	FlushInterval    time.Duration `mapstructure:"flush_interval" yaml:"flush_interval"` // a partial batch waits at most this long
	// FlushWhenIdle: a partial batch goes at once when the session has
	// nothing in flight; records that come meanwhile go together after
	// its ack. Off: every partial batch waits flush_interval (fewer,
	// larger batches, which compress better on a metered link).
	FlushWhenIdle bool `mapstructure:"flush_when_idle" yaml:"flush_when_idle"`
	// Window is the most batches in flight per session; each session
	// keeps fewer, sized to its path (sender.windowSizer).
	Window         int           `mapstructure:"window" yaml:"window"`
	ConnectTimeout time.Duration `mapstructure:"connect_timeout" yaml:"connect_timeout"`
	AckTimeout     time.Duration `mapstructure:"ack_timeout" yaml:"ack_timeout"`
	Keepalive      time.Duration `mapstructure:"keepalive" yaml:"keepalive"`           // a Ping (RTT probe) this often
	ProbeInterval  time.Duration `mapstructure:"probe_interval" yaml:"probe_interval"` // health probe of endpoints not in use
	DTLSMTU        int           `mapstructure:"dtls_mtu" yaml:"dtls_mtu"`             // bytes of UDP payload per datagram, DTLS record included
	ReconnectMin   time.Duration `mapstructure:"reconnect_min" yaml:"reconnect_min"`
	ReconnectMax   time.Duration `mapstructure:"reconnect_max" yaml:"reconnect_max"`
	// TelemetryInterval is how often a link telemetry record is spooled.
	TelemetryInterval time.Duration `mapstructure:"telemetry_interval" yaml:"telemetry_interval"`
	// CertExpiryWarning: a certificate (own or CA) expiring within this
	// raises the telemetry record to a warning.
	CertExpiryWarning time.Duration `mapstructure:"cert_expiry_warning" yaml:"cert_expiry_warning"`
}

// Endpoint is one collector.
type Endpoint struct {
	Address    string    `mapstructure:"address" yaml:"address"`         // host:port
	ServerName string    `mapstructure:"server_name" yaml:"server_name"` // certificate name to expect; default: the host of address
	Transport  Transport `mapstructure:"transport" yaml:"transport"`     // tls or dtls; default tls
}

// Name is the endpoint as logs and telemetry show it: transport://address.
func (e Endpoint) Name() string { return string(e.transport()) + "://" + e.Address }

// Server is the name its certificate must carry.
func (e Endpoint) Server() string {
	if e.ServerName != "" {
		return e.ServerName
	}
	h, _, _ := net.SplitHostPort(e.Address)
	return h
}

func (e Endpoint) transport() Transport {
	if e.Transport == "" {
		return TransportTLS
	}
	return e.Transport
}

// Proto is the endpoint's transport, tls when not given.
func (e Endpoint) Proto() Transport { return e.transport() }

// DefaultConfig has no endpoint: the uplink is off until one is named.
func DefaultConfig() Config {
	return Config{
		Mode:              ModeFailover,
		Compression:       "zstd",
		CompressionLevel:  3,
		BatchMaxRecords:   1000,
		BatchMaxBytes:     1 << 20,
		FlushInterval:     200 * time.Millisecond,
		FlushWhenIdle:     true,
		Window:            64,
		ConnectTimeout:    10 * time.Second,
		AckTimeout:        30 * time.Second,
		Keepalive:         15 * time.Second,
		ProbeInterval:     30 * time.Second,
		DTLSMTU:           1200,
		ReconnectMin:      time.Second,
		ReconnectMax:      time.Minute,
		TelemetryInterval: time.Minute,
		CertExpiryWarning: 30 * 24 * time.Hour,
	}
}

// Enabled reports whether any endpoint is configured.
func (c Config) Enabled() bool { return len(c.Endpoints) > 0 }

// Codec is the configured compression.
func (c Config) Codec() Codec {
	if c.Compression == "zstd" {
		return CodecZstd
	}
	return CodecNone
}

// Validate checks the configuration without I/O; errors name the key.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	seen := map[string]int{}
	for i, e := range c.Endpoints {
		if _, port, err := net.SplitHostPort(e.Address); err != nil || port == "" {
			add(fmt.Sprintf("endpoints[%d].address", i), "%q is not host:port", e.Address)
		}
		if t := e.transport(); t != TransportTLS && t != TransportDTLS {
			add(fmt.Sprintf("endpoints[%d].transport", i), "%q is not tls or dtls", e.Transport)
		}
		if j, dup := seen[e.Name()]; dup {
			add(fmt.Sprintf("endpoints[%d]", i), "%s is already endpoints[%d]", e.Name(), j)
		}
		seen[e.Name()] = i
	}
	if c.Mode != ModeFailover && c.Mode != ModeBalance {
		add("mode", "%q is not failover or balance", c.Mode)
	}
	if c.Enabled() {
		if err := c.TLS.Validate(); err != nil {
			errs = append(errs, prefixErrors("tls.", err))
		}
	}
	if c.Compression != "zstd" && c.Compression != "none" {
		add("compression", "%q is not zstd or none", c.Compression)
	}
	if c.CompressionLevel < 1 || c.CompressionLevel > 22 {
		add("compression_level", "%d is outside 1..22", c.CompressionLevel)
	}
	if c.BatchMaxRecords < 1 || c.BatchMaxRecords > 100000 {
		add("batch_max_records", "%d is outside 1..100000", c.BatchMaxRecords)
	}
	if c.BatchMaxBytes < 1024 || c.BatchMaxBytes > DefaultMaxFrame/2 {
		add("batch_max_bytes", "%d is outside 1024..%d", c.BatchMaxBytes, DefaultMaxFrame/2)
	}
	if c.DTLSMTU < 576 || c.DTLSMTU > 65000 {
		add("dtls_mtu", "%d is outside 576..65000", c.DTLSMTU)
	}
	if c.Window < 1 || c.Window > 64 {
		add("window", "%d is outside 1..64", c.Window)
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{{"flush_interval", c.FlushInterval}, {"connect_timeout", c.ConnectTimeout}, {"ack_timeout", c.AckTimeout},
		{"keepalive", c.Keepalive}, {"probe_interval", c.ProbeInterval},
		{"reconnect_min", c.ReconnectMin}, {"reconnect_max", c.ReconnectMax},
		{"telemetry_interval", c.TelemetryInterval}, {"cert_expiry_warning", c.CertExpiryWarning}} {
		if d.val <= 0 {
			add(d.key, "%s must be positive", d.val)
		}
	}
	if c.FlushInterval > time.Minute {
		add("flush_interval", "%s is above 1m", c.FlushInterval)
	}
	if c.ReconnectMax < c.ReconnectMin {
		add("reconnect_max", "%s is below reconnect_min %s", c.ReconnectMax, c.ReconnectMin)
	}
	if c.TelemetryInterval > 0 && c.TelemetryInterval < time.Second {
		add("telemetry_interval", "%s is below 1s", c.TelemetryInterval)
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
