package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/seal"
	"github.com/weirgw/weir/uplink/collector"
)

// sealedEntries makes n records of gateway gw from sequence first with a
// seal after every `every`, signed by a key provisioned in keyDir (a new
// directory), as a gateway's spool would; it returns them and the key to
// register. change, when not 0, is the index of a record changed after
// it was sealed.
func sealedEntries(t *testing.T, keyDir, gw string, first uint64, n, every, change int) ([]collector.Entry, []byte) {
	t.Helper()
	pub, err := seal.Provision(keyDir)
	require.NoError(t, err)
	keys, err := seal.OpenKeys(keyDir, 0, nil, false)
	require.NoError(t, err)
	var tree merkle.Frontier
	var out []collector.Entry
	add := func(ev event.Event) {
		seq := first + tree.Size()
		rec, err := ev.MarshalBinary()
		require.NoError(t, err)
		ev.Seq, ev.Gateway = seq, gw
		out = append(out, collector.Entry{Seq: seq, Event: &ev, Record: rec, Leaf: merkle.RecordLeaf(seq, rec)})
		tree.Append(merkle.RecordLeaf(seq, rec))
	}
	for i := range n {
		add(event.Event{Gateway: gw, Time: int64(i + 1), Source: "app", Message: fmt.Sprintf("line %d", i)})
		if (i+1)%every == 0 {
			next, err := keys.Prepare()
			require.NoError(t, err)
			h := seal.Head{Gateway: gw, Epoch: keys.Epoch(), First: first, Size: tree.Size(), Root: tree.Root(), NextKey: next}
			if h.Epoch == 0 {
				h.Began = "first seal"
			}
			b, err := seal.Sign(&h, keys)
			require.NoError(t, err)
			require.NoError(t, keys.Advance())
			ev := seal.Event(&h, b)
			ev.Gateway = gw
			add(ev)
		}
	}
	if change != 0 {
		e := *out[change].Event
		e.Message += " (changed)"
		rec, err := e.MarshalBinary()
		require.NoError(t, err)
		out[change].Event, out[change].Record, out[change].Leaf = &e, rec, merkle.RecordLeaf(out[change].Seq, rec)
	}
	return out, pub
}

// writeSink appends entries to the JSONL sink at path, as the collector
// writes them.
func writeSink(t *testing.T, path, gw string, entries []collector.Entry) {
	t.Helper()
	j, err := collector.OpenJSONL(path, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = j.Write(gw, entries)
	require.NoError(t, err)
	require.NoError(t, j.Close())
}

// TestStatusShowsTheSealCheck: a collector started on a sink holding two
// gateways' logs, one untouched and one with a record changed, writes
// its state file; `weir-collector status` prints a line per gateway
// (seals checked, last verified epoch and tree size, the failure and its
// first failing sequence) and exits 1; `fleet status --status-file` adds
// the column.
func TestStatusShowsTheSealCheck(t *testing.T) {
	pkiDir := provisionPKI(t)
	sink := filepath.Join(t.TempDir(), "records.jsonl")
	keyDirs := t.TempDir()
	for _, gw := range []string{"gw-ok", "gw-bad"} {
		change := 0
		if gw == "gw-bad" {
			change = 45 // under the third seal (records 42..62)
		}
		entries, pub := sealedEntries(t, filepath.Join(keyDirs, gw), gw, 1000, 60, 20, change)
		writeSink(t, sink, gw, entries)
		require.NoError(t, collector.RegisterSealKey(filepath.Join(pkiDir, sealKeysDir), gw, pub))
	}

	r := startRigSink(t, pkiDir, sink)
	statusFile := filepath.Join(filepath.Dir(sink), statusFileName)
	require.Eventually(t, func() bool { _, err := os.Stat(statusFile); return err == nil }, 10*time.Second, 50*time.Millisecond)

	out, err := exec.Command(r.bin, "status", "--sink", sink).Output()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "status exits 1 on a failed log: %v", err)
	text := string(out)
	t.Log(text)
	require.Contains(t, text, "seal check gw-ok: 3 seals checked, last verified epoch 2 (tree size 62, seal at sequence 1062), 1 records not yet under a seal; ok")
	require.Contains(t, text, "seal check gw-bad: 2 seals checked, last verified epoch 1 (tree size 41, seal at sequence 1041)")
	require.Contains(t, text, "FAILED from sequence 1041:")
	require.Contains(t, text, "somewhere in 1041..1061")
	// Failed first.
	require.Less(t, strings.Index(text, "gw-bad"), strings.Index(text, "gw-ok"))

	js, err := exec.Command(r.bin, "status", "--status-file", statusFile, "--json").Output()
	require.True(t, errors.As(err, &ee))
	require.Contains(t, string(js), `"last_epoch": 2`)
	require.Contains(t, string(js), `"last_tree_size": 62`)
	require.Contains(t, string(js), `"seq": 1041`)

	fleetDir := t.TempDir()
	fl, err := exec.Command(r.bin, "fleet", "status", "--dir", fleetDir, "--status-file", statusFile).CombinedOutput()
	require.NoError(t, err, string(fl))
	t.Log(string(fl))
	require.Contains(t, string(fl), "SEALS")
	require.Contains(t, string(fl), "FAILED at 1041 (epoch 2)")
	require.Contains(t, string(fl), "3 ok, epoch 2 size 62")
}
