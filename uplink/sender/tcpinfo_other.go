//go:build !linux

package sender

import "net"

// tcpInfo is not available here: loss over TLS is reported unknown and
// the RTT comes from Ping/Pong.
func tcpInfo(*net.TCPConn) (SegmentStats, bool) { return SegmentStats{}, false }
