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

// chainedLog makes one log of gateway gw sealed by len(counts) chains of
// keys, each provisioned anew (a gateway provisioned again): chain i adds
// counts[i] records with a seal after every `every`. It returns each
// chain's entries and its registered key.
func chainedLog(t *testing.T, gw string, every int, counts ...int) ([][]Entry, [][]byte) {
	t.Helper()
	first := uint64(7_000)
	var tree merkle.Frontier
	var outs [][]Entry
	var pubs [][]byte
	for c, n := range counts {
		dir := filepath.Join(t.TempDir(), "seal")
		pub, err := seal.Provision(dir)
		require.NoError(t, err)
		keys, err := seal.OpenKeys(dir, 0, nil, false)
		require.NoError(t, err)
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
			add(event.Event{Gateway: gw, Time: int64(i + 1), Source: "app", Message: fmt.Sprintf("chain %d line %d", c, i)})
			if (i+1)%every == 0 {
				next, err := keys.Prepare()
				require.NoError(t, err)
				h := seal.Head{Gateway: gw, Epoch: keys.Epoch(), First: first, Size: tree.Size(), Root: tree.Root(), NextKey: next}
				if h.Epoch == 0 {
					h.Began = "new spool"
					if c > 0 {
						h.Began = "new seal key (provisioned again)"
					}
				}
				b, err := seal.Sign(&h, keys)
				require.NoError(t, err)
				require.NoError(t, keys.Advance())
				ev := seal.Event(&h, b)
				ev.Gateway = gw
				add(ev)
			}
		}
		outs, pubs = append(outs, out), append(pubs, pub)
	}
	return outs, pubs
}

// TestSealCheckKeyRegisteredWhileRunning: the gateway is provisioned again
// while the collector runs; the check reads the registry's new key and
// takes the new chain as a new log. Without the registration it fails.
func TestSealCheckKeyRegisteredWhileRunning(t *testing.T) {
	chains, pubs := chainedLog(t, "gw-2", 10, 30, 25)
	for _, register := range []bool{true, false} {
		keys := t.TempDir()
		require.NoError(t, RegisterSealKey(keys, "gw-2", pubs[0]))
		c := NewSealCheck(keys, slog.New(slog.DiscardHandler))
		require.Empty(t, c.Observe("gw-2", chains[0]))
		if register {
			require.NoError(t, RegisterSealKey(keys, "gw-2", pubs[1]))
			require.NoError(t, RegisterSealKey(keys, "gw-2", pubs[1]), "the same key again is not added twice")
			got, err := ReadSealKeys(keys, "gw-2")
			require.NoError(t, err)
			require.Len(t, got, 2)
		}
		fails := c.Observe("gw-2", chains[1])
		st := c.Status()[0]
		if !register {
			require.Len(t, fails, 1)
			require.Equal(t, chains[1][10].Seq, fails[0].Seq, fails[0].Error())
			continue
		}
		require.Empty(t, fails)
		require.Nil(t, st.Failure)
		require.Equal(t, uint64(5), st.Stats.Seals)
		require.Len(t, st.NewLogs, 1)
		require.Equal(t, chains[0][len(chains[0])-1].Seq+1, st.NewLogs[0].Seq)
		require.Contains(t, st.String(), "new log started at sequence 7033 (re-provisioned: registered key 2 of 2")
	}
}
