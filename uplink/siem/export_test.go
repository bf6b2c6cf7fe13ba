package siem

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/seal"
)

// The ECS encoder's output, with the leaf the forwarding adds, read back:
// as sent, and as an Elasticsearch hit.
func TestParseECSExport(t *testing.T) {
	leaf := merkle.RecordLeaf(42, []byte("record"))
	e := event.Event{Gateway: "gw-1", Seq: 42, Time: 1, Source: seal.Source, Message: "seal",
		Fields: []event.Field{event.Bytes(seal.Field, []byte("WEIRSEAL1 bytes")), event.Str(LeafField, hex.EncodeToString(leaf[:]))}}
	enc, err := New(FormatECS, DefaultEncodingConfig())
	require.NoError(t, err)
	doc := enc.Append(nil, &e)
	for _, line := range [][]byte{doc, append(append([]byte(`{"_index":"weir","_id":"gw-1:42","_source":`), doc...), '}')} {
		r, err := ParseECSExport(line)
		require.NoError(t, err, string(line))
		require.Equal(t, ExportRecord{Gateway: "gw-1", Seq: 42, Leaf: leaf, Seal: []byte("WEIRSEAL1 bytes")}, r)
	}
	for name, line := range map[string]string{
		"not weir":    `{"message":"hello"}`,
		"no leaf":     `{"weir":{"gateway":"gw-1","seq":3}}`,
		"bad leaf":    `{"weir":{"gateway":"gw-1","seq":3,"fields":{"weir_leaf":"zz"}}}`,
		"seq string":  `{"weir":{"gateway":"gw-1","seq":"3"}}`,
		"seq zero":    `{"weir":{"gateway":"gw-1","seq":0}}`,
		"seal no hex": `{"weir":{"gateway":"gw-1","seq":3,"source":"weir:seal","fields":{"weir_leaf":"` + hex.EncodeToString(leaf[:]) + `","seal":"x"}}}`,
		"two objects": `{} {}`,
	} {
		_, err := ParseECSExport([]byte(line))
		require.Error(t, err, name)
	}
}

func FuzzECSExport(f *testing.F) {
	leaf := merkle.RecordLeaf(1, nil)
	f.Add([]byte(`{"weir":{"gateway":"gw-1","seq":1,"fields":{"weir_leaf":"` + hex.EncodeToString(leaf[:]) + `"}}}`))
	f.Add([]byte(`{"_source":{"weir":{"gateway":"g","seq":2,"source":"weir:seal","fields":{"weir_leaf":"` + hex.EncodeToString(leaf[:]) + `","seal":"00"}}}}`))
	f.Add([]byte(`{"weir":{"gateway":"g","seq":18446744073709551616}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseECSExport(b)
		if err == nil && (r.Gateway == "" || r.Seq == 0 || len(r.Seal) > seal.MaxSize) {
			t.Fatalf("accepted %q as %+v", b, r)
		}
	})
}
