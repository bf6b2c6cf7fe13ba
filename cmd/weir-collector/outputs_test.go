package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/siem/outputs"
)

// TestOutputsFile: --outputs reads the gateway's outputs: schema (the
// example file whole), refuses an unknown key and a bad value by name,
// and puts the forward spool beside the sink.
func TestOutputsFile(t *testing.T) {
	dir := t.TempDir()
	sinkPath := filepath.Join(dir, "sink.jsonl")
	j, err := collector.OpenJSONL(sinkPath, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer j.Close()
	for _, f := range []string{"siem-ca.pem", "gateway.pem", "gateway-key.pem"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o600))
	}
	good := filepath.Join(dir, "outputs.yaml")
	require.NoError(t, os.WriteFile(good, []byte(`outputs:
  - name: es
    type: elasticsearch
    format: ecs
    flush_interval: 250ms
    dead_letter: `+filepath.Join(dir, "dead.jsonl")+`
    elasticsearch: {url: "http://127.0.0.1:9200", index: "weir-{date}"}
`), 0o600))
	fw, err := openForwarding(good, "", sinkPath, j, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Len(t, fw.runs, 2, "a runner and the gate's keeper of marks")
	require.DirExists(t, filepath.Join(dir, "forward-spool"))
	fw.close()

	example := filepath.Join(dir, "example.yaml")
	require.NoError(t, os.WriteFile(example, outputs.ExampleYAML(), 0o600))
	_, err = openForwarding(example, filepath.Join(dir, "fs2"), sinkPath, j, slog.New(slog.DiscardHandler))
	require.Error(t, err, "the example names files that do not exist here")
	require.NotContains(t, err.Error(), "field", "the example's keys are all known")

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("outputs:\n  - name: x\n    type: hec\n    hec: {url: \"ftp://h\"}\n    bogus: 1\n"), 0o600))
	_, err = openForwarding(bad, filepath.Join(dir, "fs3"), sinkPath, j, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "bogus")
}
