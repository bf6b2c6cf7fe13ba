package audit

import (
	"regexp"
	"strconv"
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
		{name: "source", edit: func(c *Config) { c.Source = "kernel" }, want: []string{`source: "kernel" is not file or netlink`}},
		{name: "netlink", edit: func(c *Config) { c.Source = SourceNetlink }},
		{name: "netlink zero values", edit: func(c *Config) { *c = Config{Source: SourceNetlink} }},
		{name: "mode", edit: func(c *Config) { c.Source, c.Mode = SourceNetlink, "broadcast" }, want: []string{`mode: "broadcast" is not unicast, multicast or auto`}},
		{name: "mode without netlink", edit: func(c *Config) { c.Mode = ModeUnicast }, want: []string{`mode: "unicast" applies only with source: netlink`}},
		{name: "rules without netlink", edit: func(c *Config) { c.Rules = []string{"-w /etc/shadow -p wa"} }, want: []string{"rules: applies only with source: netlink"}},
		{name: "backlog without netlink", edit: func(c *Config) { c.BacklogLimit = ptr(10) }, want: []string{"backlog_limit: applies only with source: netlink"}},
		{name: "unicast settings", edit: func(c *Config) {
			c.Source, c.Mode = SourceNetlink, ModeUnicast
			c.Rules = []string{"-w /etc/shadow -p wa -k shadow", "-a always,exit -S openat -F success=0 -k failed-open", "-a never,task"}
			c.BacklogLimit, c.RateLimit, c.BacklogWaitTime = ptr(MaxBacklogLimit), ptr(0), ptr(MaxBacklogWaitTime)
		}},
		{name: "multicast refuses what sets the kernel", edit: func(c *Config) {
			c.Source, c.Mode = SourceNetlink, ModeMulticast
			c.Rules = []string{"-w /etc/shadow"}
			c.BacklogLimit, c.RateLimit, c.BacklogWaitTime = ptr(8192), ptr(0), ptr(0)
		}, want: []string{
			"rules: refused with mode multicast: the multicast group is read-only",
			"backlog_limit: refused with mode multicast", "rate_limit: refused with mode multicast", "backlog_wait_time: refused with mode multicast",
		}},
		{name: "settings out of range", edit: func(c *Config) {
			c.Source = SourceNetlink
			c.BacklogLimit, c.RateLimit, c.BacklogWaitTime = ptr(0), ptr(-1), ptr(MaxBacklogWaitTime+1)
		}, want: []string{"backlog_limit: 0 out of range 1..1048576", "rate_limit: -1 out of range 0..1000000", "backlog_wait_time: 600001 out of range 0..600000"}},
		{name: "bad rules", edit: func(c *Config) {
			c.Source = SourceNetlink
			c.Rules = []string{"-w /etc/shadow -p wa", "-a always,exit -S nosuchcall", "-w /x -p z", "-D", "", "-w /etc/shadow -p wa", "-e 2", `-w "/unclosed`}
		}, want: []string{
			`rules[1]: "-a always,exit -S nosuchcall": failed to add syscall 'nosuchcall'`,
			`rules[2]: "-w /x -p z": invalid value "z" for flag -p`,
			`rules[3]: "-D": -D deletes rules, it is not one`,
			`rules[4]: "": empty rule`,
			`rules[5]: "-w /etc/shadow -p wa": the same rule as rules[0]`,
			`rules[6]: "-e 2": flag provided but not defined: -e`,
			`rules[7]: "-w \"/unclosed": Unterminated double-quoted string`,
		}},
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

func ptr(v int) *int { return &v }

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
		"source": d.Source, "mode": d.Mode, "rules": []any{},
	}, raw)
	// The kernel settings are shown commented: set, they are refused
	// with mode multicast.
	commented := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^# (\w+): (\d+) `).FindAllStringSubmatch(string(ExampleYAML()), -1) {
		commented[m[1]] = m[2]
	}
	require.Equal(t, map[string]string{
		"backlog_limit":     strconv.Itoa(DefaultBacklogLimit),
		"rate_limit":        strconv.Itoa(DefaultRateLimit),
		"backlog_wait_time": strconv.Itoa(DefaultBacklogWaitTime),
	}, commented)
	var c Config
	require.NoError(t, yaml.Unmarshal(ExampleYAML(), &c))
	c.Source = SourceNetlink
	require.NoError(t, c.Validate(), "the example with source netlink")
}
