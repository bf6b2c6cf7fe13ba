package fleet

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink/collector"
)

// Two collectors on one stream: the store of the one that took no
// batch shows the gateways of the other, and a store opened again
// resumes where it stood, counting nothing twice.
func TestFollowJetStream(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second))
	t.Cleanup(srv.Shutdown)
	ctx := t.Context()
	open := func(name string) *collector.JetStream {
		o := collector.DefaultJetStreamOptions()
		o.URLs, o.Name, o.Replicas = srv.ClientURL(), name, 1
		js, err := collector.OpenJetStream(ctx, o, nil)
		require.NoError(t, err)
		t.Cleanup(func() { js.Close() })
		return js
	}
	writer, reader := open("c1"), open("c2")
	now := time.Now()
	seq := map[string]uint64{}
	write := func(id string, evs ...*event.Event) {
		var entries []collector.Entry
		for _, ev := range evs {
			seq[id]++
			ev.Seq, ev.Gateway = seq[id], id
			entries = append(entries, collector.Entry{Seq: seq[id], Event: ev})
		}
		_, err := writer.Write(id, entries)
		require.NoError(t, err)
	}
	for m := 30; m > 10; m-- {
		at := now.Add(-time.Duration(m) * time.Minute)
		for i := range 3 {
			write(fmt.Sprintf("gw-%d", i), spoolEv(at, int64(m), 1), linkEv(at, "e", "connected", 20, 0.01*float64(i), 1e6, 0, 0), reading(at))
		}
	}
	dir := t.TempDir()
	o := DefaultOptions()
	o.Dir = dir
	st, err := Open(o)
	require.NoError(t, err)
	js, stream, prefix := reader.Stream()
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.FollowJetStream(fctx, js, stream, prefix) }()
	require.Eventually(t, func() bool { return len(st.Rows()) == 3 && !st.Stats().Replay.Running }, 10*time.Second, 20*time.Millisecond)
	// Live now.
	at := now.Add(-5 * time.Minute)
	write("gw-1", tamperEv(at, "open"))
	require.Eventually(t, func() bool { d, _ := st.Detail("gw-1"); return d.Row.Tamper == "open" }, 10*time.Second, 20*time.Millisecond)
	d, _ := st.Detail("gw-1")
	assert.Equal(t, LevelCritical, d.Row.Level)
	assert.WithinDuration(t, time.Now(), d.Row.LastAck, 10*time.Second, "the last ack is when the stream took it")
	stop()
	require.NoError(t, <-done)
	require.NoError(t, st.Close())
	rates := func(s *Store) float64 {
		ps, err := s.Series("gw-0", Hour)
		require.NoError(t, err)
		var sum float64
		for _, p := range ps {
			if p.Name == "rate:reading" {
				for _, v := range p.Values {
					if v == v {
						sum += v * p.Step.Seconds()
					}
				}
			}
		}
		return sum
	}
	before := rates(st)
	assert.Equal(t, 20.0, before)

	// More records while the store is closed; opened again, it takes
	// those and only those.
	for m := 10; m > 5; m-- {
		at := now.Add(-time.Duration(m) * time.Minute)
		write("gw-0", spoolEv(at, int64(m), 1), reading(at))
	}
	again, err := Open(o)
	require.NoError(t, err)
	fctx, stop = context.WithCancel(ctx)
	go func() { done <- again.FollowJetStream(fctx, js, stream, prefix) }()
	if !assert.Eventually(t, func() bool { return rates(again) == 25 }, 10*time.Second, 20*time.Millisecond) {
		d, _ := again.Detail("gw-0")
		t.Fatalf("rates %v, pos %d, stats %+v, records %d", rates(again), again.NeedsRebuild("jetstream:"+stream), again.Stats(), d.Records)
	}
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, 25.0, rates(again), "nothing taken twice")
	stop()
	require.NoError(t, <-done)
}
