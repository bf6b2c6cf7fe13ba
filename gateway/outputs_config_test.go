package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink/siem/outputs"
)

// TestOutputsExampleLoads: the outputs example (outputs.ExampleYAML) is
// accepted as a gateway configuration, its omitted keys take
// outputs.DefaultConfig's values, and secrets are redacted when printed.
func TestOutputsExampleLoads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weir.yaml")
	cfg := "gateway: {id: gw-1}\n" + string(outputs.ExampleYAML()) + `
  - name: minimal
    type: elasticsearch
    format: ecs
    elasticsearch: {url: "http://127.0.0.1:9200", password: hunter2, username: weir}
`
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	l, err := Load(path, true)
	require.NoError(t, err)
	require.Len(t, l.Outputs, 4)
	m := l.Outputs[3]
	require.Equal(t, 500, m.BatchMaxRecords, "an omitted key takes its default")
	require.Equal(t, time.Second, m.FlushInterval)
	require.Equal(t, "weir-{date}", m.Elasticsearch.Index)
	require.Equal(t, "tab", m.Encoding.LEEFDelimiter)
	require.Equal(t, "<redacted>", l.Redacted().Outputs[3].Elasticsearch.Password)
	require.Equal(t, "hunter2", l.Outputs[3].Elasticsearch.Password, "Redacted copies")
}

// TestOutputsProblemsNamed: a wrong output is refused with its key.
func TestOutputsProblemsNamed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weir.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`gateway: {id: gw-1}
outputs:
  - name: a
    type: elasticsearch
    format: cef
    elasticsearch: {url: "ftp://x"}
  - name: a
    type: syslog
    syslog: {address: nohostport}
    encoding: {leef_delimiter: "="}
  - name: b
    type: carrier-pigeon
    batch_size: 3
`), 0o600))
	_, err := Load(path, true)
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"outputs[0].format: elasticsearch takes ecs only",
		"outputs[0].elasticsearch.url",
		"outputs[1].name: \"a\" is already used by outputs[0]",
		"outputs[1].syslog.address",
		"outputs[1].syslog.tls.ca: required",
		"outputs[1].encoding.leef_delimiter",
		"outputs[2].type",
		"outputs[2]: unknown key `batch_size`",
	} {
		require.True(t, strings.Contains(msg, want), "want %q in:\n%s", want, msg)
	}
}
