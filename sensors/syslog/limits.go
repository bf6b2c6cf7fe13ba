package syslog

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// slots bounds what one listener holds at once: its connections, or its
// TLS handshakes. A slot whose peer has not sent a byte yet is silent;
// when every slot is taken, the oldest silent one is closed to make room
// for a newcomer, so connections opened and left idle cannot keep real
// senders out (a real sender writes as soon as it has connected). Only
// when every slot has heard from its peer is a newcomer refused.
type slots struct {
	mu     sync.Mutex
	max    int
	n      int
	seq    uint64
	silent map[*slot]struct{}
}

// slot is one taken place in slots.
type slot struct {
	c       net.Conn
	seq     uint64
	heard   atomic.Bool // a byte arrived; set once, then the slot leaves silent
	evicted bool        // closed to make room; its place was handed on (under slots.mu)
}

func newSlots(max int) *slots {
	return &slots{max: max, silent: map[*slot]struct{}{}}
}

// take gives c a slot: a free one, or that of the oldest silent slot,
// which it returns (evicted) for the caller to close. ok is false when
// every slot is taken by a peer that has sent something.
func (p *slots) take(c net.Conn) (s *slot, evicted net.Conn, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	s = &slot{c: c, seq: p.seq}
	if p.n < p.max {
		p.n++
		p.silent[s] = struct{}{}
		return s, nil, true
	}
	var oldest *slot
	for o := range p.silent {
		if oldest == nil || o.seq < oldest.seq {
			oldest = o
		}
	}
	if oldest == nil {
		return nil, nil, false
	}
	delete(p.silent, oldest)
	oldest.evicted = true
	p.silent[s] = struct{}{}
	return s, oldest.c, true
}

// hear marks s as having heard from its peer: it is no longer evicted
// for a newcomer.
func (p *slots) hear(s *slot) {
	if s.heard.Swap(true) {
		return
	}
	p.mu.Lock()
	delete(p.silent, s)
	p.mu.Unlock()
}

// release frees s; an evicted slot's place already went to its evictor.
// It says whether s was evicted.
func (p *slots) release(s *slot) (evicted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.evicted {
		return true
	}
	delete(p.silent, s)
	p.n--
	return false
}

func (p *slots) taken() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// perAddress bounds the streams (TLS handshakes included) one peer holds
// on a listener: an IPv4 address, or an IPv6 /64, which one host can
// fill with addresses of its own.
type perAddress struct {
	mu  sync.Mutex
	max int
	n   map[netip.Addr]int
}

func newPerAddress(max int) *perAddress {
	return &perAddress{max: max, n: map[netip.Addr]int{}}
}

// addrKey is what a peer's streams are counted under.
func addrKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

func (a *perAddress) take(k netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[k] >= a.max {
		return false
	}
	a.n[k]++
	return true
}

func (a *perAddress) release(k netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[k]--; a.n[k] <= 0 {
		delete(a.n, k)
	}
}

// heardConn calls heard once, at the first byte read from the peer.
type heardConn struct {
	net.Conn
	heard func()
	once  bool
}

func (c *heardConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.once {
		c.once = true
		c.heard()
	}
	return n, err
}
