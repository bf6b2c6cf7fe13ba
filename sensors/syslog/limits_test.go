package syslog

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

// dialFrom connects to addr from a given loopback address (Linux routes
// all of 127.0.0.0/8 to lo), so one test plays several hosts.
func dialFrom(t *testing.T, from string, addr net.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr.String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func needLoopbackRange(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("several loopback source addresses (127.0.0.0/8 on lo) need Linux")
	}
}

// attackers is where the idle connections of a case come from: one
// address, or one address each.
var attackers = map[string]func(i int) string{
	"one address":  func(int) string { return "127.0.0.1" },
	"16 addresses": func(i int) string { return fmt.Sprintf("127.0.1.%d", 10+i) },
}

// Sixteen connections that never send a byte, at max_connections 16,
// must not cost the next real sender its message: over TCP, and over TLS
// where the idle connections never start their handshake.
func TestIdleConnectionsDoNotLockOutSenders(t *testing.T) {
	needLoopbackRange(t)
	for _, transport := range []string{TransportTCP, TransportTLS} {
		for name, from := range attackers {
			t.Run(transport+"/"+name, func(t *testing.T) {
				pki := newTestPKI(t)
				cfg := loopbackConfig(t, pki)
				cfg.MaxConnections = 16
				s, sink := startServer(t, cfg)
				addr := s.Addr(transport)
				for i := range 16 {
					dialFrom(t, from(i), addr)
				}
				// Every idle connection has reached the listener.
				require.Eventually(t, func() bool {
					st := s.Status().Listeners[transportIndex(transport)]
					return st.ConnectionsTotal+st.ConnectionsRefused >= 16
				}, 5*time.Second, 5*time.Millisecond)

				c := dialFrom(t, "127.0.0.2", addr)
				if transport == TransportTLS {
					tc := tls.Client(c, pki.clientConfig(true))
					require.NoError(t, tc.SetDeadline(time.Now().Add(5*time.Second)))
					require.NoError(t, tc.Handshake(), "the real sender's handshake")
					c = tc
				}
				_, err := c.Write([]byte("<13>real sender\n"))
				require.NoError(t, err)
				sink.waitFor(t, "the real sender's message", func(e []event.Event) bool { return findMessage(e, "real sender") != nil })
				st := s.Status().Listeners[transportIndex(transport)]
				if name == "one address" {
					assert.Equal(t, uint64(16-DefaultMaxPerAddress), st.ConnectionsRefused, "max_connections_per_address")
				} else {
					assert.Equal(t, uint64(1), st.ConnectionsEvicted, "the oldest silent connection made room")
				}
			})
		}
	}
}

func transportIndex(name string) int {
	for i, n := range transportNames {
		if n == name {
			return i
		}
	}
	panic(name)
}

// A stream that sends nothing is closed after first_byte_timeout, one
// that spoke stays for idle_timeout.
func TestFirstByteTimeout(t *testing.T) {
	cfg := loopbackConfig(t, nil)
	cfg.FirstByteTimeout = 100 * time.Millisecond
	cfg.IdleTimeout = time.Hour
	s, sink := startServer(t, cfg)
	talker := dial(t, "tcp", s.Addr(TransportTCP))
	_, err := talker.Write([]byte("<13>hello\n"))
	require.NoError(t, err)
	sink.waitFor(t, "hello", func(e []event.Event) bool { return findMessage(e, "hello") != nil })

	silent := dial(t, "tcp", s.Addr(TransportTCP))
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = silent.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the silent stream is closed")

	_, err = talker.Write([]byte("<13>still here\n"))
	require.NoError(t, err)
	sink.waitFor(t, "the talker's second message", func(e []event.Event) bool { return findMessage(e, "still here") != nil })
}

// An unauthenticated peer that starts no handshake is closed after
// tls.handshake_timeout, and a flood of them (from many addresses, more
// than tls.max_handshakes) neither takes the connection of a sender that
// completed its handshake nor keeps a new one from completing its own.
func TestTLSHandshakesHaveTheirOwnBudget(t *testing.T) {
	needLoopbackRange(t)
	pki := newTestPKI(t)
	cfg := loopbackConfig(t, pki)
	cfg.MaxConnections = 2
	cfg.TLS.MaxHandshakes = 4
	cfg.TLS.HandshakeTimeout = 300 * time.Millisecond
	s, sink := startServer(t, cfg)
	addr := s.Addr(TransportTLS)

	a := tls.Client(dialFrom(t, "127.0.0.2", addr), pki.clientConfig(true))
	_, err := a.Write([]byte("<13>a first\n"))
	require.NoError(t, err)
	sink.waitFor(t, "a's first", func(e []event.Event) bool { return findMessage(e, "a first") != nil })

	for i := range 16 {
		dialFrom(t, fmt.Sprintf("127.0.1.%d", 10+i), addr)
	}
	b := tls.Client(dialFrom(t, "127.0.0.3", addr), pki.clientConfig(true))
	require.NoError(t, b.SetDeadline(time.Now().Add(5*time.Second)))
	require.NoError(t, b.Handshake(), "b's handshake, with the handshake slots full of silent peers")
	_, err = b.Write([]byte("<13>b\n"))
	require.NoError(t, err)
	_, err = a.Write([]byte("<13>a second\n"))
	require.NoError(t, err)
	sink.waitFor(t, "b's and a's second", func(e []event.Event) bool {
		return findMessage(e, "b") != nil && findMessage(e, "a second") != nil
	})
	st := s.Status().Listeners[iTLS]
	assert.GreaterOrEqual(t, st.ConnectionsEvicted, uint64(12), "silent handshakes made room")
	assert.Equal(t, int64(2), st.ConnectionsOpen)
	// The silent handshakes end at handshake_timeout.
	require.Eventually(t, func() bool { return s.Status().Listeners[iTLS].Handshakes == 0 }, 5*time.Second, 10*time.Millisecond)
}

// The slots' accounting through take, hear, evict and release.
func TestSlots(t *testing.T) {
	conn := func() net.Conn { c, _ := net.Pipe(); return c }
	p := newSlots(2)
	c1, c2, c3, c4 := conn(), conn(), conn(), conn()
	s1, ev, ok := p.take(c1)
	require.True(t, ok)
	require.Nil(t, ev)
	s2, _, ok := p.take(c2)
	require.True(t, ok)
	p.hear(s2)
	// Full: the silent s1 makes room for s3.
	s3, ev, ok := p.take(c3)
	require.True(t, ok)
	require.Equal(t, c1, ev)
	require.True(t, p.release(s1), "s1 was evicted")
	require.Equal(t, 2, p.taken())
	p.hear(s3)
	// Full and every slot heard from: refused.
	_, _, ok = p.take(c4)
	require.False(t, ok)
	require.False(t, p.release(s2))
	require.Equal(t, 1, p.taken())
	s4, ev, ok := p.take(c4)
	require.True(t, ok)
	require.Nil(t, ev)
	p.release(s3)
	p.release(s4)
	require.Equal(t, 0, p.taken())
}

func TestPerAddress(t *testing.T) {
	a := newPerAddress(2)
	v4 := addrKey(netip.MustParseAddr("192.0.2.7"))
	require.True(t, a.take(v4))
	require.True(t, a.take(v4))
	require.False(t, a.take(v4))
	require.True(t, a.take(addrKey(netip.MustParseAddr("192.0.2.8"))))
	// One IPv6 /64 counts as one peer; v4-mapped is the v4 address.
	require.Equal(t, addrKey(netip.MustParseAddr("2001:db8::1")), addrKey(netip.MustParseAddr("2001:db8::ffff:1")))
	require.NotEqual(t, addrKey(netip.MustParseAddr("2001:db8::1")), addrKey(netip.MustParseAddr("2001:db8:0:1::1")))
	require.Equal(t, v4, addrKey(netip.MustParseAddr("::ffff:192.0.2.7")))
	a.release(v4)
	require.True(t, a.take(v4))
}
