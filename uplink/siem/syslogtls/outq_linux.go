package syslogtls

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// outq reads SIOCOUTQ: bytes written to the socket and not yet
// acknowledged by the peer.
func outq(rc syscall.RawConn) (int, bool) {
	var n int
	var err error
	if cerr := rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); cerr != nil || err != nil {
		return 0, false
	}
	return n, true
}
