package uplink

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	ok := func() Config {
		c := DefaultConfig()
		c.TLS = TLSConfig{CA: "ca.pem", Cert: "c.pem", Key: "k.pem"}
		c.Endpoints = []Endpoint{{Address: "a:7443"}, {Address: "a:7444", Transport: TransportDTLS}}
		return c
	}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"transport", func(c *Config) { c.Endpoints[0].Transport = "quic" }, `endpoints[0].transport: "quic" is not tls or dtls`},
		{"duplicate", func(c *Config) { c.Endpoints[1] = c.Endpoints[0] }, "endpoints[1]: tls://a:7443 is already endpoints[0]"},
		{"mode", func(c *Config) { c.Mode = "roundrobin" }, `mode: "roundrobin" is not failover or balance`},
		{"compression", func(c *Config) { c.Compression = "gzip" }, `compression: "gzip" is not zstd or none`},
		{"level", func(c *Config) { c.CompressionLevel = 23 }, "compression_level: 23 is outside 1..22"},
		{"flush", func(c *Config) { c.FlushInterval = 0 }, "flush_interval: 0s must be positive"},
		{"flush long", func(c *Config) { c.FlushInterval = time.Hour }, "flush_interval: 1h0m0s is above 1m"},
		{"telemetry", func(c *Config) { c.TelemetryInterval = time.Millisecond }, "telemetry_interval: 1ms is below 1s"},
		{"mtu", func(c *Config) { c.DTLSMTU = 100 }, "dtls_mtu: 100 is outside 576..65000"},
		{"tls", func(c *Config) { c.TLS.CA = "" }, "tls.ca: required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok()
			c.edit(&cfg)
			err := cfg.Validate()
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.want)
		})
	}
	require.Equal(t, "dtls://a:7444", ok().Endpoints[1].Name())
	require.Equal(t, "a", ok().Endpoints[1].Server())
	require.Equal(t, CodecZstd, ok().Codec())
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want Reason
	}{
		{nil, ReasonNone},
		{fmt.Errorf("x: %w", &Error{Code: ErrIdentity, Message: "no"}), ReasonRefusedID},
		{&Error{Code: ErrVersion}, ReasonVersion},
		{&Error{Code: ErrSink}, ReasonPeer},
		{fmt.Errorf("tls: %w", x509.UnknownAuthorityError{}), ReasonUnknownCA},
		{x509.CertificateInvalidError{Reason: x509.Expired}, ReasonExpired},
		{x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}, ReasonBadCertificate},
		{errors.New("remote error: tls: unknown certificate authority"), ReasonUnknownCA},
		{errors.New("remote error: tls: expired certificate"), ReasonExpired},
		{errors.New("remote error: tls: bad certificate"), ReasonBadCertificate},
		{errors.New("tls: server selected unsupported protocol version 301"), ReasonVersion},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), ReasonTimeout},
		{&net.OpError{Op: "read", Err: timeoutErr{}}, ReasonTimeout},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, ReasonRefused},
		{errors.New("something else"), ReasonOther},
	}
	for _, c := range cases {
		require.Equal(t, c.want, Classify(c.err), "%v", c.err)
	}
}
