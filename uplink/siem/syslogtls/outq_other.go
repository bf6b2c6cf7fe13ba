//go:build !linux

package syslogtls

import "syscall"

// outq cannot read the send queue here: a batch counts once written.
func outq(syscall.RawConn) (int, bool) { return 0, false }
