package syslog

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

// TestRateLimitByTransport: over the rate limit, UDP, TCP and TLS
// without a client certificate have the excess dropped and counted; a
// TLS sender with a verified client certificate is held back instead
// (reading from it stops, its writes stop completing), nothing of it is
// dropped, and the message it waits with is handed on at shutdown.
func TestRateLimitByTransport(t *testing.T) {
	const burst, sent = 5, 20
	pki := newTestPKI(t)
	cases := []struct {
		name, transport string
		cert            bool // the client presents its certificate
		paced           bool
	}{
		{"udp", TransportUDP, false, false},
		{"tcp", TransportTCP, false, false},
		{"tls without a client certificate", TransportTLS, false, false},
		{"tls with a verified client certificate", TransportTLS, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := loopbackConfig(t, pki)
			cfg.TLS.ClientAuth = ClientAuthRequest // lets a client without a certificate in
			// Beyond the burst, the next token comes in 1000 s.
			cfg.RateLimit = RateLimitConfig{MessagesPerSecond: 0.001, Burst: burst}
			s, err := New(cfg, nil)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			require.NoError(t, s.Listen(ctx))
			sink := newFakeSink()
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx, sink) }()

			var conn net.Conn
			switch {
			case c.transport == TransportTLS:
				conn = dialTLS(t, s.Addr(TransportTLS), pki.clientConfig(c.cert))
			default:
				conn = dial(t, c.transport, s.Addr(c.transport))
			}
			for i := range sent {
				_, err := fmt.Fprintf(conn, "<13>1 - plc7 app - - - m%d\n", i)
				require.NoError(t, err)
			}
			if !c.paced {
				require.Eventually(t, func() bool {
					st := listenerStatus(t, s, c.transport)
					return st.Received+st.RateLimited == sent
				}, 10*time.Second, 5*time.Millisecond)
				st := listenerStatus(t, s, c.transport)
				assert.Equal(t, uint64(burst), st.Received)
				assert.Equal(t, uint64(sent-burst), st.RateLimited, "dropped and counted")
				assert.Zero(t, st.Paced)
				assert.Equal(t, uint64(sent-burst), s.Status().RateLimited)
				cancel()
				require.NoError(t, <-done)
				assert.Equal(t, burst, countWith(sink.events(), keyTransport, c.transport))
				return
			}

			// The burst is stored, the next message waits for its token.
			sink.waitFor(t, "the burst", func(e []event.Event) bool { return len(e) == burst })
			require.Eventually(t, func() bool { return listenerStatus(t, s, c.transport).Paced == 1 }, 10*time.Second, 5*time.Millisecond)
			// Meanwhile nothing is read: the sender's writes stop completing.
			line := []byte("<13>1 - plc7 app - - - held " + strings.Repeat("h", 1000) + "\n")
			held := 0
			for {
				_ = conn.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
				if _, err := conn.Write(line); err != nil {
					require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the sender is held back")
					break
				}
				held++
				require.Less(t, held, 1_000_000, "the sender was never held back")
			}
			st := listenerStatus(t, s, c.transport)
			assert.Equal(t, uint64(burst), st.Received, "nothing more was read")
			assert.Zero(t, st.RateLimited, "nothing dropped")
			assert.Zero(t, s.Status().RateLimited)
			assert.Equal(t, uint64(1), st.Paced)
			assert.Zero(t, s.Status().Queued, "nothing piles up behind the wait")

			// Shutdown ends the wait and hands on the message in hand (and
			// those already buffered).
			cancel()
			require.NoError(t, <-done)
			evs := sink.events()
			for i := range burst + 1 {
				assert.NotNil(t, findMessage(evs, fmt.Sprintf("m%d", i)), "m%d", i)
			}
			assert.Equal(t, len(evs), countWith(evs, keyTLSPeer, "CN=plc7"), "every record is the paced sender's")
			assert.Zero(t, s.Status().Lost)
			assert.Zero(t, s.Status().RateLimited)
		})
	}
}

// TestPacingIsPerSender: an authenticated sender flooding on every
// connection it may open is held to the rate limit (nothing dropped,
// nothing stored beyond the rate), while another authenticated sender's
// messages go through at once: its bucket is its own, so it does not wait
// behind the flood.
func TestPacingIsPerSender(t *testing.T) {
	needLoopbackRange(t)
	const rate, burst = 1, 10
	pki := newTestPKI(t)
	cfg := loopbackConfig(t, pki)
	cfg.UDP.Listen, cfg.TCP.Listen = "", ""
	// At 1/s, a message of the quiet sender queued behind the flooder's
	// waiting readers would wait seconds each: ten of them would not
	// arrive within waitFor's 10 s.
	cfg.RateLimit = RateLimitConfig{MessagesPerSecond: rate, Burst: burst}
	s, sink := startServer(t, cfg)
	addr := s.Addr(TransportTLS)
	peerIs := func(ip string) func(e event.Event) bool {
		return func(e event.Event) bool { return strings.HasPrefix(fieldMap(e.Fields)[keyPeer].Str, ip+":") }
	}
	count := func(evs []event.Event, f func(event.Event) bool) int {
		n := 0
		for _, e := range evs {
			if f(e) {
				n++
			}
		}
		return n
	}

	start := time.Now()
	var written atomic.Int64
	for range DefaultMaxPerAddress {
		c := tls.Client(dialFrom(t, "127.0.0.2", addr), pki.clientConfig(true))
		require.NoError(t, c.Handshake())
		go func() {
			line := []byte("<13>1 - flood app - - - " + strings.Repeat("f", 200) + "\n")
			for {
				if _, err := c.Write(line); err != nil {
					return // closed at the test's end
				}
				written.Add(1)
			}
		}()
	}
	// The flood is being paced.
	require.Eventually(t, func() bool { return listenerStatus(t, s, TransportTLS).Paced >= DefaultMaxPerAddress }, 10*time.Second, 5*time.Millisecond)

	quiet := tls.Client(dialFrom(t, "127.0.0.3", addr), pki.clientConfig(true))
	for i := range burst {
		_, err := fmt.Fprintf(quiet, "<13>1 - quiet app - - - q%d\n", i)
		require.NoError(t, err)
	}
	evs := sink.waitFor(t, "the quiet sender's messages", func(e []event.Event) bool { return count(e, peerIs("127.0.0.3")) == burst })
	flood := count(evs, peerIs("127.0.0.2"))
	elapsed := time.Since(start)

	st := listenerStatus(t, s, TransportTLS)
	assert.Zero(t, st.RateLimited, "nothing dropped")
	assert.LessOrEqual(t, float64(flood), burst+rate*elapsed.Seconds()+1, "the flood stored no more than the rate allows")
	assert.Greater(t, written.Load(), int64(flood), "the flood wrote more than was read: the rest waits at the sender")
	assert.LessOrEqual(t, s.Status().Queued, int64(queueLen))
	t.Logf("in %s: flood wrote %d messages, %d stored; quiet sender %d of %d stored", elapsed.Round(time.Millisecond), written.Load(), flood, burst, burst)
}

// TestForgedUDPDoesNotSlowAuthenticatedSender: datagrams with the address
// of a sender that authenticates over TLS (UDP source addresses can be
// forged) spend the drop bucket of that address, not the bucket its TLS
// connection is paced by.
func TestForgedUDPDoesNotSlowAuthenticatedSender(t *testing.T) {
	const burst = 5
	pki := newTestPKI(t)
	cfg := loopbackConfig(t, pki)
	cfg.RateLimit = RateLimitConfig{MessagesPerSecond: 0.001, Burst: burst}
	s, sink := startServer(t, cfg)

	u := dial(t, "udp", s.Addr(TransportUDP))
	for i := range 4 * burst {
		_, err := fmt.Fprintf(u, "<13>1 - plc7 app - - - forged %d", i)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return listenerStatus(t, s, TransportUDP).RateLimited == 3*burst }, 10*time.Second, 5*time.Millisecond)

	c := dialTLS(t, s.Addr(TransportTLS), pki.clientConfig(true))
	for i := range burst {
		_, err := fmt.Fprintf(c, "<13>1 - plc7 app - - - real %d\n", i)
		require.NoError(t, err)
	}
	sink.waitFor(t, "the authenticated sender's burst", func(e []event.Event) bool { return countWith(e, keyTransport, TransportTLS) == burst })
	assert.Zero(t, listenerStatus(t, s, TransportTLS).Paced, "the authenticated sender had its whole burst")
}
