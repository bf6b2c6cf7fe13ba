package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/pki"
	"github.com/weirgw/weir/uplink/rudp"
)

// peer is a real collector on loopback with a real JSONL sink.
type peer struct {
	t      testing.TB
	dir    string
	sink   string
	addr   string
	cancel context.CancelFunc
	done   chan struct{}
	jsonl  *collector.JSONL
	owned  bool // stop closes jsonl
}

func provision(t testing.TB, ids ...string) string {
	dir := t.TempDir()
	require.NoError(t, pki.InitCA(dir, "test", pki.Options{}))
	_, _, err := pki.IssueCollector(dir, "localhost", []string{"127.0.0.1"}, pki.Options{})
	require.NoError(t, err)
	for _, id := range ids {
		_, _, err := pki.IssueGateway(dir, id, pki.Options{})
		require.NoError(t, err)
	}
	return dir
}

func startCollector(t testing.TB, pkiDir, sink, addr string) *peer {
	t.Helper()
	j, err := collector.OpenJSONL(sink, quiet())
	require.NoError(t, err)
	p := startServer(t, pkiDir, j, addr, "tls", quiet())
	p.sink = sink
	p.owned = true
	return p
}

// startServer runs a collector Server on loopback writing to j (which the
// caller may share between servers) over transport tls or dtls.
func startServer(t testing.TB, pkiDir string, j *collector.JSONL, addr, transport string, log *slog.Logger) *peer {
	t.Helper()
	cert, key := pki.CollectorFiles(pkiDir, "localhost")
	tcfg := uplink.TLSConfig{CA: filepath.Join(pkiDir, pki.CACertFile), Cert: cert, Key: key}
	tc, err := uplink.ServerTLS(tcfg)
	require.NoError(t, err)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	srv := collector.NewServer(collector.DefaultConfig(), tc, j, log)
	if transport == "dtls" {
		dc, err := rudp.ServerConfig(tcfg)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			ln, err = rudp.Listen(addr, dc, rudp.Options{Logger: quiet(), HandshakeTimeout: 5 * time.Second,
				OnHandshakeError: srv.HandshakeRefused("dtls")})
			return err == nil
		}, 5*time.Second, 50*time.Millisecond)
	} else {
		require.Eventually(t, func() bool { ln, err = net.Listen("tcp", addr); return err == nil }, 5*time.Second, 50*time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &peer{t: t, dir: pkiDir, addr: ln.Addr().String(), cancel: cancel, done: make(chan struct{}), jsonl: j}
	go func() {
		defer close(p.done)
		if transport == "dtls" {
			_ = srv.ServeSecure(ctx, ln, "dtls")
			return
		}
		_ = srv.Serve(ctx, ln)
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *peer) stop() {
	p.cancel()
	<-p.done
	if p.owned {
		_ = p.jsonl.Close()
	}
}

func quiet() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.DiscardHandler)
}

func gatewayConfig(pkiDir, id, addr string) uplink.Config {
	c := uplink.DefaultConfig()
	cert, key := pki.GatewayFiles(pkiDir, id)
	c.TLS = uplink.TLSConfig{CA: filepath.Join(pkiDir, pki.CACertFile), Cert: cert, Key: key}
	c.Endpoints = []uplink.Endpoint{{Address: addr, ServerName: "localhost"}}
	c.ReconnectMin, c.ReconnectMax = 20*time.Millisecond, 200*time.Millisecond
	c.BatchMaxRecords = 100
	c.Window = 3
	return c
}

func openSpool(t testing.TB) *spool.Spool {
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(t.TempDir(), "spool"), Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { sp.Close() })
	return sp
}

// appendLines spools n log records "line <i>" and returns their sequences.
func appendLines(t testing.TB, sp *spool.Spool, from, n int) []uint64 {
	var recs []spool.Entry
	for i := from; i < from+n; i++ {
		e := event.Event{Message: fmt.Sprintf("line %d", i), Source: "test", Gateway: "payload-says-other"}
		b, err := e.MarshalBinary()
		require.NoError(t, err)
		recs = append(recs, spool.Entry{Data: b})
	}
	first, err := sp.Append(context.Background(), recs, nil)
	require.NoError(t, err)
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = first + uint64(i)
	}
	return seqs
}

// sinkSeqs reads the sink back: messages by sequence, failing on duplicates.
func sinkSeqs(t testing.TB, path string) map[uint64]event.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[uint64]event.Event{}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec struct {
			Seq     uint64 `json:"seq"`
			Gateway string `json:"gateway"`
			Message string `json:"message"`
		}
		require.NoError(t, json.Unmarshal(line, &rec))
		_, dup := out[rec.Seq]
		require.False(t, dup, "sequence %d written twice", rec.Seq)
		out[rec.Seq] = event.Event{Seq: rec.Seq, Gateway: rec.Gateway, Message: rec.Message}
	}
	return out
}

func runSender(t testing.TB, cfg uplink.Config, id string, sp *spool.Spool) (*Sender, func()) {
	s, err := New(cfg, id, "boot-1", sp, quiet())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); require.NoError(t, s.Run(ctx)) }()
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return s, stop
}

func waitDrained(t testing.TB, sp *spool.Spool, s *Sender) {
	t.Helper()
	require.Eventually(t, func() bool { return sp.Stats().Records == 0 }, 20*time.Second, 10*time.Millisecond,
		"spool not drained: %+v, sender %+v", sp.Stats(), s.Status())
}

func TestDeliversEveryRecordOnce(t *testing.T) {
	pkiDir := provision(t, "gw-1")
	p := startCollector(t, pkiDir, filepath.Join(t.TempDir(), "sink.jsonl"), "")
	sp := openSpool(t)
	seqs := appendLines(t, sp, 0, 1000)
	s, _ := runSender(t, gatewayConfig(pkiDir, "gw-1", p.addr), "gw-1", sp)
	seqs = append(seqs, appendLines(t, sp, 1000, 500)...) // while connected
	waitDrained(t, sp, s)

	got := sinkSeqs(t, p.sink)
	require.Len(t, got, len(seqs))
	for i, seq := range seqs {
		require.Equal(t, fmt.Sprintf("line %d", i), got[seq].Message)
		require.Equal(t, "gw-1", got[seq].Gateway, "the certificate names the gateway, not the payload")
	}
	st := s.Status()
	require.Equal(t, StateConnected, st.State)
	require.Equal(t, seqs[len(seqs)-1], st.LastAckSeq)
	require.Equal(t, uint64(len(seqs)), st.RecordsAcked)
}

func TestResumesFromCollectorMark(t *testing.T) {
	pkiDir := provision(t, "gw-1")
	sinkPath := filepath.Join(t.TempDir(), "sink.jsonl")
	sp := openSpool(t)
	seqs := appendLines(t, sp, 0, 10)

	// The collector already holds the first 4 (their acks were lost).
	j, err := collector.OpenJSONL(sinkPath, quiet())
	require.NoError(t, err)
	var held []collector.Entry
	for _, seq := range seqs[:4] {
		held = append(held, collector.Entry{Seq: seq, Event: &event.Event{Seq: seq, Gateway: "gw-1", Message: "held", Quality: event.Quality{ErrorBound: -1}}})
	}
	_, err = j.Write("gw-1", held)
	require.NoError(t, err)
	require.NoError(t, j.Close())

	p := startCollector(t, pkiDir, sinkPath, "")
	s, _ := runSender(t, gatewayConfig(pkiDir, "gw-1", p.addr), "gw-1", sp)
	waitDrained(t, sp, s)
	got := sinkSeqs(t, sinkPath)
	require.Len(t, got, 10)
	require.Equal(t, "held", got[seqs[3]].Message)
	require.Equal(t, "line 4", got[seqs[4]].Message)
	require.Equal(t, uint64(6), s.Status().RecordsSent, "only records beyond the collector's mark are sent")
}

func TestCollectorRestartLosesNothing(t *testing.T) {
	pkiDir := provision(t, "gw-1")
	sinkPath := filepath.Join(t.TempDir(), "sink.jsonl")
	p := startCollector(t, pkiDir, sinkPath, "")
	addr := p.addr
	sp := openSpool(t)
	var seqs []uint64
	s, _ := runSender(t, gatewayConfig(pkiDir, "gw-1", addr), "gw-1", sp)
	for round := range 4 {
		seqs = append(seqs, appendLines(t, sp, round*300, 300)...)
		if round == 1 {
			// Once the first session has acked something, stop the
			// collector mid-stream, most likely with batches in flight.
			require.Eventually(t, func() bool { return s.Status().RecordsAcked > 0 }, 10*time.Second, time.Millisecond)
			p.stop()
			seqs = append(seqs, appendLines(t, sp, 10000, 300)...)
			p = startCollector(t, pkiDir, sinkPath, addr)
		}
	}
	waitDrained(t, sp, s)
	got := sinkSeqs(t, sinkPath)
	require.Len(t, got, len(seqs))
	for _, seq := range seqs {
		require.Contains(t, got, seq)
	}
	require.GreaterOrEqual(t, s.Status().Connects, uint64(2))
}

func TestCollectorRefusesMismatchedIdentity(t *testing.T) {
	pkiDir := provision(t, "gw-1", "gw-2")
	p := startCollector(t, pkiDir, filepath.Join(t.TempDir(), "sink.jsonl"), "")
	sp := openSpool(t)
	appendLines(t, sp, 0, 5)
	// gw-2's certificate, but it says it is gw-1.
	cfg := gatewayConfig(pkiDir, "gw-2", p.addr)
	s, stop := runSender(t, cfg, "gw-1", sp)
	require.Eventually(t, func() bool { return s.Status().LastError != "" }, 10*time.Second, 10*time.Millisecond)
	stop()
	require.Contains(t, s.Status().LastError, `hello names gateway "gw-1" but the client certificate is for "gw-2"`)
	require.Equal(t, int64(5), sp.Stats().Records, "nothing may leave the spool")
	require.Empty(t, sinkSeqs(t, p.sink))
}

func TestUntrustedClientRefused(t *testing.T) {
	pkiDir := provision(t)
	other := provision(t, "gw-1") // a different CA
	p := startCollector(t, pkiDir, filepath.Join(t.TempDir(), "sink.jsonl"), "")
	sp := openSpool(t)
	appendLines(t, sp, 0, 1)
	cfg := gatewayConfig(other, "gw-1", p.addr)
	cfg.TLS.CA = filepath.Join(pkiDir, pki.CACertFile) // trusts the collector
	s, stop := runSender(t, cfg, "gw-1", sp)
	require.Eventually(t, func() bool { return s.Status().LastError != "" }, 10*time.Second, 10*time.Millisecond)
	stop()
	require.Equal(t, int64(1), sp.Stats().Records)
	require.Empty(t, sinkSeqs(t, p.sink))
}

func TestDisabledWithoutEndpoints(t *testing.T) {
	sp := openSpool(t)
	s, err := New(uplink.DefaultConfig(), "gw-1", "b", sp, quiet())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.NoError(t, s.Run(ctx))
	require.Equal(t, StateDisabled, s.Status().State)
}

// TestFlushWhenIdle: on an idle session a record goes at once, although
// flush_interval is long; with flush_when_idle off it waits for it.
func TestFlushWhenIdle(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("flush_when_idle=", on), func(t *testing.T) {
			pkiDir := provision(t, "gw-1")
			p := startCollector(t, pkiDir, filepath.Join(t.TempDir(), "sink.jsonl"), "")
			sp := openSpool(t)
			cfg := gatewayConfig(pkiDir, "gw-1", p.addr)
			cfg.FlushInterval, cfg.FlushWhenIdle = time.Minute, on
			s, _ := runSender(t, cfg, "gw-1", sp)
			require.Eventually(t, func() bool { return s.Status().State == StateConnected }, 20*time.Second, 10*time.Millisecond)
			appendLines(t, sp, 0, 1)
			if on {
				waitDrained(t, sp, s)
				require.Equal(t, uint64(1), s.Status().RecordsAcked)
				return
			}
			time.Sleep(500 * time.Millisecond)
			require.Zero(t, s.Status().RecordsSent, "a partial batch waits flush_interval (1m)")
		})
	}
}
