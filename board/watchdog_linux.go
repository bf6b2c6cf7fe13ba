package board

import (
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setWatchdogTimeout is WDIOC_SETTIMEOUT: the driver writes back the
// timeout it took, in seconds.
func setWatchdogTimeout(f *os.File, d time.Duration) (time.Duration, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	secs := int32(d / time.Second)
	var errno unix.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(unix.WDIOC_SETTIMEOUT), uintptr(unsafe.Pointer(&secs)))
	}); err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, fmt.Errorf("WDIOC_SETTIMEOUT %ds: %w (the timeout is the driver's own)", d/time.Second, errno)
	}
	return time.Duration(secs) * time.Second, nil
}
