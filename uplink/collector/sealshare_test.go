package collector

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/seal"
)

// natsServer runs one JetStream nats-server in this process and returns
// its client URL.
func natsServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	s, err := server.NewServer(&server.Options{ServerName: "seal", Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return fmt.Sprintf("nats://127.0.0.1:%d", port)
}

// sharedCollector is a JetStream sink and its live check, as
// weir-collector run wires them.
type sharedCollector struct {
	js    *JetStream
	check *SealCheck
}

func openShared(t *testing.T, url, name, keys string) *sharedCollector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt := DefaultJetStreamOptions()
	opt.URLs, opt.Name, opt.Replicas = url, name, 1
	js, err := OpenJetStream(ctx, opt, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = js.Close() })
	c := NewSealCheck(keys, slog.New(slog.DiscardHandler))
	c.Share(js)
	return &sharedCollector{js: js, check: c}
}

// deliver is one session's batch as the server handles it: the sink's
// write, then the check. observe false is a collector killed between the
// two.
func (s *sharedCollector) deliver(t *testing.T, gw string, batch []Entry, observe bool) []*seal.Failure {
	t.Helper()
	batch = append([]Entry(nil), batch...)
	_, err := s.js.Write(gw, batch)
	require.NoError(t, err)
	if !observe {
		return nil
	}
	return s.check.Observe(gw, batch)
}

// TestSealCheckSharedHeadEnd: collectors sharing a JetStream head-end
// take a gateway over from each other (a collector killed between a
// write and its check among them); each goes on from the state kept with
// the resume state and the stream after it: no false alarm, the seals
// counted across them, and a record changed on its way is still caught
// at its span. Without the shared state the second collector starts in
// the middle of the log (gives up, never seals anything).
func TestSealCheckSharedHeadEnd(t *testing.T) {
	url := natsServer(t)
	keys := t.TempDir()
	entries, pub := sealedLog(t, "gw-js", 300, 25) // 12 seals
	require.NoError(t, RegisterSealKey(keys, "gw-js", pub))
	a := openShared(t, url, "a", keys)
	b := openShared(t, url, "b", keys)
	batches := func(from, to int) [][]Entry {
		var out [][]Entry
		for i := from; i < to; i += 20 {
			out = append(out, entries[i:min(i+20, to)])
		}
		return out
	}
	n := len(entries)
	steps := []struct {
		who    *sharedCollector
		from   int
		to     int
		killed bool // the last batch written, not checked
	}{
		{a, 0, 100, false},
		{b, 100, 170, true},  // b dies after writing its last batch
		{a, 170, 240, false}, // back to a, which is stale
		{b, 240, n, false},
	}
	for _, st := range steps {
		st.who.js.Resume("gw-js", entries[st.from].Seq)
		bs := batches(st.from, st.to)
		for i, batch := range bs {
			observe := !(st.killed && i == len(bs)-1)
			require.Empty(t, st.who.deliver(t, "gw-js", batch, observe), "a false alarm at %d", batch[0].Seq)
		}
	}
	got := b.check.Status()
	require.Len(t, got, 1)
	require.Nil(t, got[0].Failure)
	require.Empty(t, got[0].GaveUp)
	require.Equal(t, uint64(12), got[0].Stats.Seals, "every seal, across the collectors")
	require.Equal(t, uint64(11), got[0].LastEpoch)

	// Without the shared state: the last collector alone sees a log
	// begun in the middle and proves nothing.
	alone := NewSealCheck(keys, slog.New(slog.DiscardHandler))
	alone.Observe("gw-js", append([]Entry(nil), entries[240:]...))
	require.Zero(t, alone.Status()[0].Stats.Seals)

	// A record changed on its way to the second collector after a
	// takeover: the seal over it fails, named with its span.
	url2 := natsServer(t)
	c := openShared(t, url2, "c", keys)
	d := openShared(t, url2, "d", keys)
	bad := append([]Entry(nil), entries...)
	e := *bad[160].Event
	e.Message = "changed"
	rec, err := e.MarshalBinary()
	require.NoError(t, err)
	bad[160].Event, bad[160].Record, bad[160].Leaf = &e, rec, merkle.RecordLeaf(bad[160].Seq, rec)
	for i := 0; i < 100; i += 20 {
		require.Empty(t, c.deliver(t, "gw-js", bad[i:i+20], true))
	}
	d.js.Resume("gw-js", bad[100].Seq)
	var fails []*seal.Failure
	for i := 100; i < 200; i += 20 {
		fails = append(fails, d.deliver(t, "gw-js", bad[i:i+20], true)...)
	}
	require.Len(t, fails, 1)
	require.Equal(t, bad[155].Seq, fails[0].Seq, fails[0].Error()) // the seal of epoch 5 at index 155
	require.Equal(t, bad[181].Seq-1, fails[0].Upto)
}
