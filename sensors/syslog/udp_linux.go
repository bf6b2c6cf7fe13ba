package syslog

import (
	"encoding/binary"
	"net"

	"golang.org/x/sys/unix"
)

// oobSize holds one SO_RXQ_OVFL control message.
var oobSize = unix.CmsgSpace(4)

// enableDropCount sets SO_RXQ_OVFL: each datagram then comes with the
// number of datagrams the socket dropped so far for want of buffer.
func enableDropCount(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
	}); err != nil {
		return err
	}
	return serr
}

// dropCount reads the SO_RXQ_OVFL counter from a datagram's control
// data. The kernel adds it only once the count is not zero.
func dropCount(oob []byte) (uint32, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data), true
		}
	}
	return 0, false
}

func truncatedDatagram(flags int) bool { return flags&unix.MSG_TRUNC != 0 }

const dropCountSupported = true
