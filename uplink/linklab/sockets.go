package linklab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// ListenUDP opens a UDP socket on addr inside the namespace.
func (n Namespace) ListenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := n.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("linklab: listen udp %s in %s: %w", addr, n.Name, err)
	}
	return c, nil
}

// Listen opens a TCP listener on addr inside the namespace.
func (n Namespace) Listen(addr netip.AddrPort) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("linklab: listen tcp %s in %s: %w", addr, n.Name, err)
	}
	return ln, nil
}

// DialContext connects from inside the namespace; network is "tcp" or
// "udp", addr a literal address and port.
func (n Namespace) DialContext(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("linklab: dial %s %s from %s: %w", network, addr, n.Name, err)
	}
	return c, nil
}
