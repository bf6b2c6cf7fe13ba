package linklab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Relay is a NAT-like UDP forwarder in the gateway's namespace. The
// gateway sends to Addr (loopback, where the lab drops nothing); the relay
// sends on from a socket of its own on the lab link to the target, and
// passes the target's answers back to whoever last wrote to it. Rebind
// moves the relay's outside socket to a new port (and address): to the
// collector the gateway's session now comes from elsewhere, as after a NAT
// rebinding, and answers sent to the old address are lost.
type Relay struct {
	ns     Namespace
	target netip.AddrPort
	front  *net.UDPConn

	back    atomic.Pointer[net.UDPConn]
	client  atomic.Pointer[netip.AddrPort]
	rebinds atomic.Uint64
	up      atomic.Uint64 // datagrams forwarded toward the target
	down    atomic.Uint64 // datagrams forwarded back to the client

	mu     sync.Mutex // serialises Rebind and Close
	closed bool
	wg     sync.WaitGroup
}

// RelayStats counts what a relay did.
type RelayStats struct {
	Up, Down uint64         // datagrams forwarded toward the target, and back
	Rebinds  uint64         // calls of Rebind that took effect
	Outside  netip.AddrPort // the address the target currently sees
}

// StartRelay starts a relay in the gateway's namespace forwarding to
// target (the collector's DTLS address, say). Lab.Close stops it too.
func (l *Lab) StartRelay(target netip.AddrPort) (*Relay, error) {
	front, err := l.Gateway.ListenUDP(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0))
	if err != nil {
		return nil, err
	}
	r := &Relay{ns: l.Gateway, target: target, front: front}
	if err := r.bind(l.Gateway.Addr); err != nil {
		front.Close()
		return nil, err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.Join(errors.New("linklab: start relay: lab is closed"), r.Close())
	}
	l.relays = append(l.relays, r)
	l.mu.Unlock()
	r.wg.Add(1)
	go r.forwardUp()
	return r, nil
}

// Addr is where the gateway should send: a loopback address in the
// gateway's namespace.
func (r *Relay) Addr() netip.AddrPort { return r.front.LocalAddr().(*net.UDPAddr).AddrPort() }

// Rebind replaces the outside socket with a new one on a fresh port of
// local (the current address if local is the zero Addr), then closes the
// old one. It returns the new outside address.
func (r *Relay) Rebind(local netip.Addr) (netip.AddrPort, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return netip.AddrPort{}, errors.New("linklab: rebind: relay is closed")
	}
	if !local.IsValid() {
		local = r.outside().Addr()
	}
	old := r.back.Load()
	if err := r.bind(local); err != nil {
		return netip.AddrPort{}, err
	}
	old.Close()
	r.rebinds.Add(1)
	return r.outside(), nil
}

// bind opens an outside socket on local, connected to the target, makes
// it current and starts passing its answers back. r.mu is held or r is
// not yet shared.
func (r *Relay) bind(local netip.Addr) error {
	var c *net.UDPConn
	err := r.ns.Do(func() error {
		var err error
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)), net.UDPAddrFromAddrPort(r.target))
		return err
	})
	if err != nil {
		return fmt.Errorf("linklab: relay socket %s -> %s in %s: %w", local, r.target, r.ns.Name, err)
	}
	r.back.Store(c)
	r.wg.Add(1)
	go r.forwardDown(c)
	return nil
}

func (r *Relay) outside() netip.AddrPort {
	return r.back.Load().LocalAddr().(*net.UDPAddr).AddrPort()
}

// Stats returns the relay's counts.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RelayStats{Up: r.up.Load(), Down: r.down.Load(), Rebinds: r.rebinds.Load(), Outside: r.outside()}
}

// forwardUp passes the client's datagrams to the target through the
// current outside socket.
func (r *Relay) forwardUp() {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := r.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed
		}
		if c := r.client.Load(); c == nil || *c != from {
			r.client.Store(&from)
		}
		// A send racing a rebind may hit the socket just closed; the
		// datagram is lost, as it would be in a NAT.
		if _, err := r.back.Load().Write(buf[:n]); err == nil {
			r.up.Add(1)
		}
	}
}

// forwardDown passes the target's answers on c back to the client until
// c is closed.
func (r *Relay) forwardDown(c *net.UDPConn) {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // e.g. ICMP port unreachable while the target restarts
		}
		if to := r.client.Load(); to != nil {
			if _, err := r.front.WriteToUDPAddrPort(buf[:n], *to); err == nil {
				r.down.Add(1)
			}
		}
	}
}

// Close stops the relay. It may be called more than once.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.front.Close()
	r.back.Load().Close()
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}
