package syslog

import (
	"strings"
	"testing"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestDefaultConfigIsLoopback(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, c.Validate())
	assert.True(t, strings.HasPrefix(c.UDP.Listen, "127.0.0.1:"))
	assert.True(t, strings.HasPrefix(c.TCP.Listen, "127.0.0.1:"))
	assert.Empty(t, c.TLS.Listen, "TLS needs certificates: off by default")
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want string // substring naming the key; "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"zero values take defaults", func(c *Config) { *c = Config{TCP: ListenConfig{Listen: "127.0.0.1:601"}} }, ""},
		{"nothing listens", func(c *Config) { c.UDP.Listen, c.TCP.Listen = "", "" }, "none is set"},
		{"no host", func(c *Config) { c.UDP.Listen = ":514" }, "udp.listen: \":514\": no host"},
		{"bad port", func(c *Config) { c.TCP.Listen = "127.0.0.1:syslog" }, "tcp.listen"},
		{"not host:port", func(c *Config) { c.TCP.Listen = "127.0.0.1" }, "tcp.listen: \"127.0.0.1\": not host:port"},
		{"tls without cert", func(c *Config) { c.TLS = TLSConfig{Listen: "127.0.0.1:6514", ClientAuth: ClientAuthNone} }, "tls.cert_file"},
		{"tls require without ca", func(c *Config) {
			c.TLS = TLSConfig{Listen: "127.0.0.1:6514", CertFile: "c", KeyFile: "k"}
		}, "tls.client_ca_file"},
		{"tls none", func(c *Config) {
			c.TLS = TLSConfig{Listen: "127.0.0.1:6514", CertFile: "c", KeyFile: "k", ClientAuth: ClientAuthNone}
		}, ""},
		{"client_auth word", func(c *Config) { c.TLS.ClientAuth = "optional" }, "tls.client_auth: \"optional\""},
		{"message too small", func(c *Config) { c.MaxMessageBytes = 100 }, "max_message_bytes"},
		{"message too large", func(c *Config) { c.MaxMessageBytes = 1 << 20 }, "max_message_bytes"},
		{"connections", func(c *Config) { c.MaxConnections = -1 }, "max_connections"},
		{"idle", func(c *Config) { c.IdleTimeout = -time.Second }, "idle_timeout"},
		{"per address", func(c *Config) { c.MaxConnectionsPerAddress = -1 }, "max_connections_per_address"},
		{"handshakes", func(c *Config) { c.TLS.MaxHandshakes = MaxMaxConnections + 1 }, "tls.max_handshakes"},
		{"handshake timeout", func(c *Config) { c.TLS.HandshakeTimeout = -time.Second }, "tls.handshake_timeout"},
		{"first byte", func(c *Config) { c.FirstByteTimeout = -time.Second }, "first_byte_timeout"},
		{"rate", func(c *Config) { c.RateLimit.MessagesPerSecond = -1 }, "rate_limit.messages_per_second"},
		{"burst", func(c *Config) { c.RateLimit.Burst = -1 }, "rate_limit.burst"},
		{"priority", func(c *Config) { c.Priority = "urgent" }, "priority"},
		{"name", func(c *Config) { c.Name = "sys log" }, "name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestNewRefusesBadFiles(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TLS = TLSConfig{Listen: "127.0.0.1:0", CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem", ClientAuth: ClientAuthNone}
	_, err := New(cfg, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tls.cert_file /nonexistent/c.pem")

	cfg = DefaultConfig()
	cfg.Timezone = "Mars/Olympus"
	_, err = New(cfg, nil)
	require.ErrorContains(t, err, "timezone")
}

// TestExampleYAML: the example decodes strictly (every key known) onto
// the defaults, validates, and shows the defaults as they are.
func TestExampleYAML(t *testing.T) {
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal(ExampleYAML(), &raw))
	cfg := DefaultConfig()
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result: &cfg, ErrorUnused: true, WeaklyTypedInput: true,
		DecodeHook: mapstructure.StringToTimeDurationHookFunc(),
	})
	require.NoError(t, err)
	require.NoError(t, d.Decode(raw), "decode example.yaml")
	require.NoError(t, cfg.Validate())
	assert.Equal(t, DefaultConfig(), cfg, "example.yaml shows the defaults")
}
