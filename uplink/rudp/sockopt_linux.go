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
