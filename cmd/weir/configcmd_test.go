package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/syslog"
)

func configExample(t *testing.T, args ...string) (string, error) {
	t.Helper()
	c := newConfigCmd()
	var out bytes.Buffer
	c.SetOut(&out)
	c.SetErr(&out)
	c.SetArgs(append([]string{"example"}, args...))
	err := c.Execute()
	return out.String(), err
}

// TestConfigExampleInputs: each optional input's example, put under its
// key, is a valid configuration turning that input on with exactly the
// package's defaults, as the examples say.
func TestConfigExampleInputs(t *testing.T) {
	cases := []struct {
		name string
		want func(*gateway.Config) any
		def  any
	}{
		{"syslog", func(c *gateway.Config) any { return c.Inputs.Syslog }, new(syslog.DefaultConfig())},
		{"audit", func(c *gateway.Config) any { return c.Inputs.Audit }, new(audit.DefaultConfig())},
		{"integrity", func(c *gateway.Config) any {
			if c.Inputs.Integrity != nil && len(c.Inputs.Integrity.Exclude) == 0 {
				c.Inputs.Integrity.Exclude = nil // the example's []
			}
			return c.Inputs.Integrity
		}, new(integrity.DefaultConfig())},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := configExample(t, c.name)
			require.NoError(t, err)
			var b strings.Builder
			b.WriteString("inputs:\n  " + c.name + ":\n")
			for _, l := range strings.SplitAfter(out, "\n") {
				if l != "" {
					b.WriteString("    " + l)
				}
			}
			p := filepath.Join(t.TempDir(), "weir.yaml")
			require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
			l, err := gateway.Load(p, true)
			require.NoError(t, err, "example under inputs.%s:\n%s", c.name, b.String())
			require.Equal(t, c.def, c.want(&l.Config))
		})
	}
}

func TestConfigExample(t *testing.T) {
	out, err := configExample(t)
	require.NoError(t, err)
	require.Equal(t, string(gateway.DefaultYAML()), out)
	for _, name := range []string{"modbus", "lines", "syslog", "audit", "integrity"} {
		out, err := configExample(t, name)
		require.NoError(t, err)
		require.NotEmpty(t, out, name)
	}
	_, err = configExample(t, "snmp")
	require.ErrorContains(t, err, `"snmp" is not modbus, lines, syslog, audit or integrity`)
}
