package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/uplink/pki"
)

// testConfig runs `weir test config -c path [--json]` in process and
// returns its exit code, standard output and standard error.
func testConfig(t *testing.T, path string, asJSON bool) (int, string, string) {
	t.Helper()
	g := &globals{}
	root := &cobra.Command{Use: "weir"}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", "", "")
	root.AddCommand(newTestCmd(g))
	cmd, _, err := root.Find([]string{"test", "config"})
	require.NoError(t, err)
	require.NoError(t, cmd.ParseFlags([]string{"-c", path}))
	var out, errw bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errw)
	cmd.SetContext(t.Context())
	code := runTestConfig(cmd, g, asJSON, time.Now())
	return code, out.String(), errw.String()
}

// site writes a CA, gw-1's certificate and key, a tailed log and a
// configuration using them, with extra appended and each pair of
// replace (old, new) replaced.
func site(t *testing.T, extra string, replace ...string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	require.NoError(t, pki.InitCA(p, "Test", pki.Options{}))
	cert, key, err := pki.IssueGateway(p, "gw-1", pki.Options{})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.log"), nil, 0o600))
	cfg := fmt.Sprintf(`gateway: {id: gw-1}
data_dir: %[1]s/data
metrics: {listen: ""}
inputs:
  files: [{name: app, paths: [%[1]s/app.log]}]
uplink:
  endpoints: [{address: "127.0.0.1:7443"}]
  tls: {ca: %[2]s, cert: %[3]s, key: %[4]s}
%[5]s`, dir, filepath.Join(p, "ca.pem"), cert, key, extra)
	cfg = strings.NewReplacer(replace...).Replace(cfg)
	path := filepath.Join(dir, "weir.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	return path
}

// maxBytesLine is spool.max_bytes in force by default: 4GiB, 1GiB on a
// 32-bit board.
func maxBytesLine() string {
	if strconv.IntSize == 32 {
		return "    max_bytes: 1GiB\n"
	}
	return "    max_bytes: 4GiB\n"
}

func TestTestConfigExitCodes(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		code, out, errw := testConfig(t, site(t, ""), false)
		require.Equal(t, exitValid, code, "%s%s", out, errw)
		require.Empty(t, errw)
		for _, want := range []string{
			"# ok       configuration: every key, type and value of ",
			"# ok       uplink.tls.key: is the key of uplink.tls.cert\n",
			"# ok       uplink.tls.cert: chains to a CA of uplink.tls.ca\n",
			"# ok       uplink.tls.cert: names this gateway, \"gw-1\" (urn:weir:gateway:gw-1)\n",
			"# ok       data_dir: ",
			"# ok       spool.max_bytes: ",
			"checks passed (exit 0)\n",
			maxBytesLine(),                     // not "0": the bound in force
			"        transport: tls\n",         // not "": the transport in force
			"        server_name: 127.0.0.1\n", // the name the certificate must carry
			"telemetry_interval: 1m\n",         // as written by hand, not 1m0s
		} {
			require.Contains(t, out, want)
		}
		require.Regexp(t, `\n    socket: /.*/data/weir.sock\n`, out, "the admin socket in force")
		require.NotContains(t, out, `"0"`)
		// The report is a configuration file: the one in force.
		p := filepath.Join(t.TempDir(), "printed.yaml")
		require.NoError(t, os.WriteFile(p, []byte(out), 0o600))
		_, err := gateway.Load(p, true)
		require.NoError(t, err)
	})
	t.Run("warnings", func(t *testing.T) {
		if strconv.IntSize == 32 {
			t.Skip("1000TiB is refused outright on a 32-bit board (at most 1GiB), which no disk is smaller than here")
		}
		code, out, _ := testConfig(t, site(t, "spool: {max_bytes: 1000TiB}\n"), false)
		require.Equal(t, exitWarnings, code, out)
		require.Contains(t, out, "# warning  spool.max_bytes: ")
		require.Contains(t, out, "# valid with 1 warning (exit 2)\n")
	})
	t.Run("a check fails", func(t *testing.T) {
		code, out, errw := testConfig(t, site(t, "", "{id: gw-1}", "{id: gw-2}"), false)
		require.Equal(t, exitInvalid, code, out)
		require.Contains(t, out, `# error    uplink.tls.cert: names gateway "gw-1" (urn:weir:gateway:gw-1), but gateway.id is "gw-2"`)
		require.Equal(t, "weir: test config: invalid: 1 check failed, 0 warnings (exit 1)\n", errw)
	})
	t.Run("invalid", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "weir.yaml")
		require.NoError(t, os.WriteFile(p, []byte("uplink:\n  window: many\n  flush_interval: 200\n"), 0o600))
		code, out, errw := testConfig(t, p, false)
		require.Equal(t, exitInvalid, code)
		require.Empty(t, out)
		require.Equal(t, "weir: config: 2 problems:\n"+
			"  "+p+":2:11: uplink.window: found \"many\", expected a whole number\n"+
			"  "+p+":3:19: uplink.flush_interval: found 200 without a unit, expected a duration with a unit, such as 200ms or 200s (units: ns, us, ms, s, m, h)\n", errw)
	})
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "absent.yaml")
		code, _, errw := testConfig(t, p, false)
		require.Equal(t, exitInvalid, code)
		require.Equal(t, "weir: config "+p+": no such file\n", errw)
	})
}

func TestTestConfigJSON(t *testing.T) {
	var r testConfigReport
	code, out, _ := testConfig(t, site(t, "", "{id: gw-1}", "{id: gw-2}"), true)
	require.Equal(t, exitInvalid, code)
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	require.Equal(t, "invalid", r.Status)
	require.Equal(t, exitInvalid, r.ExitCode)
	require.Equal(t, "gw-2", r.Config["gateway"].(map[string]any)["id"])
	var failed []string
	for _, c := range r.Checks {
		if c.Status == gateway.CheckError {
			failed = append(failed, c.Key)
		}
	}
	require.Equal(t, []string{"uplink.tls.cert"}, failed)

	p := filepath.Join(t.TempDir(), "weir.yaml")
	require.NoError(t, os.WriteFile(p, []byte("uplink: 5\n"), 0o600))
	code, out, _ = testConfig(t, p, true)
	require.Equal(t, exitInvalid, code)
	r = testConfigReport{}
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	require.Equal(t, "invalid", r.Status)
	require.Equal(t, []gateway.Problem{{File: p, Line: 1, Column: 9, Key: "uplink",
		Message: "found 5, expected a mapping of its keys (endpoints, mode, tls, compression, ...)"}}, r.Problems)
	require.True(t, strings.HasPrefix(out, "{\n"), "one indented object")
}

func TestTestOutputNamesKeysOnce(t *testing.T) {
	p := site(t, "")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(b), "gateway-gw-1.pem", "gateway-gw-9.pem", 1)), 0o600))
	g := &globals{}
	root := &cobra.Command{Use: "weir", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", "", "")
	root.AddCommand(newTestCmd(g))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"test", "output", "-c", p})
	err = root.Execute()
	require.EqualError(t, err, "test output: the gateway's TLS identity has 1 problem(s)")
	require.Contains(t, out.String(), "uplink.tls (from "+p+"): not usable, no endpoint dialled\n")
	require.Regexp(t, `  error    uplink.tls.cert: /.*/gateway-gw-9.pem: no such file\n`, out.String())
	require.NotContains(t, out.String(), "probably")

	require.Equal(t, "uplink: tls: read certificate: open x: no such file",
		onceOnly("uplink: tls: read certificate: open x: no such file (probably: uplink: tls: read certificate: open x: no such file)"))
	const explained = "remote error: tls: bad certificate (probably: own certificate a.pem is valid 2020 to 2021)"
	require.Equal(t, explained, onceOnly(explained), "an explanation that adds something stays")
}
