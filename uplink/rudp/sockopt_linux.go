package rudp

import (
	"net"

	"golang.org/x/sys/unix"
)

// sizeBuffers asks for bytes of socket buffer each way and returns what
// the kernel granted (it reports twice the request, its bookkeeping
// included; the figures here are halved back). Above net.core.rmem_max
// (wmem_max) only a process with CAP_NET_ADMIN gets the size, by the
// FORCE options; others keep the cap.
func sizeBuffers(pc *net.UDPConn, bytes int) (rcv, snd int) {
	raw, err := pc.SyscallConn()
	if err != nil {
		return 0, 0
	}
	_ = raw.Control(func(fd uintptr) {
		for _, o := range []struct {
			opt, force int
			got        *int
		}{{unix.SO_RCVBUF, unix.SO_RCVBUFFORCE, &rcv}, {unix.SO_SNDBUF, unix.SO_SNDBUFFORCE, &snd}} {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.opt, bytes)
			if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, o.opt); err == nil && v/2 < bytes {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.force, bytes)
			}
			if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, o.opt); err == nil {
				*o.got = v / 2
			}
		}
	})
	return rcv, snd
}

// recvErrors turns IP_RECVERR (IPV6_RECVERR) on or off: while on, an ICMP
// error about a datagram sent from the unconnected socket, such as port
// unreachable, makes the next read or write fail with it. Off again after
// the handshake, so a stray ICMP error cannot queue up against the
// session's receive buffer.
func recvErrors(pc *net.UDPConn, v6, on bool) {
	raw, err := pc.SyscallConn()
	if err != nil {
		return
	}
	level, opt := unix.IPPROTO_IP, unix.IP_RECVERR
	if v6 {
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_RECVERR
	}
	v := 0
	if on {
		v = 1
	}
	_ = raw.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), level, opt, v) })
}
