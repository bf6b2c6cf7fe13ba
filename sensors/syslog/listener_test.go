package syslog

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

func dial(t *testing.T, network string, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial(network, addr.String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func dialTLS(t *testing.T, addr net.Addr, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr.String(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestListenersLoopback: one message over each transport and framing
// arrives parsed, with the peer, transport and client certificate.
func TestListenersLoopback(t *testing.T) {
	pki := newTestPKI(t)
	s, sink := startServer(t, loopbackConfig(t, pki))

	u := dial(t, "udp", s.Addr(TransportUDP))
	_, err := u.Write([]byte("<134>Nov 23 14:40:00 plc7 pumpd[42]: udp one\n"))
	require.NoError(t, err)

	c := dial(t, "tcp", s.Addr(TransportTCP))
	m5424 := "<165>1 2026-11-23T14:40:00.5+01:00 plc7 pumpd 42 ID7 [m@1 k=\"v\"] tcp octet"
	_, err = fmt.Fprintf(c, "<13>Nov 23 14:40:00 plc7 t: tcp lf\n<13>Nov 23 14:40:00 plc7 t: tcp nul\x00%d %s", len(m5424), m5424)
	require.NoError(t, err)

	tc := dialTLS(t, s.Addr(TransportTLS), pki.clientConfig(true))
	_, err = tc.Write([]byte("<13>1 - plc7 app - - - tls msg\n"))
	require.NoError(t, err)

	evs := sink.waitFor(t, "5 records", func(e []event.Event) bool { return len(e) >= 5 })
	want := map[string]string{"udp one": "udp", "tcp lf": "tcp", "tcp nul": "tcp", "tcp octet": "tcp", "tls msg": "tls"}
	for msg, tr := range want {
		e := findMessage(evs, msg)
		require.NotNil(t, e, msg)
		f := fieldMap(e.Fields)
		assert.Equal(t, tr, f[keyTransport].Str, msg)
		assert.True(t, strings.HasPrefix(f[keyPeer].Str, "127.0.0.1:"), msg)
		assert.Equal(t, "plc7", e.Host, msg)
		assert.Equal(t, event.KindLog, e.Kind)
		assert.Zero(t, e.Time, "the sink stamps the time")
	}
	e := findMessage(evs, "tcp octet")
	f := fieldMap(e.Fields)
	assert.Equal(t, "v", f["sd.m@1.k"].Str)
	assert.Equal(t, "ID7", f[keyMsgID].Str)
	assert.Equal(t, time.Date(2026, 11, 23, 13, 40, 0, 5e8, time.UTC).UnixNano(), e.Observed)
	assert.Equal(t, "CN=plc7", fieldMap(findMessage(evs, "tls msg").Fields)[keyTLSPeer].Str)
	assert.Equal(t, "pumpd", fieldMap(findMessage(evs, "udp one").Fields)[keyAppName].Str)

	st := s.Status()
	require.Len(t, st.Listeners, 3)
	assert.Equal(t, uint64(1), st.Listeners[iUDP].Received)
	assert.Equal(t, uint64(3), st.Listeners[iTCP].Received)
	assert.Equal(t, uint64(1), st.Listeners[iTLS].Received)
	assert.Equal(t, s.Addr(TransportTCP).String(), st.Listeners[iTCP].Address)
}

// TestTLSClientAuth: with require, a client without a certificate is
// refused at the handshake and counted; the listener keeps serving.
func TestTLSClientAuth(t *testing.T) {
	pki := newTestPKI(t)
	s, sink := startServer(t, loopbackConfig(t, pki))

	c, err := tls.Dial("tcp", s.Addr(TransportTLS).String(), pki.clientConfig(false))
	if err == nil {
		// TLS 1.3: the refusal arrives with the first read.
		_, _ = c.Write([]byte("<13>no cert\n"))
		_, err = c.Read(make([]byte, 1))
		_ = c.Close()
	}
	require.Error(t, err)

	tc := dialTLS(t, s.Addr(TransportTLS), pki.clientConfig(true))
	_, err = tc.Write([]byte("<13>with cert\n"))
	require.NoError(t, err)
	evs := sink.waitFor(t, "the good client's record", func(e []event.Event) bool { return findMessage(e, "with cert") != nil })
	assert.Nil(t, findMessage(evs, "no cert"))
	require.Eventually(t, func() bool { return s.Status().Listeners[iTLS].HandshakeErrors == 1 }, 5*time.Second, 10*time.Millisecond)
}

// TestGarbageKeepsServing: random bytes over every transport (and as a
// TLS handshake) never stop the listeners; each keeps taking messages.
func TestGarbageKeepsServing(t *testing.T) {
	pki := newTestPKI(t)
	cfg := loopbackConfig(t, pki)
	cfg.MaxMessageBytes = 4096
	s, sink := startServer(t, cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}

	u := dial(t, "udp", s.Addr(TransportUDP))
	for i := range 50 {
		g := garbage(2 + rng.IntN(2000))
		if i%2 == 0 {
			g[0], g[1] = '<', 'x' // a broken PRI: kept raw, counted as a parse error
		}
		_, _ = u.Write(g)
	}
	for range 5 {
		c := dial(t, "tcp", s.Addr(TransportTCP))
		_, _ = c.Write(garbage(1 + rng.IntN(20000)))
		_, _ = c.Write([]byte("999999999 "))
		_ = c.Close()
		h := dial(t, "tcp", s.Addr(TransportTLS)) // not a TLS handshake
		_, _ = h.Write(garbage(1 + rng.IntN(2000)))
		_ = h.Close()
	}
	tc := dialTLS(t, s.Addr(TransportTLS), pki.clientConfig(true))
	_, _ = tc.Write(garbage(10000))
	_ = tc.Close()

	// Every transport still serves.
	_, err := u.Write([]byte("<13>after garbage udp"))
	require.NoError(t, err)
	c := dial(t, "tcp", s.Addr(TransportTCP))
	_, err = c.Write([]byte("<13>after garbage tcp\n"))
	require.NoError(t, err)
	tc = dialTLS(t, s.Addr(TransportTLS), pki.clientConfig(true))
	_, err = tc.Write([]byte("<13>after garbage tls\n"))
	require.NoError(t, err)
	evs := sink.waitFor(t, "messages after the garbage", func(e []event.Event) bool {
		return findMessage(e, "after garbage udp") != nil && findMessage(e, "after garbage tcp") != nil && findMessage(e, "after garbage tls") != nil
	})
	for _, e := range evs {
		_, err := e.MarshalBinary()
		require.NoError(t, err)
		assert.LessOrEqual(t, len(e.Message), cfg.MaxMessageBytes)
	}
	require.Eventually(t, func() bool { return s.Status().Listeners[iUDP].Received >= 51 }, 10*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, s.Status().Listeners[iUDP].ParseErrors, uint64(25), "broken PRIs are kept raw as parse errors")
}

// TestOversizeTruncated: a message longer than max_message_bytes is cut,
// flagged, and the stream stays in step.
func TestOversizeTruncated(t *testing.T) {
	cfg := loopbackConfig(t, nil)
	cfg.MaxMessageBytes = 2048
	s, sink := startServer(t, cfg)
	big := "<13>" + strings.Repeat("x", 5000)

	c := dial(t, "tcp", s.Addr(TransportTCP))
	_, err := fmt.Fprintf(c, "%d %s12 <13>after oc\n", len(big), big)
	require.NoError(t, err)
	_, err = fmt.Fprintf(c, "%s\n<13>after lf\n", big)
	require.NoError(t, err)
	u := dial(t, "udp", s.Addr(TransportUDP))
	_, err = u.Write([]byte(big))
	require.NoError(t, err)

	evs := sink.waitFor(t, "5 records", func(e []event.Event) bool { return len(e) >= 5 })
	var trunc []event.Event
	for _, e := range evs {
		if fieldMap(e.Fields)[keyTruncated].Bool() {
			trunc = append(trunc, e)
		}
	}
	require.Len(t, trunc, 3)
	for _, e := range trunc {
		assert.Equal(t, 2048-4, len(e.Message), "cut to max_message_bytes")
	}
	assert.Equal(t, 2, countWith(evs, keyOriginalBytes, "5004"), "octet count announced, LF counted")
	assert.NotNil(t, findMessage(evs, "after oc"))
	assert.NotNil(t, findMessage(evs, "after lf"))
	assert.Equal(t, uint64(2), s.Status().Listeners[iTCP].Truncated)
}

// TestRateLimitCountsDrops: a sender over its rate has the excess dropped,
// counted per sender in Status, and reported in a drop record.
func TestRateLimitCountsDrops(t *testing.T) {
	cfg := loopbackConfig(t, nil)
	cfg.RateLimit = RateLimitConfig{MessagesPerSecond: 0.001, Burst: 5}
	cfg.DropReportInterval = 50 * time.Millisecond
	s, sink := startServer(t, cfg)

	c := dial(t, "tcp", s.Addr(TransportTCP))
	for i := range 20 {
		_, err := fmt.Fprintf(c, "<13>m%d\n", i)
		require.NoError(t, err)
	}
	evs := sink.waitFor(t, "a drop report", func(e []event.Event) bool { return countWith(e, keyFormat, "drop_report") > 0 })
	var rep *event.Event
	for i := range evs {
		if fieldMap(evs[i].Fields)[keyFormat].Str == "drop_report" {
			rep = &evs[i]
		}
	}
	f := fieldMap(rep.Fields)
	assert.Equal(t, uint64(15), f["dropped_rate_limit"].Num, rep.Message)
	assert.Equal(t, uint64(15), f["dropped.127.0.0.1"].Num)
	assert.Equal(t, event.SevWarning, rep.Severity)
	assert.Equal(t, 5, countWith(evs, keyTransport, "tcp"), "the burst passes")
	st := s.Status()
	assert.Equal(t, uint64(15), st.RateLimited)
	assert.Equal(t, []SenderDrops{{Sender: "127.0.0.1", Dropped: 15}}, st.TopRateLimited)
	assert.Equal(t, uint64(15), st.Listeners[iTCP].RateLimited)
}

// TestMaxConnections: beyond max_connections a connection is closed at
// once and counted; closing one makes room again.
func TestMaxConnections(t *testing.T) {
	cfg := loopbackConfig(t, nil)
	cfg.MaxConnections = 2
	cfg.DropReportInterval = 50 * time.Millisecond
	s, sink := startServer(t, cfg)

	a := dial(t, "tcp", s.Addr(TransportTCP))
	b := dial(t, "tcp", s.Addr(TransportTCP))
	_, _ = a.Write([]byte("<13>a\n"))
	_, _ = b.Write([]byte("<13>b\n"))
	sink.waitFor(t, "a and b", func(e []event.Event) bool { return len(e) >= 2 })

	c := dial(t, "tcp", s.Addr(TransportTCP))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the third connection is closed by the server")
	st := s.Status()
	assert.Equal(t, uint64(1), st.Listeners[iTCP].ConnectionsRefused)
	assert.Equal(t, int64(2), st.ConnectionsOpen)
	sink.waitFor(t, "a report of the refusal", func(e []event.Event) bool { return countWith(e, "refused_connections", "1") == 1 })

	_ = a.Close()
	require.Eventually(t, func() bool { return s.Status().ConnectionsOpen == 1 }, 5*time.Second, 10*time.Millisecond)
	d := dial(t, "tcp", s.Addr(TransportTCP))
	_, _ = d.Write([]byte("<13>d\n"))
	sink.waitFor(t, "d", func(e []event.Event) bool { return findMessage(e, "d") != nil })
}

// TestIdleTimeout: a stream that sends nothing is closed.
func TestIdleTimeout(t *testing.T) {
	cfg := loopbackConfig(t, nil)
	cfg.IdleTimeout = 100 * time.Millisecond
	s, _ := startServer(t, cfg)
	c := dial(t, "tcp", s.Addr(TransportTCP))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
	require.Eventually(t, func() bool { return s.Status().ConnectionsOpen == 0 }, 5*time.Second, 10*time.Millisecond)
}

// TestBackPressure: while the sink does not take records, a TCP sender is
// held back (its writes stop completing) rather than anything dropped;
// once the sink takes them, every message arrives.
func TestBackPressure(t *testing.T) {
	cfg := loopbackConfig(t, nil)
	s, err := New(cfg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := newFakeSink()
	sink.gate = make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, sink) }()
	require.Eventually(t, func() bool { return s.Addr(TransportTCP) != nil }, 5*time.Second, 5*time.Millisecond)

	c := dial(t, "tcp", s.Addr(TransportTCP))
	line := []byte("<13>Nov 23 14:40:00 h t: " + strings.Repeat("p", 200) + "\n")
	sent := 0
	for {
		_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Write(line); err != nil {
			require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the sender is held back")
			break
		}
		sent++
		require.Less(t, sent, 1_000_000, "the sender was never held back")
	}
	assert.LessOrEqual(t, s.Status().Queued, int64(queueLen+1), "the queue is bounded")
	close(sink.gate)
	// The write that timed out may have sent part of a line: finish it.
	_ = c.SetWriteDeadline(time.Time{})
	_, err = c.Write([]byte("\n<13>last\n"))
	require.NoError(t, err)
	sink.waitFor(t, "every message", func(e []event.Event) bool { return findMessage(e, "last") != nil })
	evs := sink.events()
	assert.GreaterOrEqual(t, len(evs), sent+1)
	cancel()
	require.NoError(t, <-done)
}

// TestShutdownHandsOverQueued: records received before shutdown reach
// the sink.
func TestShutdownHandsOverQueued(t *testing.T) {
	cfg := loopbackConfig(t, nil)
	s, err := New(cfg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, s.Listen(ctx))
	sink := newFakeSink()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, sink) }()
	c := dial(t, "tcp", s.Addr(TransportTCP))
	var b bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&b, "<13>n%d\n", i)
	}
	_, err = c.Write(b.Bytes())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.Status().Listeners[iTCP].Received == 2000 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.Len(t, sink.events(), 2000)
	assert.Equal(t, uint64(2000), s.Status().Emitted)
}

// TestUDPSocketDropsCounted: while the sink is stuck, datagrams beyond
// the queue and the socket buffer are dropped by the kernel; the drops
// are counted (SO_RXQ_OVFL) in Status and in a drop report.
func TestUDPSocketDropsCounted(t *testing.T) {
	if !dropCountSupported {
		t.Skip("socket drop counts need Linux")
	}
	if testing.Short() {
		// make test-arm runs -short under qemu-user, which does not pass
		// the SO_RXQ_OVFL control message through; make test runs it.
		t.Skip("socket drop counts: not under -short (qemu-user drops the SO_RXQ_OVFL control message)")
	}
	cfg := loopbackConfig(t, nil)
	cfg.UDPReadBuffer = 4096
	cfg.DropReportInterval = 50 * time.Millisecond
	s, err := New(cfg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, s.Listen(ctx))
	sink := newFakeSink()
	sink.gate = make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, sink) }()

	u := dial(t, "udp", s.Addr(TransportUDP))
	line := []byte("<13>Nov 23 14:40:00 h t: " + strings.Repeat("d", 500))
	// Send until the reader has blocked on the full queue, then some more
	// for the socket buffer to overflow.
	require.Eventually(t, func() bool {
		for range 100 {
			_, _ = u.Write(line)
		}
		return s.Status().Queued >= queueLen
	}, 10*time.Second, time.Millisecond)
	for range 100 {
		_, _ = u.Write(line)
	}
	// Reading again, the next datagram carries the drop counter.
	close(sink.gate)
	require.Eventually(t, func() bool {
		_, _ = u.Write(line)
		return s.Status().Listeners[iUDP].SocketDrops > 0
	}, 10*time.Second, 20*time.Millisecond)
	sink.waitFor(t, "a report of socket drops", func(e []event.Event) bool {
		for _, ev := range e {
			if fieldMap(ev.Fields)["dropped_socket"].Num > 0 {
				return true
			}
		}
		return false
	})
	cancel()
	require.NoError(t, <-done)
}

// TestTLSFilesReread: a certificate replaced in its files is served from
// the next handshake on, without a restart.
func TestTLSFilesReread(t *testing.T) {
	pki := newTestPKI(t)
	s, _ := startServer(t, loopbackConfig(t, pki))
	leaf := func(cfg *tls.Config) []byte {
		c := dialTLS(t, s.Addr(TransportTLS), cfg)
		require.NoError(t, c.Handshake())
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	first := leaf(pki.clientConfig(true))

	other := newTestPKI(t)
	for _, f := range [][2]string{{other.serverCert, pki.serverCert}, {other.serverKey, pki.serverKey}} {
		b, err := os.ReadFile(f[0])
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(f[1], b, 0o600))
	}
	cfg := pki.clientConfig(true)
	cfg.RootCAs = other.caPool // the new server certificate's CA
	second := leaf(cfg)
	assert.NotEqual(t, first, second)
	b, _ := pem.Decode(mustRead(t, other.serverCert))
	assert.Equal(t, b.Bytes, second, "the certificate now in the file")
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// TestTLSClientAuthRequest: with request, clients with and without a
// certificate are served; only the first carries tls_peer.
func TestTLSClientAuthRequest(t *testing.T) {
	pki := newTestPKI(t)
	cfg := loopbackConfig(t, pki)
	cfg.TLS.ClientAuth = ClientAuthRequest
	s, sink := startServer(t, cfg)
	for _, withCert := range []bool{true, false} {
		c := dialTLS(t, s.Addr(TransportTLS), pki.clientConfig(withCert))
		_, err := fmt.Fprintf(c, "<13>cert %v\n", withCert)
		require.NoError(t, err)
	}
	evs := sink.waitFor(t, "both", func(e []event.Event) bool { return len(e) >= 2 })
	assert.Equal(t, "CN=plc7", fieldMap(findMessage(evs, "cert true").Fields)[keyTLSPeer].Str)
	assert.NotContains(t, fieldMap(findMessage(evs, "cert false").Fields), keyTLSPeer)
}

// TestIPv6Peer: a sender over IPv6 is named [addr]:port in peer and addr
// in Host.
func TestIPv6Peer(t *testing.T) {
	probe, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	_ = probe.Close()
	cfg := loopbackConfig(t, nil)
	cfg.UDP.Listen, cfg.TCP.Listen = "[::1]:0", "[::1]:0"
	s, sink := startServer(t, cfg)
	u := dial(t, "udp", s.Addr(TransportUDP))
	_, err = u.Write([]byte("<13>v6 udp"))
	require.NoError(t, err)
	c := dial(t, "tcp", s.Addr(TransportTCP))
	_, err = c.Write([]byte("<13>v6 tcp\n"))
	require.NoError(t, err)
	evs := sink.waitFor(t, "both", func(e []event.Event) bool { return len(e) >= 2 })
	for _, m := range []string{"v6 udp", "v6 tcp"} {
		e := findMessage(evs, m)
		require.NotNil(t, e, m)
		assert.Equal(t, "::1", e.Host, m)
		assert.True(t, strings.HasPrefix(fieldMap(e.Fields)[keyPeer].Str, "[::1]:"), m)
	}
}
