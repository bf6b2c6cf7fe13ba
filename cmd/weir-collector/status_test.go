package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/seal"
	"github.com/weirgw/weir/uplink/collector"
)

// sealedEntries makes n records of gateway gw from sequence first with a
// seal after every `every`, signed by the key in keyDir (provisioned
// when the directory holds none), as a gateway's spool would; it returns
// them and the key to register. change, when not 0, is the index of a
// record changed after it was sealed.
func sealedEntries(t *testing.T, keyDir, gw string, first uint64, n, every, change int) ([]collector.Entry, []byte) {
	t.Helper()
	l := &testLog{t: t, gw: gw, first: first}
	return l.entries(keyDir, n, every, change)
}

// testLog is a gateway's Merkle log in miniature, which chains of seals
// (keys provisioned again) continue.
type testLog struct {
	t     *testing.T
	gw    string
	first uint64
	tree  merkle.Frontier
	began string // the reason the next chain's first seal gives
}

func (l *testLog) entries(keyDir string, n, every, change int) ([]collector.Entry, []byte) {
	t, gw, first := l.t, l.gw, l.first
	t.Helper()
	if _, err := os.Stat(filepath.Join(keyDir, "key")); err != nil {
		_, err := seal.Provision(keyDir)
		require.NoError(t, err)
	}
	_, pub, err := seal.PublicKeyOf(keyDir)
	require.NoError(t, err)
	keys, err := seal.OpenKeys(keyDir, 0, nil, false)
	require.NoError(t, err)
	tree := &l.tree
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
				if l.began != "" {
					h.Began = l.began
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

// TestReprovisionedGateway: pki issue-gateway, then issue-gateway --force
// (a gateway provisioned again), registers both seal keys in order. A sink
// holding the first key's log and then the second's verifies, reporting
// the new log and where it starts, live (status) and afterwards (verify);
// a record of the new log is proven with the registry file as the key;
// a third chain signed by a key never registered fails at its first seal.
func TestReprovisionedGateway(t *testing.T) {
	pkiDir := provisionPKI(t)
	bin := collectorBinary(t)
	const gw = "gw-re"
	sink := filepath.Join(t.TempDir(), "records.jsonl")
	registry := filepath.Join(pkiDir, sealKeysDir, gw+".pub")

	out, err := exec.Command(bin, "pki", "issue-gateway", "--dir", pkiDir, gw).CombinedOutput()
	require.NoError(t, err, string(out))
	log := &testLog{t: t, gw: gw, first: 100}
	first, _ := log.entries(filepath.Join(pkiDir, gw+".seal"), 60, 20, 0)
	writeSink(t, sink, gw, first)
	out, err = exec.Command(bin, "pki", "issue-gateway", "--dir", pkiDir, "--force", gw).CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "provisioned again")
	reg, err := os.ReadFile(registry)
	require.NoError(t, err)
	require.Len(t, strings.Fields(string(reg)), 2, "both keys registered, in order")
	// The spool's log goes on; its seals begin a new chain.
	log.began = "new seal key (provisioned again)"
	second, _ := log.entries(filepath.Join(pkiDir, gw+".seal"), 40, 20, 0)
	writeSink(t, sink, gw, second)
	newLog := "new log started at sequence 163 (re-provisioned: registered key 2 of 2, first seal at 183: new seal key (provisioned again))"

	out, err = exec.Command(bin, "verify", "--sink", sink, "--seal-keys", filepath.Join(pkiDir, sealKeysDir)).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Log(string(out))
	require.Contains(t, string(out), "gw-re: 105 records, 104 proven, 0 gaps declared, 5 seals checked")
	require.Contains(t, string(out), newLog)

	// Live: the collector rebuilds its check from the sink.
	r := startRigSink(t, pkiDir, sink)
	statusFile := filepath.Join(filepath.Dir(sink), statusFileName)
	require.Eventually(t, func() bool { _, err := os.Stat(statusFile); return err == nil }, 10*time.Second, 50*time.Millisecond)
	out, err = exec.Command(r.bin, "status", "--sink", sink).CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "seal check gw-re: 5 seals checked, last verified epoch 1 (tree size 104, seal at sequence 204)")
	require.Contains(t, string(out), newLog)
	require.Contains(t, string(out), "; ok")

	// A proof of a record of the new log, checked against the registry.
	proof, err := exec.Command(bin, "prove", "--sink", sink, "--seal-keys", filepath.Join(pkiDir, sealKeysDir),
		"--gateway", gw, "--seq", "170").Output()
	require.NoError(t, err)
	pf := filepath.Join(t.TempDir(), "proof.json")
	require.NoError(t, os.WriteFile(pf, proof, 0o600))
	out, err = exec.Command(weirBinary(t), "verify-proof", "--key-file", registry, pf).CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "registered key 2 of 2")

	// A chain from a key nobody registered (a thief's): it fails.
	third, _ := log.entries(filepath.Join(t.TempDir(), "thief"), 20, 10, 0)
	writeSink(t, sink, gw, third)
	out, err = exec.Command(bin, "verify", "--sink", sink, "--seal-keys", filepath.Join(pkiDir, sealKeysDir)).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "TAMPERED: gateway gw-re, epoch 2: log fails at sequence 215")
}

var weirOnce struct {
	sync.Once
	bin string
	err error
}

// weirBinary builds the gateway's weir once per test binary: verify-proof
// is the gateway's command, run where nothing else is.
func weirBinary(t *testing.T) string {
	weirOnce.Do(func() {
		weirOnce.bin = filepath.Join(binDir, "weir")
		cmd := exec.Command("go", "build", "-o", weirOnce.bin, "../weir")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			weirOnce.err = fmt.Errorf("go build weir: %w\n%s", err, out)
		}
	})
	require.NoError(t, weirOnce.err)
	return weirOnce.bin
}
