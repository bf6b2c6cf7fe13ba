package syslog

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/weirgw/weir/event"
)

// ClientAuth says what the TLS listener asks of clients.
type ClientAuth string

const (
	ClientAuthNone    ClientAuth = "none"    // no client certificate asked for
	ClientAuthRequest ClientAuth = "request" // verified against client_ca_file when given
	ClientAuthRequire ClientAuth = "require" // mutual TLS: a valid one is required
)

// Defaults, also used for zero values in a Config.
const (
	DefaultName               = "syslog"
	DefaultUDPListen          = "127.0.0.1:514"
	DefaultTCPListen          = "127.0.0.1:514"
	DefaultMaxMessageBytes    = 64 << 10
	DefaultMaxConnections     = 256
	DefaultMaxPerAddress      = 8
	DefaultMaxHandshakes      = 16
	DefaultHandshakeTimeout   = 5 * time.Second
	DefaultFirstByteTimeout   = 10 * time.Second
	DefaultIdleTimeout        = time.Minute
	DefaultRate               = 1000
	DefaultBurst              = 2000
	DefaultDropReportInterval = time.Minute
	DefaultTimezone           = "Local"
)

// Limits enforced by Validate. A message (and its fields, which repeat
// parts of it) must fit one spool append of at most 208 KiB; RFC 5424
// asks receivers to take at least 2048 bytes.
const (
	MinMaxMessageBytes = 2048
	MaxMaxMessageBytes = 128 << 10
	MaxMaxConnections  = 65536
)

// Config configures syslog intake. Zero values take their defaults,
// except the listen addresses (empty: that listener is off) and
// rate_limit.messages_per_second (0: no rate limit). DefaultConfig turns
// UDP and TCP on at loopback and sets a rate limit.
type Config struct {
	// Name is the records' source.
	Name string       `mapstructure:"name" yaml:"name"`
	UDP  ListenConfig `mapstructure:"udp" yaml:"udp"`
	TCP  ListenConfig `mapstructure:"tcp" yaml:"tcp"`
	TLS  TLSConfig    `mapstructure:"tls" yaml:"tls"`
	// MaxMessageBytes bounds one message; longer ones are cut to it and
	// flagged truncated.
	MaxMessageBytes int `mapstructure:"max_message_bytes" yaml:"max_message_bytes"`
	// MaxConnections bounds the open connections of each stream listener,
	// TCP and TLS counted apart (a TLS connection from the end of its
	// handshake; handshakes have tls.max_handshakes). When all are taken,
	// the oldest that has not sent a byte yet is closed for a newcomer;
	// when every one has, the newcomer is closed at once. Both are
	// counted.
	MaxConnections int `mapstructure:"max_connections" yaml:"max_connections"`
	// MaxConnectionsPerAddress bounds the streams (TLS handshakes
	// included) of one IPv4 address or IPv6 /64 on each listener.
	MaxConnectionsPerAddress int `mapstructure:"max_connections_per_address" yaml:"max_connections_per_address"`
	// FirstByteTimeout closes a stream that sends nothing (after its TLS
	// handshake) for this long after it opened.
	FirstByteTimeout time.Duration `mapstructure:"first_byte_timeout" yaml:"first_byte_timeout"`
	// IdleTimeout closes a stream on which nothing arrived for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout" yaml:"idle_timeout"`
	// RateLimit is per sender IP address. Over it, a TLS sender with a
	// verified client certificate is paced (reading from it waits, so it
	// is held back and nothing is dropped); UDP, TCP and TLS senders
	// without one have the excess dropped, counted and reported.
	RateLimit RateLimitConfig `mapstructure:"rate_limit" yaml:"rate_limit"`
	// DropReportInterval is how often a record summarising the messages
	// dropped (rate limit, UDP socket overflow) is emitted, if any were.
	DropReportInterval time.Duration `mapstructure:"drop_report_interval" yaml:"drop_report_interval"`
	// Timezone of RFC 3164 timestamps, which carry none: an IANA name,
	// "UTC" or "Local".
	Timezone string `mapstructure:"timezone" yaml:"timezone"`
	// Priority of the records: normal, critical or bulk.
	Priority string `mapstructure:"priority" yaml:"priority"`
	// UDPReadBuffer is the UDP socket's receive buffer in bytes (SO_RCVBUF,
	// capped by the kernel's rmem_max); 0 keeps the system default.
	UDPReadBuffer int `mapstructure:"udp_read_buffer" yaml:"udp_read_buffer"`
}

// ListenConfig is a plain listener.
type ListenConfig struct {
	// Listen is host:port; empty turns the listener off. The host must be
	// given: 127.0.0.1 for this board only, 0.0.0.0 or [::] for all.
	Listen string `mapstructure:"listen" yaml:"listen"`
}

// TLSConfig is the TLS listener (RFC 5425). The files are read again at
// every handshake, so renewed certificates take effect without a restart.
type TLSConfig struct {
	Listen   string `mapstructure:"listen" yaml:"listen"`
	CertFile string `mapstructure:"cert_file" yaml:"cert_file"`
	KeyFile  string `mapstructure:"key_file" yaml:"key_file"`
	// ClientCAFile holds the CA certificates (PEM) client certificates
	// must chain to.
	ClientCAFile string `mapstructure:"client_ca_file" yaml:"client_ca_file"`
	// ClientAuth is none, request or require (default).
	ClientAuth ClientAuth `mapstructure:"client_auth" yaml:"client_auth"`
	// MaxHandshakes bounds the handshakes in progress: unauthenticated
	// peers wait there, apart from the connections of senders that
	// completed theirs. When all are taken, the oldest whose peer has not
	// sent a byte is closed for a newcomer.
	MaxHandshakes int `mapstructure:"max_handshakes" yaml:"max_handshakes"`
	// HandshakeTimeout bounds one handshake.
	HandshakeTimeout time.Duration `mapstructure:"handshake_timeout" yaml:"handshake_timeout"`
}

// RateLimitConfig is a token bucket per sender IP address. The default,
// 1000 messages/s with a burst of 2000, is far above a device's normal
// logging, so it only acts on a fault or a flood and keeps one sender
// from taking the spool from the others.
type RateLimitConfig struct {
	// MessagesPerSecond refills the bucket; 0 turns rate limiting off
	// (and pacing with it).
	MessagesPerSecond float64 `mapstructure:"messages_per_second" yaml:"messages_per_second"`
	// Burst is the bucket's size; 0 means one second's worth.
	Burst int `mapstructure:"burst" yaml:"burst"`
}

// DefaultConfig listens on UDP and TCP port 514 at loopback, with TLS off
// and 1000 messages/s (burst 2000) per sender: dropped over it, paced for
// TLS senders with a verified client certificate.
func DefaultConfig() Config {
	return Config{
		Name: DefaultName,
		UDP:  ListenConfig{Listen: DefaultUDPListen},
		TCP:  ListenConfig{Listen: DefaultTCPListen},
		TLS: TLSConfig{ClientAuth: ClientAuthRequire, MaxHandshakes: DefaultMaxHandshakes,
			HandshakeTimeout: DefaultHandshakeTimeout},
		MaxMessageBytes:          DefaultMaxMessageBytes,
		MaxConnections:           DefaultMaxConnections,
		MaxConnectionsPerAddress: DefaultMaxPerAddress,
		FirstByteTimeout:         DefaultFirstByteTimeout,
		IdleTimeout:              DefaultIdleTimeout,
		RateLimit:                RateLimitConfig{MessagesPerSecond: DefaultRate, Burst: DefaultBurst},
		DropReportInterval:       DefaultDropReportInterval,
		Timezone:                 DefaultTimezone,
		Priority:                 event.PriorityNormal.String(),
	}
}

// Validate checks c without I/O. Errors name the key relative to c, e.g.
// `tls.cert_file: must be given with tls.listen`; several are joined.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Name != "" {
		if err := event.CheckSourceName(c.Name); err != nil {
			add("name: %v", err)
		}
	}
	if c.UDP.Listen == "" && c.TCP.Listen == "" && c.TLS.Listen == "" {
		add("udp.listen, tcp.listen, tls.listen: none is set, so nothing would listen")
	}
	for _, l := range [...]struct{ key, addr string }{{"udp.listen", c.UDP.Listen}, {"tcp.listen", c.TCP.Listen}, {"tls.listen", c.TLS.Listen}} {
		if l.addr == "" {
			continue
		}
		if err := checkListen(l.addr); err != nil {
			add("%s: %q: %v", l.key, l.addr, err)
		}
	}
	if c.TLS.Listen != "" {
		if c.TLS.CertFile == "" {
			add("tls.cert_file: must be given with tls.listen")
		}
		if c.TLS.KeyFile == "" {
			add("tls.key_file: must be given with tls.listen")
		}
	}
	switch c.TLS.ClientAuth {
	case "", ClientAuthRequire, ClientAuthRequest:
		if c.TLS.Listen != "" && c.TLS.ClientCAFile == "" {
			add("tls.client_ca_file: must be given when tls.client_auth is %s (the default is require; none turns client certificates off)", or(c.TLS.ClientAuth, ClientAuthRequire))
		}
	case ClientAuthNone:
	default:
		add("tls.client_auth: %q is not none, request or require", c.TLS.ClientAuth)
	}
	if c.MaxMessageBytes != 0 && (c.MaxMessageBytes < MinMaxMessageBytes || c.MaxMessageBytes > MaxMaxMessageBytes) {
		add("max_message_bytes: %d is outside %d-%d", c.MaxMessageBytes, MinMaxMessageBytes, MaxMaxMessageBytes)
	}
	if c.MaxConnections < 0 || c.MaxConnections > MaxMaxConnections {
		add("max_connections: %d is outside 0-%d", c.MaxConnections, MaxMaxConnections)
	}
	if c.MaxConnectionsPerAddress < 0 || c.MaxConnectionsPerAddress > MaxMaxConnections {
		add("max_connections_per_address: %d is outside 0-%d", c.MaxConnectionsPerAddress, MaxMaxConnections)
	}
	if c.TLS.MaxHandshakes < 0 || c.TLS.MaxHandshakes > MaxMaxConnections {
		add("tls.max_handshakes: %d is outside 0-%d", c.TLS.MaxHandshakes, MaxMaxConnections)
	}
	if c.TLS.HandshakeTimeout < 0 {
		add("tls.handshake_timeout: %s is negative", c.TLS.HandshakeTimeout)
	}
	if c.FirstByteTimeout < 0 {
		add("first_byte_timeout: %s is negative", c.FirstByteTimeout)
	}
	if c.IdleTimeout < 0 {
		add("idle_timeout: %s is negative", c.IdleTimeout)
	}
	if c.DropReportInterval < 0 {
		add("drop_report_interval: %s is negative", c.DropReportInterval)
	}
	if c.RateLimit.MessagesPerSecond < 0 || c.RateLimit.MessagesPerSecond > 1e9 {
		add("rate_limit.messages_per_second: %g is outside 0-1e9", c.RateLimit.MessagesPerSecond)
	}
	if c.RateLimit.Burst < 0 {
		add("rate_limit.burst: %d is negative", c.RateLimit.Burst)
	}
	if c.Priority != "" {
		if _, err := event.ParsePriority(c.Priority); err != nil {
			add("priority: %q is not normal, critical or bulk", c.Priority)
		}
	}
	if c.UDPReadBuffer < 0 {
		add("udp_read_buffer: %d is negative", c.UDPReadBuffer)
	}
	return errors.Join(errs...)
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// checkListen accepts host:port with a host and a numeric port.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not host:port")
	}
	if host == "" {
		return errors.New("no host: give 127.0.0.1 for this board only, 0.0.0.0 or [::] for every interface")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number 0-65535", port)
	}
	return nil
}

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Name = or(c.Name, d.Name)
	c.TLS.ClientAuth = or(c.TLS.ClientAuth, d.TLS.ClientAuth)
	c.MaxMessageBytes = or(c.MaxMessageBytes, d.MaxMessageBytes)
	c.MaxConnections = or(c.MaxConnections, d.MaxConnections)
	c.MaxConnectionsPerAddress = or(c.MaxConnectionsPerAddress, d.MaxConnectionsPerAddress)
	c.TLS.MaxHandshakes = or(c.TLS.MaxHandshakes, d.TLS.MaxHandshakes)
	c.TLS.HandshakeTimeout = or(c.TLS.HandshakeTimeout, d.TLS.HandshakeTimeout)
	c.FirstByteTimeout = or(c.FirstByteTimeout, d.FirstByteTimeout)
	c.IdleTimeout = or(c.IdleTimeout, d.IdleTimeout)
	c.DropReportInterval = or(c.DropReportInterval, d.DropReportInterval)
	c.Timezone = or(c.Timezone, d.Timezone)
	c.Priority = or(c.Priority, d.Priority)
	if c.RateLimit.MessagesPerSecond > 0 && c.RateLimit.Burst == 0 {
		c.RateLimit.Burst = max(1, int(c.RateLimit.MessagesPerSecond))
	}
	return c
}
