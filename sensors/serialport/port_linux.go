package serialport

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/tarm/serial"
	"golang.org/x/sys/unix"
)

// linuxIO reads and writes through a second, non-blocking descriptor of the
// tty, which Go's poller manages, so read deadlines work (see doc.go).
type linuxIO struct {
	f *os.File
}

func openIO(cfg Config, _ *serial.Port) (ioPort, error) {
	f, err := os.OpenFile(cfg.Device, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	// A character device is pollable; if this one is not, deadlines would
	// silently not work, which the RTU master cannot live with.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s does not support read deadlines: %w", cfg.Device, err)
	}
	return &linuxIO{f: f}, nil
}

func (l *linuxIO) Read(b []byte) (int, error)        { return l.f.Read(b) }
func (l *linuxIO) Write(b []byte) (int, error)       { return l.f.Write(b) }
func (l *linuxIO) SetReadDeadline(t time.Time) error { return l.f.SetReadDeadline(t) }
func (l *linuxIO) Close() error                      { return l.f.Close() }

// drain is tcdrain(3): TCSBRK with a non-zero argument waits for the
// output to be transmitted.
func (l *linuxIO) drain() error {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetInt(int(fd), unix.TCSBRK, 1)
	}); err != nil {
		return err
	}
	return ioErr
}

// serialRS485 is the kernel's struct serial_rs485 (include/uapi/linux/serial.h).
type serialRS485 struct {
	Flags              uint32
	DelayRTSBeforeSend uint32 // ms
	DelayRTSAfterSend  uint32 // ms
	Padding            [5]uint32
}

const (
	serRS485Enabled      = 1 << 0
	serRS485RTSOnSend    = 1 << 1
	serRS485RTSAfterSend = 1 << 2
)

// setKernelRS485 enables the driver's RS-485 mode. It reports false, nil if
// the driver does not support it (ENOTTY, EINVAL, EOPNOTSUPP: what ptys,
// USB adapters and most 8250 ports without RS-485 wiring answer; ENOSYS:
// qemu-user, which `make test-arm` runs under, does not pass the ioctl on).
func setKernelRS485(p ioPort, c RS485) (bool, error) {
	l, ok := p.(*linuxIO)
	if !ok {
		return false, nil
	}
	s := serialRS485{
		Flags:              serRS485Enabled | serRS485RTSOnSend,
		DelayRTSBeforeSend: uint32(c.DelayBeforeSend / time.Millisecond),
		DelayRTSAfterSend:  uint32(c.DelayAfterSend / time.Millisecond),
	}
	if c.RTSActiveLow {
		s.Flags = serRS485Enabled | serRS485RTSAfterSend
	}
	rc, err := l.f.SyscallConn()
	if err != nil {
		return false, err
	}
	var errno unix.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(unix.TIOCSRS485), uintptr(unsafe.Pointer(&s)))
	}); err != nil {
		return false, err
	}
	switch {
	case errno == 0:
		return true, nil
	case errors.Is(errno, unix.ENOTTY), errors.Is(errno, unix.EINVAL), errors.Is(errno, unix.EOPNOTSUPP),
		errors.Is(errno, unix.ENOSYS):
		return false, nil
	}
	return false, fmt.Errorf("TIOCSRS485: %w", errno)
}
