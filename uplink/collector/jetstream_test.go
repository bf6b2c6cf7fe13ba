package collector_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/pki"
	"github.com/weirgw/weir/uplink/sender"
)

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// natsNode is one nats-server of a cluster, run in this process.
type natsNode struct {
	opts *server.Options
	srv  *server.Server
}

func (n *natsNode) start(t *testing.T) {
	t.Helper()
	opts := *n.opts
	s, err := server.NewServer(&opts)
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second), "nats-server %s did not start", n.opts.ServerName)
	n.srv = s
}

func (n *natsNode) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// startCluster runs a 3-node JetStream cluster on loopback and returns
// its nodes and client URLs.
func startCluster(t *testing.T) ([]*natsNode, string) {
	t.Helper()
	var routes []*url.URL
	var cports, rports []int
	for range 3 {
		cports, rports = append(cports, freePort(t)), append(rports, freePort(t))
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", rports[len(rports)-1])})
	}
	var nodes []*natsNode
	var urls string
	for i := range 3 {
		n := &natsNode{opts: &server.Options{ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: cports[i],
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "weir", Host: "127.0.0.1", Port: rports[i]}, Routes: routes}}
		nodes = append(nodes, n)
		if i > 0 {
			urls += ","
		}
		urls += fmt.Sprintf("nats://127.0.0.1:%d", cports[i])
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { n.start(t) })
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop()
		}
	})
	return nodes, urls
}

type collectorProc struct {
	addr   string
	cancel context.CancelFunc
	done   chan struct{}
	sink   *collector.JetStream
}

func quietLog() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.DiscardHandler)
}

// startCollector runs a collector on addr ("" for a new port) whose sink
// is the JetStream cluster at urls.
func startCollector(t *testing.T, pkiDir, addr, name, urls string) *collectorProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt := collector.DefaultJetStreamOptions()
	opt.URLs, opt.Name = urls, name
	sink, err := collector.OpenJetStream(ctx, opt, quietLog())
	require.NoError(t, err)
	cert, key := pki.CollectorFiles(pkiDir, "localhost")
	tc, err := uplink.ServerTLS(uplink.TLSConfig{CA: filepath.Join(pkiDir, pki.CACertFile), Cert: cert, Key: key})
	require.NoError(t, err)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	require.Eventually(t, func() bool { ln, err = net.Listen("tcp", addr); return err == nil }, 5*time.Second, 50*time.Millisecond)
	srv := collector.NewServer(collector.DefaultConfig(), tc, sink, quietLog())
	sctx, scancel := context.WithCancel(context.Background())
	p := &collectorProc{addr: ln.Addr().String(), cancel: scancel, done: make(chan struct{}), sink: sink}
	go func() { defer close(p.done); _ = srv.Serve(sctx, ln) }()
	t.Cleanup(p.stop)
	return p
}

func (p *collectorProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cancel()
	<-p.done
	p.sink.Close()
}

// TestJetStreamClusterExactlyOnce: a gateway delivers through two
// collectors sharing a 3-node JetStream cluster (stream and resume
// bucket with 3 replicas) while records keep arriving; mid-run its
// collector stops (it fails over to the other), a JetStream node is shut
// down and restarted, and the first collector comes back (it fails back).
// Every record lands in the stream exactly once: the count and every
// sequence are checked.
func TestJetStreamClusterExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node JetStream cluster and two collectors: about 15 s")
	}
	nodes, urls := startCluster(t)
	pkiDir := t.TempDir()
	require.NoError(t, pki.InitCA(pkiDir, "test", pki.Options{}))
	_, _, err := pki.IssueCollector(pkiDir, "localhost", []string{"127.0.0.1"}, pki.Options{})
	require.NoError(t, err)
	_, _, err = pki.IssueGateway(pkiDir, "gw-1", pki.Options{})
	require.NoError(t, err)

	a := startCollector(t, pkiDir, "", "a", urls)
	b := startCollector(t, pkiDir, "", "b", urls)

	sp, err := spool.Open(spool.Options{Dir: t.TempDir(), Logger: quietLog()})
	require.NoError(t, err)
	defer sp.Close()
	cfg := uplink.DefaultConfig()
	cert, key := pki.GatewayFiles(pkiDir, "gw-1")
	cfg.TLS = uplink.TLSConfig{CA: filepath.Join(pkiDir, pki.CACertFile), Cert: cert, Key: key}
	cfg.Endpoints = []uplink.Endpoint{{Address: a.addr, ServerName: "localhost"}, {Address: b.addr, ServerName: "localhost"}}
	cfg.ReconnectMin, cfg.ReconnectMax, cfg.ProbeInterval = 20*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	cfg.BatchMaxRecords, cfg.Window, cfg.FlushInterval = 50, 4, 20*time.Millisecond
	snd, err := sender.New(cfg, "gw-1", "boot-1", sp, quietLog())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sdone := make(chan struct{})
	go func() { defer close(sdone); _ = snd.Run(ctx) }()

	const batches, per = 40, 50
	var seqs []uint64
	appendBatch := func(i int) {
		var entries []spool.Entry
		for j := range per {
			e := event.Event{Gateway: "gw-1", Source: "test", Kind: event.Kind(j % 6), Message: fmt.Sprintf("batch %d record %d", i, j),
				Time: time.Now().UnixNano()}
			b, err := e.MarshalBinary()
			require.NoError(t, err)
			entries = append(entries, spool.Entry{Data: b})
		}
		first, err := sp.Append(context.Background(), entries, nil)
		require.NoError(t, err)
		for j := range per {
			seqs = append(seqs, first+uint64(j))
		}
	}
	step := func(i int) {
		switch i {
		case 8:
			t.Log("collector a stops: the gateway fails over to b")
			a.stop()
		case 14:
			t.Log("JetStream node n2 shut down")
			nodes[1].stop()
		case 22:
			t.Log("JetStream node n2 restarted")
			nodes[1].start(t)
		case 26:
			t.Log("collector a comes back on its address: the gateway fails back")
			a = startCollector(t, pkiDir, a.addr, "a", urls)
		}
	}
	for i := range batches {
		appendBatch(i)
		step(i)
		time.Sleep(100 * time.Millisecond)
	}
	last := seqs[len(seqs)-1]
	require.Eventually(t, func() bool { return sp.Stats().AckedUpTo >= last }, 60*time.Second, 50*time.Millisecond,
		"spool acked up to %d of %d; sender %+v", sp.Stats().AckedUpTo, last, snd.Status())
	cancel()
	<-sdone

	// Read the stream back.
	nc, err := nats.Connect(urls)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	st, err := js.Stream(rctx, "WEIR")
	require.NoError(t, err)
	info, err := st.Info(rctx)
	require.NoError(t, err)
	cons, err := st.OrderedConsumer(rctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"weir.gw-1.>"}})
	require.NoError(t, err)
	t.Logf("stream: %d messages", info.State.Msgs)
	got := map[uint64]int{}
	read := 0
	for read < int(info.State.Msgs) && rctx.Err() == nil {
		msgs, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(t, err)
		for m := range msgs.Messages() {
			read++
			seq, err := strconv.ParseUint(m.Headers().Get("Weir-Seq"), 10, 64)
			require.NoError(t, err)
			got[seq]++
			require.Equal(t, "weir.gw-1.", m.Subject()[:len("weir.gw-1.")])
		}
	}
	for _, seq := range seqs {
		require.Equal(t, 1, got[seq], "sequence %d in the stream", seq)
	}
	require.Len(t, got, len(seqs))
	require.Equal(t, uint64(len(seqs)), info.State.Msgs, "messages in the stream")
	t.Logf("%d records, %d in the stream, each sequence once; sender: %d connects", len(seqs), info.State.Msgs, snd.Status().Connects)
}

// BenchmarkJetStreamSink measures the head-end's cost per record: a
// JetStream sink writing 100-record batches for 100 gateways to a 3-node
// cluster (replicas 3) run in this process. It reports the CPU time of
// the whole process (collector sink and the three nats-servers) and the
// stream's bytes per record, and the process's peak RSS (make bench).
func BenchmarkJetStreamSink(b *testing.B) {
	_, urls := startClusterB(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt := collector.DefaultJetStreamOptions()
	opt.URLs, opt.Name = urls, "bench"
	sink, err := collector.OpenJetStream(ctx, opt, slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	defer sink.Close()
	msg := strings.Repeat("x", 150)
	const gateways, batch = 100, 100
	seq := make([]uint64, gateways)
	var cpu0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
	b.ResetTimer()
	n := 0
	for n < b.N {
		g := n / batch % gateways
		gw := fmt.Sprintf("gw-%03d", g)
		entries := make([]collector.Entry, batch)
		for i := range entries {
			seq[g]++
			entries[i] = collector.Entry{Seq: seq[g], Event: &event.Event{Seq: seq[g], Gateway: gw, Source: "varlog", Kind: event.KindLog,
				Time: time.Now().UnixNano(), Message: msg, Fields: []event.Field{event.Str("path", "/var/log/app.log"), event.Uint("offset", seq[g]*150)}}}
		}
		_, err := sink.Write(gw, entries)
		require.NoError(b, err)
		n += batch
	}
	b.StopTimer()
	var cpu1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
	cpuNs := (syscall.TimevalToNsec(cpu1.Utime) + syscall.TimevalToNsec(cpu1.Stime)) - (syscall.TimevalToNsec(cpu0.Utime) + syscall.TimevalToNsec(cpu0.Stime))
	nc, err := nats.Connect(urls)
	require.NoError(b, err)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, "WEIR")
	require.NoError(b, err)
	info, err := st.Info(ctx)
	require.NoError(b, err)
	b.ReportMetric(float64(cpuNs)/float64(n), "cpu-ns/record")
	b.ReportMetric(float64(info.State.Bytes)/float64(info.State.Msgs), "stream-bytes/record")
	b.ReportMetric(float64(cpu1.Maxrss)/1024, "peak-rss-MiB")
}

// startClusterB is startCluster for a benchmark.
func startClusterB(b *testing.B) ([]*natsNode, string) {
	var routes []*url.URL
	var cports, rports []int
	port := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(b, err)
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	for range 3 {
		cports, rports = append(cports, port()), append(rports, port())
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", rports[len(rports)-1])})
	}
	var nodes []*natsNode
	var urls []string
	for i := range 3 {
		opts := &server.Options{ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: cports[i],
			JetStream: true, StoreDir: b.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "weir", Host: "127.0.0.1", Port: rports[i]}, Routes: routes}
		s, err := server.NewServer(opts)
		require.NoError(b, err)
		go s.Start()
		nodes = append(nodes, &natsNode{opts: opts, srv: s})
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", cports[i]))
	}
	for _, n := range nodes {
		require.True(b, n.srv.ReadyForConnections(10*time.Second))
	}
	b.Cleanup(func() {
		for _, n := range nodes {
			n.stop()
		}
	})
	return nodes, strings.Join(urls, ",")
}
