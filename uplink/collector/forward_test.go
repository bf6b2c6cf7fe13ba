package collector

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// TestForwardSpoolsWhatItWrites: a record the sink takes is in the
// forward spool with its gateway's sequence, before the sink has it; a
// resent batch the sink holds is not spooled again; an undecodable
// record is forwarded as an alert carrying its bytes.
func TestForwardSpoolsWhatItWrites(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJSONL(filepath.Join(dir, "sink.jsonl"), nil)
	require.NoError(t, err)
	defer j.Close()
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(dir, "fwd")})
	require.NoError(t, err)
	defer sp.Close()
	f := NewForward(j, sp, 0)
	f.timeout = 5e9
	entries := []Entry{
		{Seq: 7, Event: &event.Event{Seq: 7, Gateway: "gw-1", Message: "seven", Source: "s"}},
		{Seq: 8, Raw: []byte{1, 2, 3}, DecodeErr: context.Canceled},
	}
	res, err := f.Write("gw-1", entries)
	require.NoError(t, err)
	require.Equal(t, 2, res.Written)
	_, err = f.Write("gw-1", entries)
	require.NoError(t, err)
	recs, err := sp.Read(0, 10, 0)
	require.NoError(t, err)
	require.Len(t, recs, 2, "spooled once")
	var e event.Event
	require.NoError(t, DecodeForwarded(recs[0].Data, &e))
	require.Equal(t, uint64(7), e.Seq)
	require.Equal(t, "seven", e.Message)
	require.Equal(t, "gw-1", e.Gateway)
	require.NoError(t, DecodeForwarded(recs[1].Data, &e))
	require.Equal(t, uint64(8), e.Seq)
	require.Equal(t, event.KindAlert, e.Kind)
}
