package rudp

import (
	"errors"
	"net"
	"syscall"
)

// connectedConn is the client's socket connected to the collector's
// address, presented as the PacketConn pion wants. Connected, it hears
// the ICMP port unreachable a host sends back when nothing listens on the
// port (an unconnected UDP socket is never told): the kernel returns it
// as ECONNREFUSED from the next read or write, and refused is called with
// it, so a handshake with a collector that is down fails in one round
// trip, as a TCP connect does, rather than running to its timeout.
type connectedConn struct {
	*net.UDPConn
	raddr   net.Addr
	refused func(error)
}

func (c *connectedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := c.UDPConn.Read(b)
	c.check(err)
	return n, c.raddr, err
}

func (c *connectedConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	n, err := c.UDPConn.Write(b)
	c.check(err)
	return n, err
}

func (c *connectedConn) check(err error) {
	if err != nil && errors.Is(err, syscall.ECONNREFUSED) && c.refused != nil {
		c.refused(err)
	}
}
