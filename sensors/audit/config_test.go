package audit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want []string // substrings of the error; none: valid
	}{
		{name: "default", edit: func(*Config) {}},
		{name: "zero values take defaults", edit: func(c *Config) { *c = Config{} }},
		{name: "name", edit: func(c *Config) { c.Name = "audit log" }, want: []string{`name: "audit log" may hold only`}},
		{name: "path", edit: func(c *Config) { c.Path = "/var/log/audit/" }, want: []string{`path: "/var/log/audit/" does not name a file`}},
		{name: "start_at", edit: func(c *Config) { c.StartAt = "middle" }, want: []string{`start_at: "middle" is not beginning or end`}},
		{name: "poll_interval", edit: func(c *Config) { c.PollInterval = -time.Second }, want: []string{"poll_interval: -1s out of range"}},
		{name: "event_timeout", edit: func(c *Config) { c.EventTimeout = time.Hour }, want: []string{"event_timeout: 1h0m0s out of range"}},
		{name: "max_line_bytes small", edit: func(c *Config) { c.MaxLineBytes = 100 }, want: []string{"max_line_bytes: 100 out of range 256..16384"}},
		{name: "max_line_bytes big", edit: func(c *Config) { c.MaxLineBytes = 1 << 20 }, want: []string{"max_line_bytes: 1048576 out of range"}},
		{name: "raw", edit: func(c *Config) { c.Raw = "yes" }, want: []string{`raw: "yes" is not lines or none`}},
		{
			name: "several",
			edit: func(c *Config) { c.Raw, c.StartAt = "x", "y" },
			want: []string{"raw:", "start_at:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			_, err = New(c, newFakeSpool(), nil)
			require.ErrorContains(t, err, "audit: ")
		})
	}
}

func TestNewNeedsCheckpoints(t *testing.T) {
	_, err := New(DefaultConfig(), nil, nil)
	require.ErrorContains(t, err, "no checkpoint store")
}

// TestExampleYAML: the example parses into DefaultConfig, key by key.
func TestExampleYAML(t *testing.T) {
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal(ExampleYAML(), &raw))
	d := DefaultConfig()
	require.Equal(t, map[string]any{
		"name": d.Name, "path": d.Path, "start_at": d.StartAt, "poll_interval": d.PollInterval.String(),
		"event_timeout": d.EventTimeout.String(), "max_line_bytes": d.MaxLineBytes, "raw": d.Raw,
	}, raw)
}
