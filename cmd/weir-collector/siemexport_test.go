package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/siem"
)

// ecsExport renders entries as a SIEM holding them would export them: the
// ECS document each output sent (the record with its weir_leaf), every
// third one as an Elasticsearch hit, a record delivered twice, and a line
// of another source.
func ecsExport(t *testing.T, entries []collector.Entry) [][]byte {
	t.Helper()
	enc, err := siem.New(siem.FormatECS, siem.DefaultEncodingConfig())
	require.NoError(t, err)
	lines := [][]byte{[]byte(`{"@timestamp":"2026-12-07T00:00:00Z","message":"a firewall's line"}`)}
	for i, en := range entries {
		e := *en.Event
		e.Fields = append(append([]event.Field(nil), e.Fields...), event.Str(siem.LeafField, hex.EncodeToString(en.Leaf[:])))
		doc := enc.Append(nil, &e)
		if i%3 == 0 {
			doc = append(append([]byte(`{"_index":"weir-2026.12.07","_id":"x","_source":`), doc...), '}')
		}
		lines = append(lines, doc)
		if i == 10 {
			lines = append(lines, doc) // at least once
		}
	}
	return lines
}

func runVerifyExport(t *testing.T, keys string, lines [][]byte) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.ndjson")
	require.NoError(t, os.WriteFile(path, append(bytes.Join(lines, []byte("\n")), '\n'), 0o600))
	var out bytes.Buffer
	cmd := newVerifyCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--siem-export", path, "--seal-keys", keys})
	err := cmd.Execute()
	return out.String(), err
}

// TestVerifySIEMExport: a SIEM's ECS export, leaves and seals only, is
// checked against the registered key: the untouched export proves every
// leaf; a record deleted fails at its sequence; a leaf changed fails its
// seal's span. A message edited with its leaf left alone is not seen:
// that needs the record's bytes, as the documentation says.
func TestVerifySIEMExport(t *testing.T) {
	keys := t.TempDir()
	entries, pub := sealedEntries(t, filepath.Join(t.TempDir(), "k"), "gw-siem", 500, 60, 20, 0)
	require.NoError(t, collector.RegisterSealKey(keys, "gw-siem", pub))
	lines := ecsExport(t, entries) // line i+1 is entries[i] (11 has its copy after it)
	idx := func(i int) int {
		if i > 10 {
			return i + 2
		}
		return i + 1
	}

	out, err := runVerifyExport(t, keys, lines)
	t.Log(out)
	require.NoError(t, err)
	require.Contains(t, out, "siem export: 65 lines, 1 not Weir records, 1 duplicates, 0 unreadable")
	require.Contains(t, out, "gw-siem: 63 records, 62 proven, 0 gaps declared, 3 seals checked")

	deleted := append(append([][]byte(nil), lines[:idx(30)]...), lines[idx(30)+1:]...)
	out, err = runVerifyExport(t, keys, deleted)
	require.Error(t, err)
	require.Contains(t, out, "TAMPERED: gateway gw-siem, epoch 3: log fails at sequence 530: record missing")

	changed := append([][]byte(nil), lines...)
	changed[idx(45)] = bytes.Replace(changed[idx(45)], []byte(hex.EncodeToString(entries[45].Leaf[:])), []byte(strings.Repeat("ab", 32)), 1)
	out, err = runVerifyExport(t, keys, changed)
	require.Error(t, err)
	require.Contains(t, out, "TAMPERED: gateway gw-siem, epoch 2: log fails at sequences 541..561")

	edited := append([][]byte(nil), lines...)
	edited[idx(45)] = bytes.Replace(edited[idx(45)], []byte(`"line 43"`), []byte(`"line 43 (edited in the SIEM)"`), 1)
	require.NotEqual(t, lines[idx(45)], edited[idx(45)])
	out, err = runVerifyExport(t, keys, edited)
	require.NoError(t, err, "a rendering edited with its leaf kept is beyond what the leaves show: %s", out)
}
