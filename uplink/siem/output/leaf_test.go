package output

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink/siem"
)

// Every record on its way to a SIEM carries its leaf in the gateway's
// Merkle log, which each format renders with the record's other fields.
func TestRecordsCarryTheirLeaf(t *testing.T) {
	ev := event.Event{Gateway: "gw", Time: 1, Source: "app", Message: "hello", Fields: []event.Field{event.Int("n", 3)}}
	data, err := ev.MarshalBinary()
	require.NoError(t, err)
	r := NewRunner("t", nil, nil, Batching{}, nil)
	var got event.Event
	require.NoError(t, r.decodeRec(spool.Record{Seq: 42, Data: data}, &got))
	leaf := merkle.RecordLeaf(42, data)
	want := hex.EncodeToString(leaf[:])
	require.Equal(t, event.Str(siem.LeafField, want), got.Fields[len(got.Fields)-1])
	for _, f := range siem.Formats {
		enc, err := siem.New(f, siem.DefaultEncodingConfig())
		require.NoError(t, err)
		out := enc.Append(nil, &got)
		require.Contains(t, string(out), want, "%s", enc.Format())
		require.Contains(t, string(out), "42", "%s carries the sequence", enc.Format())
	}
}
