package gateway

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/syslog"
	"github.com/weirgw/weir/spool"
)

func TestLoadOptionalInputs(t *testing.T) {
	l, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), false)
	require.NoError(t, err)
	require.Nil(t, l.Inputs.Syslog, "syslog opens ports: off unless configured")
	require.Nil(t, l.Inputs.Audit, "audit off unless configured")
	require.Nil(t, l.Inputs.Integrity, "integrity off unless configured")

	sl, au, fim := syslog.DefaultConfig(), audit.DefaultConfig(), integrity.DefaultConfig()
	cases := []struct {
		name, body string
		syslog     *syslog.Config
		audit      *audit.Config
		integrity  *integrity.Config
	}{
		{"null is off", "inputs: {syslog: null, audit: null, integrity: null}", nil, nil, nil},
		{"empty mappings take every default", "inputs: {syslog: {}, audit: {}, integrity: {}}", &sl, &au, &fim},
		{"omitted keys keep the defaults", `
inputs:
  syslog:
    tcp: {listen: ""}
    rate_limit: {messages_per_second: 50}
    idle_timeout: 30s
  audit:
    path: /srv/audit/audit.log
    start_at: end
  integrity:
    paths: [/srv/site, /opt/app]
    exclude: ["*.swp"]
    max_file_bytes: 1MiB
`, func() *syslog.Config {
			c := syslog.DefaultConfig()
			c.TCP.Listen, c.RateLimit.MessagesPerSecond, c.IdleTimeout = "", 50, 30*time.Second
			return &c
		}(), func() *audit.Config {
			c := audit.DefaultConfig()
			c.Path, c.StartAt = "/srv/audit/audit.log", audit.StartAtEnd
			return &c
		}(), func() *integrity.Config {
			c := integrity.DefaultConfig()
			c.Paths, c.Exclude, c.MaxFileBytes = []string{"/srv/site", "/opt/app"}, []string{"*.swp"}, spool.ByteSize(1<<20)
			return &c
		}()},
		{"audit from the kernel", `
inputs:
  audit:
    source: netlink
    mode: unicast
    rules: ["-w /etc/shadow -p wa -k shadow"]
    backlog_limit: 4096
    rate_limit: 0
`, nil, func() *audit.Config {
			c := audit.DefaultConfig()
			c.Source, c.Mode, c.Rules = audit.SourceNetlink, audit.ModeUnicast, []string{"-w /etc/shadow -p wa -k shadow"}
			limit, rate := 4096, 0
			c.BacklogLimit, c.RateLimit = &limit, &rate
			return &c
		}(), nil},
		{"an empty list replaces the default paths", "inputs: {integrity: {paths: []}}", nil, nil, func() *integrity.Config {
			c := integrity.DefaultConfig()
			c.Paths = []string{}
			return &c
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := Load(writeConfig(t, c.body), true)
			require.NoError(t, err)
			require.Equal(t, c.syslog, l.Inputs.Syslog)
			require.Equal(t, c.audit, l.Inputs.Audit)
			require.Equal(t, c.integrity, l.Inputs.Integrity)

			// The printed configuration loads back to the same one.
			out, err := yaml.Marshal(l.Redacted().Map())
			require.NoError(t, err)
			again, err := Load(writeConfig(t, string(out)), true)
			require.NoError(t, err, "printed:\n%s", out)
			require.Equal(t, l.Inputs.Syslog, again.Inputs.Syslog)
			require.Equal(t, l.Inputs.Audit, again.Inputs.Audit)
			require.Equal(t, noExclude(l.Inputs.Integrity), noExclude(again.Inputs.Integrity))
		})
	}
}

// noExclude makes an empty exclude list nil: printed, both are [].
func noExclude(c *integrity.Config) *integrity.Config {
	if c == nil || len(c.Exclude) > 0 {
		return c
	}
	d := *c
	d.Exclude = nil
	return &d
}

func TestLoadOptionalInputsErrors(t *testing.T) {
	cases := []struct{ body, want string }{
		{"inputs: {syslog: {udp: {listn: x}}}", "inputs.syslog.udp: unknown key `listn`; did you mean `listen`?"},
		{"inputs: {syslog: 5}", "inputs.syslog"},
		{"inputs: {syslog: {udp: {listen: ':514'}}}", `inputs.syslog.udp.listen: ":514": no host`},
		{"inputs: {syslog: {udp: {listen: ''}, tcp: {listen: ''}}}", "inputs.syslog.udp.listen, tcp.listen, tls.listen: none is set"},
		{"inputs: {syslog: {tls: {listen: '127.0.0.1:6514'}}}", "inputs.syslog.tls.cert_file: must be given"},
		{"inputs: {audit: {start_at: middle}}", `inputs.audit.start_at: "middle" is not beginning or end`},
		{"inputs: {audit: {poll_interval: often}}", "poll_interval"},
		{"inputs: {audit: {source: netlink, rules: ['-w /etc/shadow -p wa', '-a always,exit -S nosuchcall']}}", `inputs.audit.rules[1]: "-a always,exit -S nosuchcall": failed to add syscall 'nosuchcall'`},
		{"inputs: {audit: {source: netlink, mode: multicast, backlog_limit: 8192}}", "inputs.audit.backlog_limit: refused with mode multicast"},
		{"inputs: {audit: {rules: ['-w /etc/shadow']}}", "inputs.audit.rules: applies only with source: netlink"},
		{"inputs: {audit: {source: netlink, backlog_limit: -1}}", "backlog_limit"},
		{"inputs: {integrity: {paths: [etc]}}", `inputs.integrity.paths: "etc" is not absolute`},
		{"inputs: {integrity: {max_file_bytes: lots}}", "max_file_bytes"},
		{"inputs: {integrity: {rescan_interval: 10ms}}", "inputs.integrity.rescan_interval: 10ms is below"},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			_, err := Load(writeConfig(t, c.body), true)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestRedactedSharesNoInput(t *testing.T) {
	l, err := Load(writeConfig(t, "inputs: {syslog: {}, audit: {}, integrity: {paths: [/srv]}}"), true)
	require.NoError(t, err)
	r := l.Redacted()
	r.Inputs.Syslog.Name, r.Inputs.Audit.Name, r.Inputs.Integrity.Paths[0] = "x", "x", "/x"
	require.Equal(t, "syslog", l.Inputs.Syslog.Name)
	require.Equal(t, "audit", l.Inputs.Audit.Name)
	require.Equal(t, "/srv", l.Inputs.Integrity.Paths[0])
}

// TestIntegrityExcludesDataDir: the data directory is left out, however
// odd its name, so spooling a record never makes another.
func TestIntegrityExcludesDataDir(t *testing.T) {
	base := t.TempDir()
	for _, name := range []string{"data", "da*ta", "d[a]ta", `d\ata`, "d?ta"} {
		dir := filepath.Join(base, name)
		ic := integrityConfig(integrity.Config{Exclude: []string{"*.swp"}}, dir)
		require.Len(t, ic.Exclude, 2)
		require.Equal(t, "*.swp", ic.Exclude[0], "the configured globs stay")
		ok, err := filepath.Match(ic.Exclude[1], dir)
		require.NoError(t, err)
		require.True(t, ok, "%s excluded by %q", dir, ic.Exclude[1])
		other, _ := filepath.Match(ic.Exclude[1], filepath.Join(base, "dxta"))
		require.False(t, other, "%q matches no other directory", ic.Exclude[1])
	}
	// A relative data directory is made absolute, as integrity's paths are.
	wd, err := os.Getwd()
	require.NoError(t, err)
	ic := integrityConfig(integrity.Config{}, "weir-data")
	require.Equal(t, []string{filepath.Join(wd, "weir-data")}, ic.Exclude)
}
