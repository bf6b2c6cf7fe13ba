package collector

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testbed is a real server on loopback over TLS with gateways gw-1..gw-3
// provisioned.
type testbed struct {
	t    *testing.T
	dir  string
	srv  *Server
	sink *memSink
	logs *syncBuf
	addr string
}

func newTestbed(t *testing.T, cfg Config) *testbed { return newTestbedWith(t, cfg, nil) }

// newTestbedWith is newTestbed with setup run on the server before it
// serves.
func newTestbedWith(t *testing.T, cfg Config, setup func(*Server)) *testbed {
	dir := t.TempDir()
	require.NoError(t, pki.InitCA(dir, "test", pki.Options{}))
	_, _, err := pki.IssueCollector(dir, "localhost", []string{"127.0.0.1"}, pki.Options{})
	require.NoError(t, err)
	for _, id := range []string{"gw-1", "gw-2", "gw-3"} {
		_, _, err = pki.IssueGateway(dir, id, pki.Options{})
		require.NoError(t, err)
	}
	cert, key := pki.CollectorFiles(dir, "localhost")
	stc, err := uplink.ServerTLS(uplink.TLSConfig{CA: filepath.Join(dir, pki.CACertFile), Cert: cert, Key: key})
	require.NoError(t, err)
	tb := &testbed{t: t, dir: dir, sink: newMemSink(), logs: &syncBuf{}}
	tb.srv = NewServer(cfg, stc, tb.sink, slog.New(slog.NewTextHandler(tb.logs, nil)))
	if setup != nil {
		setup(tb.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tb.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tb.srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return tb
}

func (tb *testbed) clientTLS(id string) *tls.Config {
	gcert, gkey := pki.GatewayFiles(tb.dir, id)
	ctc, err := uplink.ClientTLS(uplink.TLSConfig{CA: filepath.Join(tb.dir, pki.CACertFile), Cert: gcert, Key: gkey}, "localhost")
	require.NoError(tb.t, err)
	return ctc
}

// conn is a hand-driven gateway session.
type conn struct {
	t  *testing.T
	c  *tls.Conn
	br *bufio.Reader
}

func (tb *testbed) dial(id string) *conn {
	c, err := tls.Dial("tcp", tb.addr, tb.clientTLS(id))
	require.NoError(tb.t, err)
	tb.t.Cleanup(func() { c.Close() })
	return &conn{t: tb.t, c: c, br: bufio.NewReader(c)}
}

func (c *conn) send(ms ...uplink.Message) {
	var out []byte
	for _, m := range ms {
		out = uplink.AppendFrame(out, m)
	}
	_, err := c.c.Write(out)
	require.NoError(c.t, err)
}

func (c *conn) recv() (uplink.Message, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, body, _, err := uplink.ReadFrame(c.br, nil, 1<<20)
	if err != nil {
		return nil, err
	}
	return uplink.Decode(typ, body)
}

// expectError reads until an Error of code arrives (answers before it
// are skipped) and then the end of the connection.
func (c *conn) expectError(code uplink.ErrorCode) *uplink.Error {
	c.t.Helper()
	for {
		m, err := c.recv()
		require.NoError(c.t, err, "want an Error of code %s", code)
		if e, ok := m.(*uplink.Error); ok {
			require.Equal(c.t, code, e.Code, e.Message)
			_, err := c.recv()
			require.Error(c.t, err, "the session ends after its Error")
			return e
		}
	}
}

func hello(id string, floor uint64) *uplink.Hello {
	return &uplink.Hello{Version: uplink.ProtocolVersion, Gateway: id, BootID: "b", Floor: floor, MaxRecords: 1000, MaxBytes: 1 << 20}
}

func welcome(highest uint64) *uplink.Welcome {
	return &uplink.Welcome{Version: uplink.ProtocolVersion, Highest: highest, MaxRecords: 1000, MaxBytes: 1 << 20}
}

// TestSessions speaks the protocol to a real server over TLS, frame by
// frame, and checks each answer.
func TestSessions(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessionsPerGateway = 100 // each case's session stays open
	tb := newTestbed(t, cfg)
	h := hello("gw-1", 99)
	good := payload(t, 100, 3)
	bomb := zst(t, make([]byte, 4<<20))
	cases := []struct {
		name   string
		send   []uplink.Message
		want   []uplink.Message // answers in order; an Error is compared by code
		logged string
	}{
		{"data and ping", []uplink.Message{h, &uplink.Ping{Nonce: 5},
			&uplink.Data{First: 100, Count: 3, Codec: uplink.CodecZstd, Payload: zst(t, good)},
			&uplink.Data{First: 101, Count: 3, Payload: payload(t, 101, 3)}},
			[]uplink.Message{welcome(99), &uplink.Pong{Nonce: 5}, &uplink.Ack{Cumulative: 102}, &uplink.Ack{Cumulative: 103}}, "gateway connected"},
		{"resume", []uplink.Message{h}, []uplink.Message{welcome(103)}, ""},
		{"version 2 gateway", []uplink.Message{&uplink.Hello{Version: 2, Gateway: "gw-1", Floor: 99}},
			[]uplink.Message{&uplink.Welcome{Version: 2, Highest: 103}}, "protocol=2"},
		{"lower limits", []uplink.Message{&uplink.Hello{Version: 3, Gateway: "gw-1", Floor: 99, MaxRecords: 10, MaxBytes: 4096}},
			[]uplink.Message{&uplink.Welcome{Version: 3, Highest: 103, MaxRecords: 10, MaxBytes: 4096}}, "max_records=10"},
		{"higher limits", []uplink.Message{&uplink.Hello{Version: 3, Gateway: "gw-1", Floor: 99, MaxRecords: 100000, MaxBytes: 8 << 20}},
			[]uplink.Message{&uplink.Welcome{Version: 3, Highest: 103, MaxRecords: 10000, MaxBytes: 4 << 20}}, "max_records=10000"},
		{"limits out of range", []uplink.Message{&uplink.Hello{Version: 3, Gateway: "gw-1", Floor: 99, MaxRecords: 0, MaxBytes: 4096}},
			[]uplink.Message{&uplink.Error{Code: uplink.ErrProtocol}}, "batch limits out of range"},
		{"version", []uplink.Message{&uplink.Hello{Version: 1, Gateway: "gw-1"}},
			[]uplink.Message{&uplink.Error{Code: uplink.ErrVersion}}, "reason=version"},
		{"identity", []uplink.Message{hello("gw-2", 0)},
			[]uplink.Message{&uplink.Error{Code: uplink.ErrIdentity}}, `cert_gateway=gw-1`},
		{"zip bomb", []uplink.Message{h, &uplink.Data{First: 200, Count: 1, Codec: uplink.CodecZstd, Payload: bomb}},
			[]uplink.Message{welcome(103), &uplink.Error{Code: uplink.ErrLimit}}, "decodes to more than"},
		{"data before hello", []uplink.Message{&uplink.Data{First: 1, Count: 1, Payload: good}},
			[]uplink.Message{&uplink.Error{Code: uplink.ErrProtocol}}, "first message is not hello"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cn := tb.dial("gw-1")
			cn.send(c.send...)
			for _, want := range c.want {
				got, err := cn.recv()
				require.NoError(t, err)
				if we, ok := want.(*uplink.Error); ok {
					ge, ok := got.(*uplink.Error)
					require.True(t, ok, "got %#v", got)
					require.Equal(t, we.Code, ge.Code, ge.Message)
					continue
				}
				require.Equal(t, want, got)
			}
			require.Eventually(t, func() bool { return strings.Contains(tb.logs.String(), c.logged) }, 5*time.Second, 5*time.Millisecond,
				"log: %s", tb.logs.String())
		})
	}
	require.Len(t, tb.sink.written, 4, "100..103 once each")
	require.Equal(t, 1.0, testutil.ToFloat64(tb.srv.metrics.batchesRefused.WithLabelValues("gw-1", "size")))
	require.Equal(t, 2.0, testutil.ToFloat64(tb.srv.metrics.duplicates.WithLabelValues("gw-1")), "101, 102 sent twice")
}

// TestTwoBlockFrameSession: the zstd frame that panicked the decoder
// (klauspost/compress v1.20.1) is refused as a bad payload; the session
// is closed, the collector and other sessions carry on.
func TestTwoBlockFrameSession(t *testing.T) {
	tb := newTestbed(t, DefaultConfig())
	two, err := os.ReadFile("../testdata/zstd-two-block.bin")
	require.NoError(t, err)
	for range 3 {
		cn := tb.dial("gw-1")
		cn.send(hello("gw-1", 0), &uplink.Data{First: 1, Count: 7, Codec: uplink.CodecZstd, Payload: two})
		cn.expectError(uplink.ErrPayload)
	}
	cn := tb.dial("gw-2")
	cn.send(hello("gw-2", 0), &uplink.Data{First: 1, Count: 3, Payload: payload(t, 1, 3)})
	_, err = cn.recv()
	require.NoError(t, err)
	ack, err := cn.recv()
	require.NoError(t, err)
	require.Equal(t, &uplink.Ack{Cumulative: 3}, ack)
	require.Equal(t, 3.0, testutil.ToFloat64(tb.srv.metrics.batchesRefused.WithLabelValues("gw-1", "decompress")))
}

// TestSessionReadsAheadOfWrite: while one batch is written (a slow
// fsync here), the session reads and decodes the next, whose payload it
// then holds from the budget, so a session goes at the pace of the slower
// of the two. The acks still come one per batch, in order.
func TestSessionReadsAheadOfWrite(t *testing.T) {
	tb := newTestbed(t, DefaultConfig())
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	tb.sink.block = func(first uint64) {
		if first == 1 {
			entered <- struct{}{}
			<-release
		}
	}
	cn := tb.dial("gw-1")
	cn.send(hello("gw-1", 0), &uplink.Data{First: 1, Count: 3, Payload: payload(t, 1, 3)})
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first batch never reached the sink")
	}
	before := tb.srv.budget.inUse()
	second := payload(t, 4, 3)
	cn.send(&uplink.Data{First: 4, Count: 3, Payload: second})
	want := before + int64(len(second))
	for deadline := time.Now().Add(5 * time.Second); tb.srv.budget.inUse() < want && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	got := tb.srv.budget.inUse()
	once.Do(func() { close(release) })
	require.GreaterOrEqual(t, got, want, "the second batch was not read while the first was written")

	_, err := cn.recv() // Welcome
	require.NoError(t, err)
	for _, last := range []uint64{3, 6} {
		ack, err := cn.recv()
		require.NoError(t, err)
		require.Equal(t, &uplink.Ack{Cumulative: last}, ack)
	}
	require.Len(t, tb.sink.written, 6)
}

// TestSinkFailureAnswered: a batch the sink cannot write is answered
// with an Error at once, although the session reads ahead (the gateway
// sends nothing more until it hears), and nothing after it is acked.
func TestSinkFailureAnswered(t *testing.T) {
	tb := newTestbed(t, DefaultConfig())
	tb.sink.failAt = 5
	cn := tb.dial("gw-1")
	cn.send(hello("gw-1", 0), &uplink.Data{First: 1, Count: 3, Payload: payload(t, 1, 3)},
		&uplink.Data{First: 4, Count: 3, Payload: payload(t, 4, 3)})
	_, err := cn.recv() // Welcome
	require.NoError(t, err)
	ack, err := cn.recv()
	require.NoError(t, err)
	require.Equal(t, &uplink.Ack{Cumulative: 3}, ack)
	cn.expectError(uplink.ErrSink)
	require.Contains(t, tb.logs.String(), "records not stored; gateway will resend")
}

// TestPanicRecovered: a panic in a session (here the sink's) closes that
// session only; it is counted, logged, and its frame kept in the
// quarantine directory, which holds no more than its cap.
func TestPanicRecovered(t *testing.T) {
	cfg := DefaultConfig()
	cfg.QuarantineDir = filepath.Join(t.TempDir(), "quarantine")
	cfg.QuarantineMaxFiles = 2
	tb := newTestbed(t, cfg)
	tb.sink.panicAt = 13
	for range 3 {
		cn := tb.dial("gw-1")
		cn.send(hello("gw-1", 0), &uplink.Data{First: 11, Count: 3, Payload: payload(t, 11, 3)})
		cn.expectError(uplink.ErrProtocol)
	}
	require.Equal(t, 3.0, testutil.ToFloat64(tb.srv.metrics.panics))
	require.Contains(t, tb.logs.String(), "session closed after a panic; the collector carries on")
	require.Contains(t, tb.logs.String(), "memSink: told to fail on 13")
	frames, err := filepath.Glob(filepath.Join(cfg.QuarantineDir, "*.frame"))
	require.NoError(t, err)
	require.Len(t, frames, 2, "the quarantine keeps at most its cap")
	kept, err := os.ReadFile(frames[0])
	require.NoError(t, err)
	require.Equal(t, uplink.AppendFrame(nil, &uplink.Data{First: 11, Count: 3, Payload: payload(t, 11, 3)}), kept)
	note, err := os.ReadFile(strings.TrimSuffix(frames[0], ".frame") + ".txt")
	require.NoError(t, err)
	require.Contains(t, string(note), "panic: memSink: told to fail on 13")
	require.Contains(t, string(note), "gateway: gw-1")

	cn := tb.dial("gw-2")
	cn.send(hello("gw-2", 0), &uplink.Data{First: 1, Count: 3, Payload: payload(t, 1, 3)})
	_, err = cn.recv()
	require.NoError(t, err)
	ack, err := cn.recv()
	require.NoError(t, err)
	require.Equal(t, &uplink.Ack{Cumulative: 3}, ack, "other sessions go on")
}

// TestFloorAttack: a Hello with a floor far beyond what the collector
// holds (the key of gw-1 in other hands) is refused, raises one critical
// record, and gw-1's real records are still written.
func TestFloorAttack(t *testing.T) {
	tb := newTestbed(t, DefaultConfig())
	gw := tb.dial("gw-1")
	gw.send(hello("gw-1", 0), &uplink.Data{First: 1, Count: 3, Payload: payload(t, 1, 3)})
	_, err := gw.recv()
	require.NoError(t, err)
	_, err = gw.recv()
	require.NoError(t, err)
	gw.c.Close()

	for range 2 {
		evil := tb.dial("gw-1")
		evil.send(hello("gw-1", 1<<64-2))
		w, err := evil.recv()
		require.NoError(t, err)
		require.Equal(t, welcome(1<<64-2), w, "the session goes on; only the floor is refused")
		evil.c.Close()
	}
	require.Len(t, tb.sink.alerts, 1, "the same floor is reported once")
	a := tb.sink.alerts[0]
	require.Contains(t, a.Message, "gateway gw-1 declared resume floor 18446744073709551614 beyond the highest sequence the collector holds from it (3)")
	require.Equal(t, "crit", a.Severity.String())
	require.Equal(t, 2.0, testutil.ToFloat64(tb.srv.metrics.floorsRefused.WithLabelValues("gw-1", "beyond_held"))+
		testutil.ToFloat64(tb.srv.metrics.floorsRefused.WithLabelValues("gw-1", "reported")))

	gw = tb.dial("gw-1")
	gw.send(hello("gw-1", 3), &uplink.Data{First: 4, Count: 3, Payload: payload(t, 4, 3)})
	w, err := gw.recv()
	require.NoError(t, err)
	require.Equal(t, welcome(3), w)
	ack, err := gw.recv()
	require.NoError(t, err)
	require.Equal(t, &uplink.Ack{Cumulative: 6}, ack)
	require.Equal(t, 6, tb.sink.count(), "4..6 written, not acked unwritten")
}

// TestHandshakeBudget: idle connections from one address with no
// certificate hold only that address's handshake slots, for the
// handshake timeout; a gateway from another address connects meanwhile.
func TestHandshakeBudget(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HandshakeTimeout = 500 * time.Millisecond
	cfg.MaxHandshakes, cfg.MaxHandshakesPerAddr, cfg.MaxConns = 8, 4, 2
	tb := newTestbed(t, cfg)
	var idle []net.Conn
	for range 50 {
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).Dial("tcp", tb.addr)
		require.NoError(t, err)
		idle = append(idle, c)
	}
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(tb.srv.metrics.handshakesRefused.WithLabelValues("tls", refusedAddr)) == 46
	}, 5*time.Second, 10*time.Millisecond)
	start := time.Now()
	cn := tb.dial("gw-1")
	cn.send(hello("gw-1", 0))
	_, err := cn.recv()
	require.NoError(t, err)
	require.Less(t, time.Since(start), 2*time.Second)
	// Sessions are taken after authentication: the idle connections took none.
	_, sessions := tb.srv.gate.counts()
	require.Equal(t, 1, sessions)
	require.Eventually(t, func() bool { h, _ := tb.srv.gate.counts(); return h == 0 }, 5*time.Second, 10*time.Millisecond,
		"the idle handshakes time out")
}

// TestSessionCaps: sessions per gateway id and in all are capped, after
// authentication.
func TestSessionCaps(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessionsPerGateway, cfg.MaxConns = 2, 3
	tb := newTestbed(t, cfg)
	open := func(id string) *conn {
		cn := tb.dial(id)
		cn.send(hello(id, 0))
		m, err := cn.recv()
		require.NoError(t, err)
		require.IsType(t, &uplink.Welcome{}, m)
		return cn
	}
	open("gw-1")
	open("gw-1")
	cn := tb.dial("gw-1")
	cn.send(hello("gw-1", 0))
	e := cn.expectError(uplink.ErrBusy)
	require.Contains(t, e.Message, "sessions_per_gateway")
	open("gw-2")
	cn = tb.dial("gw-3")
	cn.send(hello("gw-3", 0))
	cn.expectError(uplink.ErrBusy)
	require.Equal(t, 1.0, testutil.ToFloat64(tb.srv.metrics.sessionsRefused.WithLabelValues(refusedGateway)))
	require.Equal(t, 1.0, testutil.ToFloat64(tb.srv.metrics.sessionsRefused.WithLabelValues(refusedSessions)))
}

// TestSessionEndsAtNotAfter: a session does not outlive its certificate,
// however many pings keep it busy.
func TestSessionEndsAtNotAfter(t *testing.T) {
	tb := newTestbed(t, DefaultConfig())
	_, _, err := pki.IssueGateway(tb.dir, "gw-short", pki.Options{Validity: 1500 * time.Millisecond, Force: true})
	require.NoError(t, err)
	cn := tb.dial("gw-short")
	cn.send(hello("gw-short", 0))
	_, err = cn.recv()
	require.NoError(t, err)
	start := time.Now()
	done := make(chan *uplink.Error, 1)
	go func() {
		for {
			m, err := cn.recv()
			if err != nil {
				close(done)
				return
			}
			if e, ok := m.(*uplink.Error); ok {
				done <- e
				return
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case e := <-done:
			require.NotNil(t, e)
			require.Equal(t, uplink.ErrSessionEnd, e.Code)
			require.Contains(t, e.Message, "certificate expired")
			require.Less(t, time.Since(start), 5*time.Second)
			require.Equal(t, 1.0, testutil.ToFloat64(tb.srv.metrics.sessionsEnded.WithLabelValues("cert_expired")))
			return
		case <-tick.C:
			_, _ = cn.c.Write(uplink.AppendFrame(nil, &uplink.Ping{Nonce: 1}))
		}
	}
}

// TestDenyList: a revoked gateway is refused at its next handshake and its
// open sessions are ended; a revoked serial refuses that certificate only.
func TestDenyList(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DenyList = filepath.Join(dir, pki.DenyFile)
	cfg.DenyCheck = 50 * time.Millisecond
	tb := newTestbed(t, cfg)
	cn := tb.dial("gw-1")
	cn.send(hello("gw-1", 0))
	_, err := cn.recv()
	require.NoError(t, err)

	_, err = pki.Revoke(cfg.DenyList, pki.DenyEntry{Kind: "gateway", Value: "gw-1", Note: "test"})
	require.NoError(t, err)
	e := cn.expectError(uplink.ErrSessionEnd)
	require.Equal(t, "gateway gw-1 is revoked", e.Message)
	cn = tb.dial("gw-1")
	cn.send(hello("gw-1", 0))
	cn.expectError(uplink.ErrIdentity)

	oldCert, _ := pki.GatewayFiles(tb.dir, "gw-2")
	serial, _, err := pki.SerialOf(oldCert)
	require.NoError(t, err)
	_, err = pki.Revoke(cfg.DenyList, pki.DenyEntry{Kind: "serial", Value: serial})
	require.NoError(t, err)
	cn = tb.dial("gw-2")
	cn.send(hello("gw-2", 0))
	e = cn.expectError(uplink.ErrIdentity)
	require.Contains(t, e.Message, "certificate serial")
	_, _, err = pki.IssueGateway(tb.dir, "gw-2", pki.Options{Force: true}) // re-keyed
	require.NoError(t, err)
	cn = tb.dial("gw-2")
	cn.send(hello("gw-2", 0))
	m, err := cn.recv()
	require.NoError(t, err)
	require.IsType(t, &uplink.Welcome{}, m, "a new certificate for the same id is taken")

	require.NoError(t, os.WriteFile(cfg.DenyList, []byte("gateway gw 3\n"), 0o644))
	cn = tb.dial("gw-3")
	cn.send(hello("gw-3", 0))
	e = cn.expectError(uplink.ErrIdentity)
	require.Contains(t, e.Message, "deny list")
}

// TestRefusalLogsRateLimited: a flood of refusals writes a bounded number
// of log lines, and says how many it left out.
func TestRefusalLogsRateLimited(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LogBurst = 3
	tb := newTestbed(t, cfg)
	for range 10 {
		cn := tb.dial("gw-1")
		cn.send(hello("gw-2", 0))
		cn.expectError(uplink.ErrIdentity)
	}
	require.Equal(t, 3, strings.Count(tb.logs.String(), "gateway id does not match"))
	require.Equal(t, 10.0, testutil.ToFloat64(tb.srv.metrics.sessionsRefused.WithLabelValues("refused_id")))
	r := newRateLog(slog.New(slog.NewTextHandler(tb.logs, nil)), time.Minute, 1)
	now := time.Now()
	r.now = func() time.Time { return now }
	r.warn("k", "first")
	r.warn("k", "second")
	r.warn("k", "third")
	now = now.Add(time.Minute)
	r.warn("k", "fourth")
	require.NotContains(t, tb.logs.String(), "second")
	require.Contains(t, tb.logs.String(), "fourth suppressed=2")
}

// TestSessionEndIsRead: a session the collector ends while the gateway
// keeps sending (pings) gives a gateway that reads the Error saying why,
// then a clean end (TLS close_notify: io.EOF), not a reset: tls.Conn's
// Close sends close_notify after the Error, and a reading gateway has
// both before any reset the unread pings cause.
func TestSessionEndIsRead(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessionAge = 300 * time.Millisecond
	tb := newTestbed(t, cfg)
	c := tb.dial("gw-1")
	c.send(hello("gw-1", 0))
	_, err := c.recv()
	require.NoError(t, err)

	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for n := uint64(1); ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			frame := uplink.AppendFrame(nil, &uplink.Ping{Nonce: n})
			_ = c.c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.c.Write(frame); err != nil {
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var got *uplink.Error
	for got == nil {
		m, err := c.recv()
		require.NoError(t, err, "the Error must come before the end")
		got, _ = m.(*uplink.Error)
	}
	close(stop)
	<-wrote
	require.Equal(t, uplink.ErrSessionEnd, got.Code, got.Message)
	require.Contains(t, got.Message, "maximum age")
	m, err := c.recv()
	require.ErrorIs(t, err, io.EOF, "a clean end after the Error, not %v (%T)", err, m)
}
