package sender

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// tcpInfo reads the kernel's counters for a TCP connection: segments sent
// and retransmitted, and its smoothed RTT (RFC 6298, per ACK).
func tcpInfo(c *net.TCPConn) (SegmentStats, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return SegmentStats{}, false
	}
	var info *unix.TCPInfo
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil || info == nil {
		return SegmentStats{}, false
	}
	return SegmentStats{
		Sent:          uint64(info.Segs_out),
		Retransmitted: uint64(info.Total_retrans),
		SRTT:          time.Duration(info.Rtt) * time.Microsecond,
		RTTVar:        time.Duration(info.Rttvar) * time.Microsecond,
		Source:        "tcp_info",
	}, true
}
