package syslog

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// setupUDP sizes the socket buffer and asks the kernel to count what it
// drops; failures are logged, not fatal.
func (s *Server) setupUDP(c *net.UDPConn) {
	if s.cfg.UDPReadBuffer > 0 {
		if err := c.SetReadBuffer(s.cfg.UDPReadBuffer); err != nil {
			s.log.Warn("udp_read_buffer not applied", "bytes", s.cfg.UDPReadBuffer, "err", err)
		}
	}
	if err := enableDropCount(c); err != nil {
		s.log.Info("UDP socket drops will not be counted", "err", err)
	}
}

// readUDP reads datagrams, one message each, until the socket is closed.
// While the queue is full it does not read, so datagrams wait in the
// socket buffer and, when that is full, the kernel drops and counts them.
func (r *run) readUDP(c *net.UDPConn) {
	s := r.s
	st := &s.stats[iUDP]
	buf := make([]byte, s.cfg.MaxMessageBytes)
	oob := make([]byte, oobSize)
	p := Parser{Source: s.cfg.Name, Priority: s.priority, Loc: s.loc}
	var (
		lastPeer netip.AddrPort
		meta     = Meta{Transport: TransportUDP}
	)
	for {
		n, oobn, flags, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		if oobn > 0 {
			if d, ok := dropCount(oob[:oobn]); ok {
				st.socketDrops.Store(uint64(d))
			}
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			st.readErrors.Add(1)
			s.log.Debug("udp read failed", "err", err)
			time.Sleep(10 * time.Millisecond) // never spin on a persistent error
			continue
		}
		if from != lastPeer {
			lastPeer = from
			meta.Peer, meta.PeerIP = from.String(), from.Addr().Unmap().String()
		}
		m := meta
		m.Truncated = truncatedDatagram(flags)
		r.handle(&p, buf[:n], from.Addr().Unmap(), &m, st, false, nil)
	}
}
