package rudp

// The server's UDP demultiplexer: one socket, a virtual packet conn per
// DTLS session, routed by connection ID or source address, and admission
// of new sessions within handshake budgets.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v5/deadline"
)

// DTLS record layout (RFC 6347 4.1, RFC 9146 for the connection ID).
const (
	recordHandshake = 22
	recordCID       = 25
	// The handshake message type of a handshake record's first fragment,
	// and the message body after the 12-byte handshake header.
	hsTypeOffset      = 13
	hsBodyOffset      = 25
	hsClientHello     = 1
	hsServerHello     = 2
	hsHelloVerify     = 3
	cidOffset         = 11
	clientHelloRandom = 32
)

// helloCookie returns the cookie of the ClientHello or HelloVerifyRequest
// (typ) that starts datagram p, if p holds it whole.
func helloCookie(p []byte, typ byte) ([]byte, bool) {
	if len(p) <= hsBodyOffset || p[0] != recordHandshake || p[hsTypeOffset] != typ {
		return nil, false
	}
	b := p[hsBodyOffset:]
	off := 2 // version
	if typ == hsClientHello {
		off += clientHelloRandom
		if len(b) <= off {
			return nil, false
		}
		off += 1 + int(b[off]) // session id
	}
	if len(b) <= off || len(b) < off+1+int(b[off]) {
		return nil, false
	}
	return b[off+1 : off+1+int(b[off])], true
}

// The datagrams waiting for one session's reader are bounded, a datagram
// beyond dropped as a full socket buffer would: a handshake's flights are a
// few datagrams, an established session's reader keeps up with a receive
// window of them.
const (
	handshakeQueue   = 16
	establishedQueue = 4096
	// helloBacklog bounds the ClientHellos from unknown addresses waiting
	// for admission (admitLoop).
	helloBacklog = 256
)

// errEvicted ends a handshake the mux dropped to make room for a newer one.
var errEvicted = errors.New("handshake dropped: the handshake budget is spent and this one never proved its address")

// mux owns the server's socket. A datagram is routed by the connection ID
// its record carries, else by its source address; a ClientHello from an
// unknown address starts a session if the budgets allow. A session is
// "verified" once its peer echoed the cookie of the HelloVerifyRequest
// pion sent it (or pion sent it a ServerHello, which it does only then),
// i.e. proved it receives at its address. When a budget is spent, an
// unverified handshake makes room (evictLocked): spoofed ClientHellos,
// which never verify, can only push out each other, and a real handshake
// is at risk only for its first round trip, and not at all from a flood
// concentrated in fewer prefixes than the budget. (The cookie exchange cannot be made
// stateless in front of pion: DTLS hashes the handshake's message
// sequence numbers, so the ClientHello pion sees must be the first.)
type mux struct {
	pc        *net.UDPConn
	maxTotal  int
	maxPrefix int
	onNew     func(*vconn) // starts the handshake; called under mu, must not block
	onDrop    func(addr net.Addr, reason string)

	mu      sync.Mutex
	byAddr  map[string]*vconn
	byCID   map[string]*vconn
	live    int      // vconns not closed: the socket outlives the listener until they are
	pending []*vconn // handshakes under way, oldest first
	prefix  map[string]int
	closed  bool
	done    chan struct{}
	hellos  chan datagram // ClientHellos from unknown addresses, for admitLoop
}

func newMux(pc *net.UDPConn, maxTotal, maxPrefix int, onNew func(*vconn), onDrop func(net.Addr, string)) *mux {
	m := &mux{pc: pc, maxTotal: maxTotal, maxPrefix: maxPrefix, onNew: onNew, onDrop: onDrop,
		byAddr: map[string]*vconn{}, byCID: map[string]*vconn{}, prefix: map[string]int{}, done: make(chan struct{}), hellos: make(chan datagram, helloBacklog)}
	return m
}

func (m *mux) start() {
	go m.readLoop()
	go m.admitLoop()
}

// prefixKey is the unit of the per-prefix budget: a /24 of IPv4, a /48 of
// IPv6 (what one site usually holds).
func prefixKey(a *net.UDPAddr) string {
	if ip4 := a.IP.To4(); ip4 != nil {
		return ip4.Mask(net.CIDRMask(24, 32)).String() + "/24"
	}
	return a.IP.Mask(net.CIDRMask(48, 128)).String() + "/48"
}

func (m *mux) readLoop() {
	defer close(m.done)
	buf := make([]byte, 1<<16)
	for {
		n, addr, err := m.pc.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP errors surface here; they end nothing
		}
		p := buf[:n]
		vc, hello := m.lookup(p, addr)
		switch {
		case vc != nil:
			vc.deliver(append([]byte(nil), p...), addr)
		case hello:
			select {
			case m.hellos <- datagram{append([]byte(nil), p...), addr}:
			default:
				// The admission backlog is full: dropped without a word,
				// as a full socket buffer would drop it (a flood would
				// otherwise cost a report per datagram), but without
				// holding up the datagrams of sessions behind it.
			}
		}
	}
}

// admitLoop opens sessions for the ClientHellos the reader queued, so the
// cost of admission (budgets, eviction, a handshake started) never delays
// the datagrams of sessions already open: under a flood of spoofed
// ClientHellos those wait behind nothing but each other.
func (m *mux) admitLoop() {
	for {
		select {
		case d := <-m.hellos:
			vc, refused := m.route(d.p, d.addr)
			if refused != "" && m.onDrop != nil {
				m.onDrop(d.addr, refused)
			}
			if vc != nil {
				vc.deliver(d.p, d.addr)
			}
		case <-m.done:
			return
		}
	}
}

// lookup finds the session of datagram p from addr, as route does, or
// reports whether p is a ClientHello that may open one (for route, in
// admitLoop).
func (m *mux) lookup(p []byte, addr *net.UDPAddr) (*vconn, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, false
	}
	if len(p) >= cidOffset+cidLen && p[0] == recordCID {
		if vc := m.byCID[string(p[cidOffset:cidOffset+cidLen])]; vc != nil {
			return vc, false
		}
	}
	if vc := m.byAddr[addr.String()]; vc != nil {
		if !vc.isVerified() {
			if c, ok := helloCookie(p, hsClientHello); ok && len(c) > 0 && vc.cookieIs(c) {
				vc.verifiedV.Store(true)
			}
		}
		return vc, false
	}
	return nil, isClientHello(p)
}

// isClientHello reports whether p starts with a ClientHello record of
// epoch 0, the only datagram that may open a session.
func isClientHello(p []byte) bool {
	return len(p) > hsTypeOffset && p[0] == recordHandshake && p[3] == 0 && p[4] == 0 && p[hsTypeOffset] == hsClientHello
}

// route finds the session of datagram p from addr, or admits a new one;
// a ClientHello refused for the budgets returns why.
func (m *mux) route(p []byte, addr *net.UDPAddr) (*vconn, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ""
	}
	if len(p) >= cidOffset+cidLen && p[0] == recordCID {
		if vc := m.byCID[string(p[cidOffset:cidOffset+cidLen])]; vc != nil {
			return vc, ""
		}
	}
	if vc := m.byAddr[addr.String()]; vc != nil {
		if !vc.isVerified() {
			if c, ok := helloCookie(p, hsClientHello); ok && len(c) > 0 && vc.cookieIs(c) {
				vc.verifiedV.Store(true)
			}
		}
		return vc, ""
	}
	// Only a ClientHello (epoch 0) may open a session; anything else from
	// an unknown address is dropped without a word.
	if !isClientHello(p) {
		return nil, ""
	}
	key := prefixKey(addr)
	if m.prefix[key] >= m.maxPrefix && !m.evictLocked(key) {
		return nil, RefusedPrefix
	}
	if len(m.pending) >= m.maxTotal && !m.evictLocked("") {
		return nil, RefusedHandshakes
	}
	vc := &vconn{m: m, raddr: addr, prefix: key, readable: make(chan struct{}, 1), closed: make(chan struct{}),
		rdl: deadline.New(), wdl: deadline.New(), started: time.Now(), limit: handshakeQueue}
	if _, err := rand.Read(vc.cid[:]); err != nil {
		return nil, ""
	}
	m.byAddr[addr.String()] = vc
	m.byCID[string(vc.cid[:])] = vc
	m.live++
	m.pending = append(m.pending, vc)
	m.prefix[key]++
	m.onNew(vc)
	return vc, ""
}

// Why a ClientHello opened no session.
const (
	RefusedHandshakes = "handshakes"            // Options.HandshakeBudget handshakes under way, all verified
	RefusedPrefix     = "handshakes_per_prefix" // Options.HandshakesPerPrefix from the source's prefix, all verified
)

// evictLocked ends an unverified handshake and reports whether there was
// one: for a prefix's budget (key set), that prefix's oldest; for the
// global budget (key ""), the oldest of the prefix holding the most
// unverified handshakes, so a flood from a few prefixes pushes out its
// own handshakes before a lone gateway's from elsewhere. (A flood spread
// one address a prefix over more prefixes than the budget still pushes
// out the oldest: nothing can tell a spoofed source from a real one
// before it proves its address.)
func (m *mux) evictLocked(key string) bool {
	if key == "" {
		unverified := map[string]int{}
		for _, vc := range m.pending {
			if !vc.isVerified() {
				unverified[vc.prefix]++
			}
		}
		most := 0
		for _, vc := range m.pending { // oldest first: ties go to the oldest
			if n := unverified[vc.prefix]; !vc.isVerified() && n > most {
				key, most = vc.prefix, n
			}
		}
		if most == 0 {
			return false
		}
	}
	for _, vc := range m.pending {
		if vc.isVerified() || vc.prefix != key {
			continue
		}
		vc.evicted.Store(true)
		m.forgetLocked(vc)
		vc.closeInbound()
		// pion closes the vconn when its handshake fails; live drops then.
		return true
	}
	return false
}

// established takes vc out of the handshake budgets.
func (m *mux) established(vc *vconn) {
	m.mu.Lock()
	m.unpendLocked(vc)
	m.mu.Unlock()
	vc.qmu.Lock()
	vc.limit = establishedQueue
	vc.qmu.Unlock()
}

func (m *mux) unpendLocked(vc *vconn) {
	for i, p := range m.pending {
		if p == vc {
			m.pending = append(m.pending[:i], m.pending[i+1:]...)
			if m.prefix[vc.prefix]--; m.prefix[vc.prefix] <= 0 {
				delete(m.prefix, vc.prefix)
			}
			return
		}
	}
}

func (m *mux) forgetLocked(vc *vconn) {
	m.unpendLocked(vc)
	if m.byAddr[vc.raddr.String()] == vc {
		delete(m.byAddr, vc.raddr.String())
	}
	if m.byCID[string(vc.cid[:])] == vc {
		delete(m.byCID, string(vc.cid[:]))
	}
}

func (m *mux) pendingCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// close stops admitting sessions; the socket closes once the last session
// using it does (sessions accepted already stay open).
func (m *mux) close() {
	m.mu.Lock()
	m.closed = true
	last := m.live == 0
	m.mu.Unlock()
	if last {
		m.pc.Close()
	}
}

type datagram struct {
	p    []byte
	addr *net.UDPAddr
}

// vconn is one session's view of the socket: a net.PacketConn that reads
// the datagrams routed to it and writes to the socket.
type vconn struct {
	m       *mux
	raddr   *net.UDPAddr
	prefix  string
	cid     [cidLen]byte
	started time.Time
	rdl     *deadline.Deadline
	wdl     *deadline.Deadline

	verifiedV atomic.Bool
	evicted   atomic.Bool
	released  bool // counted out of mux.live (under mux.mu)
	cookieMu  sync.Mutex
	cookie    []byte // of the HelloVerifyRequest sent

	qmu       sync.Mutex
	queue     []datagram // waiting for ReadFrom: queue[head:]
	head      int
	limit     int
	readable  chan struct{}
	closeOnce sync.Once
	closed    chan struct{}
}

func (vc *vconn) isVerified() bool { return vc.verifiedV.Load() }

func (vc *vconn) setCookie(c []byte) {
	vc.cookieMu.Lock()
	vc.cookie = append(vc.cookie[:0], c...)
	vc.cookieMu.Unlock()
}

func (vc *vconn) cookieIs(c []byte) bool {
	vc.cookieMu.Lock()
	defer vc.cookieMu.Unlock()
	return len(vc.cookie) > 0 && string(vc.cookie) == string(c)
}

func (vc *vconn) deliver(p []byte, addr *net.UDPAddr) {
	vc.qmu.Lock()
	if len(vc.queue)-vc.head >= vc.limit {
		vc.qmu.Unlock()
		return // the reader is behind: dropped, as the socket would
	}
	vc.queue = append(vc.queue, datagram{p, addr})
	vc.qmu.Unlock()
	select {
	case vc.readable <- struct{}{}:
	default:
	}
}

func (vc *vconn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		vc.qmu.Lock()
		if vc.head < len(vc.queue) {
			d := vc.queue[vc.head]
			vc.queue[vc.head] = datagram{}
			vc.head++
			if vc.head == len(vc.queue) {
				vc.queue, vc.head = vc.queue[:0], 0
			}
			vc.qmu.Unlock()
			return copy(b, d.p), d.addr, nil
		}
		vc.qmu.Unlock()
		select {
		case <-vc.readable:
		case <-vc.closed:
			return 0, nil, net.ErrClosed
		case <-vc.rdl.Done():
			return 0, nil, os.ErrDeadlineExceeded
		}
	}
}

func (vc *vconn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-vc.closed:
		return 0, net.ErrClosed
	case <-vc.wdl.Done():
		return 0, os.ErrDeadlineExceeded
	default:
	}
	if !vc.isVerified() && len(p) > hsTypeOffset && p[0] == recordHandshake {
		switch p[hsTypeOffset] {
		case hsServerHello:
			vc.verifiedV.Store(true)
		case hsHelloVerify:
			if c, ok := helloCookie(p, hsHelloVerify); ok {
				vc.setCookie(c)
			}
		}
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("rudp: write to %s: not a UDP address", addr)
	}
	if ua.String() != vc.raddr.String() {
		// The peer moved (its datagrams carry our connection ID): its old
		// address no longer routes here.
		vc.m.mu.Lock()
		if vc.m.byAddr[vc.raddr.String()] == vc {
			delete(vc.m.byAddr, vc.raddr.String())
		}
		vc.m.mu.Unlock()
	}
	return vc.m.pc.WriteToUDP(p, ua)
}

func (vc *vconn) closeInbound() {
	vc.closeOnce.Do(func() { close(vc.closed) })
}

func (vc *vconn) Close() error {
	m := vc.m
	m.mu.Lock()
	m.forgetLocked(vc)
	last := false
	if !vc.released {
		vc.released = true
		m.live--
		last = m.closed && m.live == 0
	}
	m.mu.Unlock()
	vc.closeInbound()
	if last {
		m.pc.Close()
	}
	return nil
}

func (vc *vconn) LocalAddr() net.Addr { return vc.m.pc.LocalAddr() }

func (vc *vconn) SetDeadline(t time.Time) error {
	vc.rdl.Set(t)
	vc.wdl.Set(t)
	return nil
}

func (vc *vconn) SetReadDeadline(t time.Time) error  { vc.rdl.Set(t); return nil }
func (vc *vconn) SetWriteDeadline(t time.Time) error { vc.wdl.Set(t); return nil }
