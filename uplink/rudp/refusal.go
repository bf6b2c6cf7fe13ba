package rudp

import (
	"errors"
	"net"
	"syscall"
)

// refusalConn is the client's socket as pion uses it, reporting the
// ECONNREFUSED that the kernel returns from a read or write once the
// collector's host has answered with ICMP port unreachable (nothing
// listens on the port), so a handshake with a collector that is down can
// fail in one round trip, as a TCP connect does, rather than run to its
// timeout. An unconnected UDP socket hears of ICMP errors only while
// IP_RECVERR is on (recvErrors), which Dial sets for the handshake alone.
// The socket stays unconnected so its source address follows the
// gateway's: a session outlives the gateway's address changing (the
// Connection ID finds it), which a connected socket, its source fixed at
// connect, would not.
type refusalConn struct {
	*net.UDPConn
	refused func(error)
}

func (c *refusalConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.UDPConn.ReadFrom(b)
	c.check(err)
	return n, addr, err
}

func (c *refusalConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.UDPConn.WriteTo(b, addr)
	c.check(err)
	return n, err
}

func (c *refusalConn) check(err error) {
	if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
		c.refused(err)
	}
}
