package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

func runTestProcessors(t *testing.T, cfg, sample string, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "weir.yaml")
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o600))
	in := filepath.Join(dir, "sample.txt")
	require.NoError(t, os.WriteFile(in, []byte(sample), 0o600))
	g := &globals{}
	root := &cobra.Command{Use: "weir", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", "", "")
	root.AddCommand(newTestCmd(g))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"test", "processors", "-c", p, "--input", in}, args...))
	err := root.Execute()
	return out.String(), err
}

const sampleProcessors = `inputs:
  syslog: {udp: {listen: "127.0.0.1:0"}, tcp: {listen: ""}}
processors:
  inputs:
    syslog:
      - drop: {match: {message: {contains: ["CRON["]}}}
  global:
    - redact: {regex: 'password=(\S+)'}
`

// TestTestProcessors: weir test processors runs a sample file through
// an input's chain and the global one, record by record, and says what
// is kept (as spooled), what is dropped, and each step's counts; a
// critical record is kept whatever the drop rule says.
func TestTestProcessors(t *testing.T) {
	sample := "CRON[12]: job\nlogin user=bob password=hunter2\n" +
		`{"kind":"alert","severity":"crit","message":"CRON[1] tamper"}` + "\n"
	out, err := runTestProcessors(t, sampleProcessors, sample, "--chain", "syslog")
	require.NoError(t, err, out)
	lines := strings.Split(out, "\n")
	require.Equal(t, "1 dropped", lines[0])
	require.Contains(t, lines[1], `"message":"login user=bob password=***"`)
	require.Contains(t, lines[2], `"message":"CRON[1] tamper"`)
	require.NotContains(t, out, "hunter2")
	require.Contains(t, out, "3 records in, 2 kept")
	require.Regexp(t, `processors.inputs.syslog\[0\] drop +in 3  out 2  dropped 1  changed 0`, out)
	require.Regexp(t, `processors.global\[0\] redact +in 2  out 2  dropped 0  changed 1`, out)

	// The global chain alone: the CRON line is kept.
	out, err = runTestProcessors(t, sampleProcessors, sample)
	require.NoError(t, err, out)
	require.Contains(t, out, "3 records in, 3 kept")

	_, err = runTestProcessors(t, sampleProcessors, sample, "--chain", "files.app")
	require.ErrorContains(t, err, `no chain for input "files.app"`)
	_, err = runTestProcessors(t, sampleProcessors, `{"kind":"bogus"}`)
	require.ErrorContains(t, err, `sample.txt:1: kind "bogus" is not a record kind`)
}
