package gateway

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirgw/weir/ptp"
	"go.yaml.in/yaml/v3"
)

// copyConfig copies a testdata config into a private file with mode perm.
func copyConfig(t *testing.T, name string, perm os.FileMode) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/config", name))
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, perm))
	require.NoError(t, os.Chmod(p, perm))
	return p
}

func TestLoadDefaults(t *testing.T) {
	l, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), false)
	require.NoError(t, err)
	require.Empty(t, l.File)
	host, _ := os.Hostname()
	require.Equal(t, host, l.Gateway.ID)
	require.False(t, l.Uplink.Enabled(), "no uplink by default")
	require.Len(t, l.Inputs.Files, 1)
	require.Equal(t, 250*time.Millisecond, l.Inputs.Files[0].PollInterval)
	require.Equal(t, "127.0.0.1:9464", l.Metrics.Listen, "metrics on loopback by default")
	require.Equal(t, ptp.DefaultConfig(), l.Clock, "default.yaml's clock block is ptp's default")
}

func TestLoadFile(t *testing.T) {
	p := copyConfig(t, "good.yaml", 0o600)
	l, err := Load(p, true)
	require.NoError(t, err)
	require.Equal(t, p, l.File)
	require.Equal(t, "gw-test", l.Gateway.ID)
	require.Equal(t, 500, l.Uplink.BatchMaxRecords)
	require.Equal(t, 45*time.Second, l.Uplink.AckTimeout)
	require.Equal(t, 64, l.Uplink.Window, "keys the file omits keep their defaults")
	require.Len(t, l.Inputs.Files, 1)
	f := l.Inputs.Files[0]
	require.Equal(t, "app", f.Name)
	require.Equal(t, 250*time.Millisecond, f.PollInterval, "an input item's omitted keys keep the input's defaults")
	require.Empty(t, l.Warnings)
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		file string
		perm os.FileMode
		want []string
	}{
		{"unknown-key.yaml", 0o600, []string{"unknown-key.yaml:4:3: uplink: unknown key `windw`; did you mean `window`?"}},
		{"bad-value.yaml", 0o600, []string{"bad-value.yaml:4:11: uplink.window: found \"lots\", expected a whole number"}},
		{"bad-yaml.yaml", 0o600, []string{"bad-yaml.yaml:2: not valid YAML: did not find expected key"}},
		{"invalid.yaml", 0o600, []string{"invalid.yaml", "gateway.id", "log.level: \"loud\"",
			`uplink.endpoints[0].address: "collector-without-port" is not host:port`, "uplink.tls.ca: required"}},
		{"clock-invalid.yaml", 0o600, []string{"clock-invalid.yaml", "clock.holdover.offset_threshold: 0s must be positive",
			"clock.holdover.frequency_uncertainty_ppb: -5 must be in", "clock.holdover.limit: -1s must not be negative"}},
		{"good.yaml", 0o664, []string{"good.yaml", "group- or world-writable", "0664"}},
		{"good.yaml", 0o602, []string{"world-writable"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, err := Load(copyConfig(t, c.file, c.perm), true)
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), true)
	require.ErrorContains(t, err, "absent.yaml: no such file")
}

func TestWorldReadableSecretsWarn(t *testing.T) {
	l, err := Load(copyConfig(t, "good.yaml", 0o644), true)
	require.NoError(t, err)
	require.Len(t, l.Warnings, 1)
	require.Contains(t, l.Warnings[0], "world-readable")
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("WEIR_GATEWAY_ID", "from-env")
	t.Setenv("WEIR_UPLINK_BATCH_MAX_RECORDS", "77")
	t.Setenv("WEIR_UPLINK_ACK_TIMEOUT", "5s")
	l, err := Load(copyConfig(t, "good.yaml", 0o600), true)
	require.NoError(t, err)
	require.Equal(t, "from-env", l.Gateway.ID)
	require.Equal(t, 77, l.Uplink.BatchMaxRecords)
	require.Equal(t, 5*time.Second, l.Uplink.AckTimeout)
	require.Equal(t, []string{"WEIR_GATEWAY_ID", "WEIR_UPLINK_ACK_TIMEOUT", "WEIR_UPLINK_BATCH_MAX_RECORDS"}, l.Env)

	t.Setenv("WEIR_UPLINK_WINDOW", "many")
	_, err = Load("", false)
	require.ErrorContains(t, err, "WEIR_UPLINK_WINDOW")
	require.ErrorContains(t, err, "uplink.window")
}

func TestEnvUnknownKey(t *testing.T) {
	t.Setenv("WEIR_UPLINK_WINDWO", "3")
	_, err := Load("", false)
	require.EqualError(t, err, "config environment WEIR_UPLINK_WINDWO: names no configuration key; did you mean `WEIR_UPLINK_WINDOW`?")
}

func TestRedactedMap(t *testing.T) {
	l, err := Load(copyConfig(t, "good.yaml", 0o600), true)
	require.NoError(t, err)
	out, err := yaml.Marshal(l.Redacted().Map())
	require.NoError(t, err)
	s := string(out)
	require.NotContains(t, s, "c2VjcmV0", "secrets never printed")
	require.Contains(t, s, "key_pem: <redacted>")
	require.Contains(t, s, "ack_timeout: 45s", "durations print as strings")
	require.Contains(t, s, "poll_interval: 250ms")
	require.NotEqual(t, "<redacted>", l.Uplink.TLS.KeyPEM, "redaction works on a copy")

	// The printed configuration is itself a valid configuration file.
	p := filepath.Join(t.TempDir(), "printed.yaml")
	require.NoError(t, os.WriteFile(p, out, 0o600))
	_, err = Load(p, true)
	require.NoError(t, err)
}

func TestDefaultYAMLMatchesStruct(t *testing.T) {
	// Every default key must decode into the struct (ErrorUnused), and the
	// printed effective defaults must name every key of default.yaml.
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(DefaultYAML(), &doc))
	l, err := Load("", false)
	require.NoError(t, err)
	printed := l.Map()
	var walk func(prefix string, d, p map[string]any)
	walk = func(prefix string, d, p map[string]any) {
		for k, v := range d {
			pv, ok := p[k]
			require.True(t, ok, "key %s%s of default.yaml is not in Config", prefix, k)
			if dm, ok := v.(map[string]any); ok {
				walk(prefix+k+".", dm, pv.(map[string]any))
			}
		}
	}
	walk("", doc, printed)
}

// TestLoadUnknownKeys: every key naming nothing is refused, placed at its
// line and column under the path of its section, whatever its value.
func TestLoadUnknownKeys(t *testing.T) {
	cases := []struct {
		doc  string
		want []string // "line:col: section"; none: the file loads
	}{
		{"bogus: {}\n", []string{"1:1: top level"}},
		{"bogus: []\n", []string{"1:1: top level"}},
		{"bogus:\n", []string{"1:1: top level"}},
		{"bogus: 1\n", []string{"1:1: top level"}},
		{"uplink: {bogus: {}}\n", []string{"1:10: uplink"}},
		{"uplink: {bogus: []}\n", []string{"1:10: uplink"}},
		{"uplink: {tls: {bogus: {}}}\n", []string{"1:16: uplink.tls"}},
		{"inputs: {modbus: {bogus: []}}\n", []string{"1:19: inputs.modbus"}},
		{"inputs: {modbus: {bogus: {}}}\n", []string{"1:19: inputs.modbus"}},
		{"inputs: {modbus: {buses: [{name: b, serial: {device: /dev/ttyS1, bogus: {}}}]}}\n",
			[]string{"1:66: inputs.modbus.buses[0].serial"}},
		{"inputs: {modbus: {buses: [{name: b, serial: {device: /dev/ttyS1}}], devices: [{name: d, bus: b, unit: 1, registers: [{name: r, register: holding, bogus: {}}]}]}}\n",
			[]string{"1:147: inputs.modbus.devices[0].registers[0]"}},
		{"inputs: {syslog: {bogus: {}}}\n", []string{"1:19: inputs.syslog"}},
		{"inputs: {files: [{name: a, paths: [/tmp/a.log], bogus: []}]}\n", []string{"1:49: inputs.files[0]"}},
		{"spool: {bogus: {}}\nclock: {bogus: []}\n", []string{"1:9: spool", "2:9: clock"}},
		{"1: {}\n", []string{"1:1: top level"}},
		// Known keys with empty values are fine.
		{"uplink: {endpoints: []}\ninputs: {syslog: {}, modbus: {buses: [], devices: []}}\n", nil},
		{"Uplink: {Window: 8}\n", nil}, // keys match ignoring case
	}
	for _, c := range cases {
		t.Run(c.doc, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "weir.yaml")
			require.NoError(t, os.WriteFile(p, []byte(c.doc), 0o600))
			_, err := Load(p, true)
			if c.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), p+":"+w+": unknown key `")
			}
		})
	}
}
