package rudp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

// testPKI is a CA with a collector for 127.0.0.1 and gateway gw-1.
type testPKI struct {
	dir       string
	collector uplink.TLSConfig
	gateway   uplink.TLSConfig
}

func newTestPKI(t testing.TB, opts pki.Options) testPKI {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	require.NoError(t, pki.InitCA(dir, "test", pki.Options{}))
	ccert, ckey, err := pki.IssueCollector(dir, "collector", []string{"127.0.0.1"}, pki.Options{})
	require.NoError(t, err)
	gcert, gkey, err := pki.IssueGateway(dir, "gw-1", opts)
	require.NoError(t, err)
	ca := filepath.Join(dir, pki.CACertFile)
	return testPKI{
		dir:       dir,
		collector: uplink.TLSConfig{CA: ca, Cert: ccert, Key: ckey},
		gateway:   uplink.TLSConfig{CA: ca, Cert: gcert, Key: gkey},
	}
}

// fastOpts keep handshake failures and retries short in tests.
func fastOpts() Options {
	return Options{HandshakeTimeout: 5 * time.Second, FlightInterval: 100 * time.Millisecond}
}

type handshakeErrs struct {
	mu   sync.Mutex
	errs []error
}

func (h *handshakeErrs) add(_ net.Addr, err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
}

func (h *handshakeErrs) wait(t *testing.T) error {
	t.Helper()
	var err error
	require.Eventually(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.errs) > 0 {
			err = h.errs[0]
			return true
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	return err
}

func listen(t *testing.T, server uplink.TLSConfig, herrs *handshakeErrs) *Listener {
	t.Helper()
	cfg, err := ServerConfig(server)
	require.NoError(t, err)
	opt := fastOpts()
	opt.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	if herrs != nil {
		opt.OnHandshakeError = herrs.add
	}
	ln, err := Listen("127.0.0.1:0", cfg, opt)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// echo serves one session: it reads until EOF and writes everything back.
func echo(t *testing.T, ln *Listener) <-chan *Conn {
	t.Helper()
	out := make(chan *Conn, 1)
	go func() {
		c, err := ln.AcceptRUDP()
		if err != nil {
			close(out)
			return
		}
		out <- c
		_, _ = io.Copy(c, c)
		c.Close()
	}()
	return out
}

func TestDTLSMutualAuth(t *testing.T) {
	p := newTestPKI(t, pki.Options{})
	ln := listen(t, p.collector, nil)
	srv := echo(t, ln)
	cfg, err := ClientConfig(p.gateway, "127.0.0.1")
	require.NoError(t, err)
	c, err := Dial(context.Background(), ln.Addr().String(), cfg, fastOpts())
	require.NoError(t, err)
	defer c.Close()

	msg := randomBytes(200<<10, 9)
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(msg, got))

	st := c.State()
	require.Equal(t, "DTLS 1.2", st.Version)
	require.Contains(t, st.CipherSuite, "GCM")
	require.True(t, st.ConnectionID)
	require.Equal(t, "collector", c.PeerCertificates()[0].Subject.CommonName)
	sc := <-srv
	id, err := pki.GatewayID(sc.PeerCertificates()[0])
	require.NoError(t, err)
	require.Equal(t, "gw-1", id)
	require.True(t, sc.State().ConnectionID)
}

func TestDTLSRefused(t *testing.T) {
	good := newTestPKI(t, pki.Options{})
	other := newTestPKI(t, pki.Options{}) // an unrelated CA
	expired := newTestPKI(t, pki.Options{Validity: time.Hour, Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }})

	tests := []struct {
		name      string
		server    uplink.TLSConfig
		client    func(t *testing.T) uplink.TLSConfig
		noCert    bool
		clientErr string
		serverErr string
	}{
		{
			name:      "client trusts another CA",
			server:    good.collector,
			client:    func(*testing.T) uplink.TLSConfig { c := good.gateway; c.CA = other.gateway.CA; return c },
			clientErr: "collector certificate",
		},
		{
			name:      "client certificate from another CA",
			server:    good.collector,
			client:    func(*testing.T) uplink.TLSConfig { c := other.gateway; c.CA = good.gateway.CA; return c },
			serverErr: "gateway certificate",
		},
		{
			name:   "expired client certificate",
			server: expired.collector,
			client: func(*testing.T) uplink.TLSConfig {
				return expired.gateway
			},
			serverErr: "expired",
		},
		{
			name:      "client without certificate",
			server:    good.collector,
			client:    func(*testing.T) uplink.TLSConfig { return good.gateway },
			noCert:    true,
			serverErr: "client verification",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var herrs handshakeErrs
			ln := listen(t, tt.server, &herrs)
			cfg, err := ClientConfig(tt.client(t), "127.0.0.1")
			require.NoError(t, err)
			if tt.noCert {
				cfg.GetClientCertificate = nil
			}
			opt := fastOpts()
			opt.HandshakeTimeout = 2 * time.Second
			c, err := Dial(context.Background(), ln.Addr().String(), cfg, opt)
			if err == nil {
				// The server may judge the client after the client's last
				// flight; the session then never carries data.
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, err = c.Read(make([]byte, 1))
				c.Close()
			}
			require.Error(t, err)
			require.ErrorContains(t, err, "rudp:")
			if tt.clientErr != "" {
				require.ErrorContains(t, err, tt.clientErr)
			}
			if tt.serverErr != "" {
				serr := herrs.wait(t)
				require.ErrorContains(t, serr, tt.serverErr)
				require.ErrorContains(t, serr, "rudp: handshake with 127.0.0.1:")
			}
		})
	}
}

func TestDTLSRenewedFiles(t *testing.T) {
	p := newTestPKI(t, pki.Options{})
	ln := listen(t, p.collector, nil)
	// The gateway's own copy of the CA bundle, so replacing it below
	// changes what the client trusts and nothing on the server.
	caPEM, err := os.ReadFile(p.gateway.CA)
	require.NoError(t, err)
	p.gateway.CA = filepath.Join(t.TempDir(), "gateway-ca.pem")
	require.NoError(t, os.WriteFile(p.gateway.CA, caPEM, 0o644))
	cfg, err := ClientConfig(p.gateway, "127.0.0.1")
	require.NoError(t, err)

	dial := func() *Conn {
		srv := echo(t, ln)
		c, err := Dial(context.Background(), ln.Addr().String(), cfg, fastOpts())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		sc := <-srv
		require.NotNil(t, sc)
		return sc
	}
	first := dial()
	serial1 := first.PeerCertificates()[0].SerialNumber

	// Renew the gateway's certificate in place; the same *dtls.Config
	// presents the new one at the next handshake.
	_, _, err = pki.IssueGateway(p.dir, "gw-1", pki.Options{Force: true})
	require.NoError(t, err)
	second := dial()
	serial2 := second.PeerCertificates()[0].SerialNumber
	require.NotEqual(t, serial1, serial2)

	// A CA bundle replaced by an unrelated one is read at the next
	// handshake too: the collector is no longer trusted.
	other := newTestPKI(t, pki.Options{})
	caPEM, err = os.ReadFile(other.gateway.CA)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p.gateway.CA, caPEM, 0o644))
	_, err = Dial(context.Background(), ln.Addr().String(), cfg, fastOpts())
	require.ErrorContains(t, err, "collector certificate")
}

// relay forwards UDP between a client and a server; rebind makes it send
// on to the server from a fresh socket, as a NAT that changed mapping.
type relay struct {
	front  *net.UDPConn // the client talks to this
	server *net.UDPAddr
	mu     sync.Mutex
	back   *net.UDPConn
	client *net.UDPAddr
	binds  atomic.Int32
	drop   func() bool // if set, decides per datagram whether to lose it
}

func (r *relay) lose() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.drop != nil && r.drop()
}

func newRelay(t testing.TB, server net.Addr) *relay {
	t.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	r := &relay{front: front, server: server.(*net.UDPAddr)}
	t.Cleanup(func() {
		front.Close()
		r.mu.Lock()
		r.back.Close()
		r.mu.Unlock()
	})
	r.rebind(t)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.client = from
			back := r.back
			r.mu.Unlock()
			if !r.lose() {
				_, _ = back.WriteToUDP(buf[:n], r.server)
			}
		}
	}()
	return r
}

func (r *relay) rebind(t testing.TB) {
	back, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	r.mu.Lock()
	old := r.back
	r.back = back
	r.mu.Unlock()
	r.binds.Add(1)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := back.Read(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			client := r.client
			r.mu.Unlock()
			if !r.lose() {
				_, _ = r.front.WriteToUDP(buf[:n], client)
			}
		}
	}()
	if old != nil {
		// The old mapping lingers briefly, as a NAT's would, then goes.
		time.AfterFunc(50*time.Millisecond, func() { old.Close() })
	}
}

func TestDTLSConnectionIDRebinding(t *testing.T) {
	p := newTestPKI(t, pki.Options{})
	var herrs handshakeErrs
	ln := listen(t, p.collector, &herrs)
	r := newRelay(t, ln.Addr())
	accepted := make(chan *Conn, 4)
	go func() {
		for {
			c, err := ln.AcceptRUDP()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	cfg, err := ClientConfig(p.gateway, "127.0.0.1")
	require.NoError(t, err)
	c, err := Dial(context.Background(), r.front.LocalAddr().String(), cfg, fastOpts())
	require.NoError(t, err)
	defer c.Close()
	sc := <-accepted
	before := sc.RemoteAddr().String()

	data := randomBytes(2<<20, 11)
	werr := make(chan error, 1)
	go func() {
		half := len(data) / 2
		_, err := c.Write(data[:half])
		for err == nil && c.Stats().BytesAcked < uint64(half) {
			time.Sleep(time.Millisecond)
		}
		if err == nil {
			r.rebind(t)
			_, err = c.Write(data[half:])
		}
		werr <- err
	}()
	got := make([]byte, len(data))
	_, err = io.ReadFull(sc, got)
	require.NoError(t, err)
	require.NoError(t, <-werr)
	require.True(t, bytes.Equal(data, got), "stream corrupted across the rebinding")
	require.NotEqual(t, before, sc.RemoteAddr().String(), "server did not follow the new address")
	require.EqualValues(t, 2, r.binds.Load())
	select {
	case extra := <-accepted:
		t.Fatalf("a second session from %s: the rebinding caused a new handshake", extra.RemoteAddr())
	default:
	}
	herrs.mu.Lock()
	require.Empty(t, herrs.errs)
	herrs.mu.Unlock()

	// The reverse direction still reaches the client at its new address.
	_, err = sc.Write([]byte("ack"))
	require.NoError(t, err)
	buf := make([]byte, 3)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "ack", string(buf))
	require.NoError(t, sc.Close())
}

// TestDTLSLossyPath runs handshakes and a transfer through a relay losing
// 10 % of datagrams each way: handshake flights are retransmitted and the
// stream arrives whole.
func TestDTLSLossyPath(t *testing.T) {
	p := newTestPKI(t, pki.Options{})
	ln := listen(t, p.collector, nil)
	cfg, err := ClientConfig(p.gateway, "127.0.0.1")
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		// A relay per session: a shared one would send each new client
		// from the previous session's address, into its lingering state.
		r := newRelay(t, ln.Addr())
		rng := rand.New(rand.NewPCG(10, uint64(i)))
		r.mu.Lock()
		r.drop = func() bool { return rng.Float64() < 0.10 }
		r.mu.Unlock()
		srv := echo(t, ln)
		t0 := time.Now()
		c, err := Dial(context.Background(), r.front.LocalAddr().String(), cfg, fastOpts())
		require.NoError(t, err)
		t.Logf("handshake %s", time.Since(t0))
		data := randomBytes(256<<10, uint64(i))
		go func() { _, _ = c.Write(data) }()
		got := make([]byte, len(data))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, got))
		st := c.Stats()
		require.Positive(t, st.SegmentsRetransmitted)
		require.NoError(t, c.Close())
		<-srv
	}
}

// TestDTLSForgedDatagrams sends junk and forged records at both ends of a
// live session: anyone can, so they must be dropped, not end it.
func TestDTLSForgedDatagrams(t *testing.T) {
	p := newTestPKI(t, pki.Options{})
	ln := listen(t, p.collector, nil)
	srv := echo(t, ln)
	cfg, err := ClientConfig(p.gateway, "127.0.0.1")
	require.NoError(t, err)
	c, err := Dial(context.Background(), ln.Addr().String(), cfg, fastOpts())
	require.NoError(t, err)
	defer c.Close()
	sc := <-srv

	attacker, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer attacker.Close()
	rng := rand.New(rand.NewPCG(3, 3))
	forged := func() [][]byte {
		junk := randomBytes(100, rng.Uint64())
		// An application-data record of epoch 1 with a made-up sequence
		// number and ciphertext.
		rec := append([]byte{23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 40}, randomBytes(40, rng.Uint64())...)
		// The same with the server's connection ID length of zeros.
		cidRec := append([]byte{25, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9}, make([]byte, cidLen)...)
		cidRec = append(cidRec, 0, 40)
		cidRec = append(cidRec, randomBytes(40, rng.Uint64())...)
		return [][]byte{junk, rec, cidRec, {}}
	}
	for _, to := range []net.Addr{c.LocalAddr(), ln.Addr()} {
		for i := 0; i < 20; i++ {
			for _, d := range forged() {
				_, _ = attacker.WriteTo(d, to)
			}
		}
	}
	msg := randomBytes(64<<10, 12)
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(msg, got))
	require.Equal(t, c.RemoteAddr().String(), ln.Addr().String())
	t.Logf("client read errors %d, server read errors %d", c.Stats().ReadErrors, sc.Stats().ReadErrors)
}

func TestDTLSHandshakeTimeout(t *testing.T) {
	p := newTestPKI(t, pki.Options{})
	// A port where nobody answers: the handshake times out, and the error
	// says so in a way callers can classify.
	hole, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer hole.Close()
	cfg, err := ClientConfig(p.gateway, "127.0.0.1")
	require.NoError(t, err)
	opt := fastOpts()
	opt.HandshakeTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err = Dial(context.Background(), hole.LocalAddr().String(), cfg, opt)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "rudp: handshake with 127.0.0.1:")
	require.Less(t, time.Since(start), 2*time.Second)

	// Bad options and identities are refused before any packet is sent.
	_, err = Dial(context.Background(), hole.LocalAddr().String(), cfg, Options{MTU: 10})
	require.ErrorContains(t, err, "mtu")
	_, err = ClientConfig(uplink.TLSConfig{CA: p.gateway.CA, Cert: "/nonexistent.pem", Key: p.gateway.Key}, "x")
	require.ErrorContains(t, err, "rudp: client identity: read certificate")
	_, err = ServerConfig(uplink.TLSConfig{CA: "/nonexistent.pem", Cert: p.collector.Cert, Key: p.collector.Key})
	require.ErrorContains(t, err, "rudp: server identity: read CA bundle")
}

// TestDTLSConnectRefused: a collector that is down answers the
// ClientHello with ICMP port unreachable, and the dial fails with
// ECONNREFUSED (as a TCP connect does) rather than running to its
// handshake timeout, which is long here so that only the refusal can end
// it. Once the collector listens on the port, the next dial succeeds.
// Without IP_RECVERR on the socket the error is the timeout.
func TestDTLSConnectRefused(t *testing.T) {
	p := newTestPKI(t, pki.Options{})
	free, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	addr := free.LocalAddr().String()
	require.NoError(t, free.Close())
	cfg, err := ClientConfig(p.gateway, "127.0.0.1")
	require.NoError(t, err)
	opt := fastOpts()
	opt.HandshakeTimeout = time.Minute
	_, err = Dial(context.Background(), addr, cfg, opt)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	require.ErrorContains(t, err, "rudp: handshake with "+addr+": nothing listens there (ICMP port unreachable)")

	scfg, err := ServerConfig(p.collector)
	require.NoError(t, err)
	ln, err := Listen(addr, scfg, fastOpts())
	require.NoError(t, err)
	defer ln.Close()
	srv := echo(t, ln)
	c, err := Dial(context.Background(), addr, cfg, opt)
	require.NoError(t, err)
	defer c.Close()
	msg := randomBytes(10<<10, 4)
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(msg, got))
	<-srv
}

// TestDTLSFlightRetransmitBounded counts the ClientHellos a dial sends to
// a collector that does not answer (down, its host sending no ICMP): with
// the default options the first flight is resent every 200 ms without
// doubling, so the handshake begins within that of the collector's
// return. With the former 500 ms, five at most arrive in the 2 s.
func TestDTLSFlightRetransmitBounded(t *testing.T) {
	p := newTestPKI(t, pki.Options{})
	hole, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer hole.Close()
	var arrivals []time.Time
	got := make(chan struct{})
	go func() {
		defer close(got)
		buf := make([]byte, 2048)
		for {
			if _, _, err := hole.ReadFrom(buf); err != nil {
				return
			}
			arrivals = append(arrivals, time.Now())
		}
	}()
	cfg, err := ClientConfig(p.gateway, "127.0.0.1")
	require.NoError(t, err)
	_, err = Dial(context.Background(), hole.LocalAddr().String(), cfg, Options{HandshakeTimeout: 2 * time.Second})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	hole.Close()
	<-got
	var gap time.Duration
	for i := 1; i < len(arrivals); i++ {
		gap = max(gap, arrivals[i].Sub(arrivals[i-1]))
	}
	t.Logf("%d ClientHellos in 2 s, longest gap %s", len(arrivals), gap)
	require.GreaterOrEqual(t, len(arrivals), 7, "the first flight is not resent often enough")
	require.Less(t, gap, time.Second, "the first flight's retransmission backed off")
}
