package collector

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/seal"
)

// sealedLog makes n records of gateway gw with a seal after every
// `every`, as a gateway's spool would, and returns them as sink entries.
func sealedLog(t *testing.T, gw string, n, every int) ([]Entry, []byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "seal")
	pub, err := seal.Provision(dir)
	require.NoError(t, err)
	keys, err := seal.OpenKeys(dir, 0, nil, false)
	require.NoError(t, err)
	first := uint64(5_000_000)
	var tree merkle.Frontier
	var out []Entry
	add := func(ev event.Event) {
		seq := first + tree.Size()
		rec, err := ev.MarshalBinary()
		require.NoError(t, err)
		ev.Seq, ev.Gateway = seq, gw
		out = append(out, Entry{Seq: seq, Event: &ev, Record: rec, Leaf: merkle.RecordLeaf(seq, rec)})
		tree.Append(merkle.RecordLeaf(seq, rec))
	}
	for i := range n {
		add(event.Event{Gateway: gw, Time: int64(i + 1), Source: "app", Message: fmt.Sprintf("line %d", i)})
		if (i+1)%every == 0 {
			next, err := keys.Prepare()
			require.NoError(t, err)
			h := seal.Head{Gateway: gw, Epoch: keys.Epoch(), First: first, Size: tree.Size(), Root: tree.Root(), NextKey: next}
			b, err := seal.Sign(&h, keys)
			require.NoError(t, err)
			require.NoError(t, keys.Advance())
			ev := seal.Event(&h, b)
			ev.Gateway = gw
			add(ev)
		}
	}
	return out, pub
}

func TestSealCheckLive(t *testing.T) {
	keys := t.TempDir()
	entries, pub := sealedLog(t, "gw-1", 100, 20)
	require.NoError(t, RegisterSealKey(keys, "gw-1", pub))

	// Untouched, in batches, critical seals first as the sender does.
	c := NewSealCheck(keys, slog.New(slog.DiscardHandler))
	for i := 0; i < len(entries); i += 15 {
		require.Empty(t, c.Observe("gw-1", entries[i:min(i+15, len(entries))]))
	}
	st := c.Status()
	require.Len(t, st, 1)
	require.True(t, st[0].Registered)
	require.Nil(t, st[0].Failure)
	require.Equal(t, uint64(5), st[0].Stats.Seals)

	// A record changed on its way: the seal after it fails, once.
	bad := append([]Entry(nil), entries...)
	e := *bad[30].Event
	e.Message = "line 29 changed"
	rec, err := e.MarshalBinary()
	require.NoError(t, err)
	bad[30].Event, bad[30].Record, bad[30].Leaf = &e, rec, merkle.RecordLeaf(bad[30].Seq, rec)
	c = NewSealCheck(keys, slog.New(slog.DiscardHandler))
	var failures []*seal.Failure
	for i := 0; i < len(bad); i += 15 {
		failures = append(failures, c.Observe("gw-1", bad[i:min(i+15, len(bad))])...)
	}
	require.Len(t, failures, 1, "reported once")
	f := failures[0]
	require.Equal(t, "gw-1", f.Gateway)
	require.Equal(t, uint64(1), f.Epoch)
	require.LessOrEqual(t, f.Seq, bad[30].Seq)
	require.GreaterOrEqual(t, f.Upto, bad[30].Seq)
	require.Equal(t, 1.0, testutil.ToFloat64(c.failures.WithLabelValues("gw-1")))
	ev := failureEvent(f)
	require.Equal(t, event.PriorityCritical, ev.Priority)
	require.Contains(t, ev.Message, "gw-1")
	require.Contains(t, ev.Message, "epoch 1")

	// Rebuilt from a sink written by the JSONL sink: the same verdict, and
	// every line reads back as its record.
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	j, err := OpenJSONL(path, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = j.Write("gw-1", entries)
	require.NoError(t, err)
	require.NoError(t, j.Close())
	c = NewSealCheck(keys, slog.New(slog.DiscardHandler))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, c.LoadSink(bytes.NewReader(b)))
	require.Nil(t, c.Status()[0].Failure)
	require.Equal(t, uint64(5), c.Status()[0].Stats.Seals)
	n := 0
	require.NoError(t, ScanSink(bytes.NewReader(b), func(sr SinkRecord) error {
		require.NoError(t, sr.Err, "line %d", sr.Line)
		n++
		return nil
	}))
	require.Equal(t, len(entries), n)
}
