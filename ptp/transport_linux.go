package ptp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"encoding/binary"
	"golang.org/x/sys/unix"
	"unsafe"
)

// ptpMulticast is the IPv4 group for all PTP messages but peer delay.
var ptpMulticast = netip.MustParseAddr("224.0.1.129")

// Time stamping, best first.
const (
	stampHardware = "hardware"
	stampSoftware = "software"
	stampUser     = "user"
)

// transport is the slave's two UDP sockets: event (319) with receive and
// transmit time stamps, general (320).
type transport struct {
	event, general *net.UDPConn
	evRaw          syscall.RawConn
	// txfd sends Delay_Req. It is a socket of its own, outside Go's
	// poller: a transmit stamp queued on a socket that epoll watches
	// wakes the poller thread from inside the send, between the stamp and
	// the packet's arrival at the far end of a veth, which adds that
	// wakeup (about a microsecond in a VM) to the measured path one way.
	txfd      int
	txbuf     []byte
	stamping  string
	delayDst  netip.AddrPort // where Delay_Req goes
	oob, toob []byte
}

// packet is one received datagram.
type packet struct {
	b     []byte
	event bool
	from  netip.Addr
	at    time.Time // CLOCK_REALTIME: kernel stamp or, failing that, read time
}

// openTransport binds both ports on iface. SO_REUSEADDR, as ptp4l does, so
// a ptp4l on the same host (tests run one side by side) can bind them too;
// SO_BINDTODEVICE keeps other interfaces' PTP traffic out.
func openTransport(ctx context.Context, c BuiltinConfig) (*transport, error) {
	ifi, err := net.InterfaceByName(c.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", c.Interface, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			serr = unix.BindToDevice(int(fd), ifi.Name)
		})
		return errors.Join(err, serr)
	}}
	t := &transport{oob: make([]byte, 256), toob: make([]byte, 256), txbuf: make([]byte, 256)}
	for _, s := range []struct {
		port int
		conn **net.UDPConn
	}{{319, &t.event}, {320, &t.general}} {
		pc, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", s.port))
		if err != nil {
			t.close()
			return nil, fmt.Errorf("udp port %d on %s: %w", s.port, ifi.Name, err)
		}
		*s.conn = pc.(*net.UDPConn)
		if err := multicastSetup(*s.conn, ifi); err != nil {
			t.close()
			return nil, fmt.Errorf("udp port %d on %s: multicast: %w", s.port, ifi.Name, err)
		}
	}
	if t.evRaw, err = t.event.SyscallConn(); err != nil {
		t.close()
		return nil, err
	}
	if t.txfd, err = openSender(ifi); err != nil {
		t.close()
		return nil, fmt.Errorf("Delay_Req socket on %s: %w", ifi.Name, err)
	}
	t.stamping, err = t.enableStamps(c.Timestamping, ifi)
	if err != nil {
		t.close()
		return nil, err
	}
	t.delayDst = netip.AddrPortFrom(ptpMulticast, 319)
	if c.UnicastMaster != "" {
		t.delayDst = netip.AddrPortFrom(netip.MustParseAddr(c.UnicastMaster), 319)
	}
	return t, nil
}

func multicastSetup(conn *net.UDPConn, ifi *net.Interface) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		mreq := &unix.IPMreqn{Multiaddr: ptpMulticast.As4(), Ifindex: int32(ifi.Index)}
		serr = errors.Join(
			unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq),
			unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)}),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 1),
		)
	})
	return errors.Join(err, serr)
}

// Kernel time stamps are read here rather than with facebook/time's
// timestamp package: that package does not compile for 32-bit ARM
// (armv7 boards), where msghdr's Controllen is 32 bits.
//
// No SOF_TIMESTAMPING_OPT_TSONLY: with it the kernel allocates a fresh
// buffer for the stamp after taking it and before the packet is handed on,
// and on a veth that work lands inside the measured path (the built-in's
// path delay read ~0.65 µs longer than ptp4l's, which does not set it);
// without it the stamp rides on a clone of the packet, as for ptp4l.
const swStampFlags = unix.SOF_TIMESTAMPING_TX_SOFTWARE | unix.SOF_TIMESTAMPING_RX_SOFTWARE |
	unix.SOF_TIMESTAMPING_SOFTWARE

// enableSoftwareStamps asks for 64-bit time stamps (SO_TIMESTAMPING_NEW,
// Linux 5.1) and falls back to the native layout on older kernels.
func enableSoftwareStamps(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING_NEW, swStampFlags); err == nil {
		return nil
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, swStampFlags)
}

// stampFrom finds the software time stamp in control messages.
func stampFrom(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch int(m.Header.Type) {
		case unix.SO_TIMESTAMPING_NEW:
			if len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
				return time.Unix(sec, nsec), sec != 0 || nsec != 0
			}
		case unix.SO_TIMESTAMPING:
			var ts unix.Timespec
			if len(m.Data) >= int(unsafe.Sizeof(ts)) {
				ts = *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				return time.Unix(ts.Unix()), ts.Sec != 0 || ts.Nsec != 0
			}
		}
	}
	return time.Time{}, false
}

// enableStamps turns on the best time stamping allowed by want: hardware
// needs a NIC that stamps and a PHC the slave reads; software is the
// kernel's stamps at the driver; user is the read and write times here,
// which carry scheduling delays.
func (t *transport) enableStamps(want string, ifi *net.Interface) (string, error) {
	var got string
	var errs []error
	try := func(kind string, enable func(fd int) error) {
		if got != "" {
			return
		}
		var err error
		if cerr := t.evRaw.Control(func(fd uintptr) { err = enable(int(fd)) }); cerr != nil {
			err = cerr
		}
		if err == nil {
			err = enable(t.txfd)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s time stamps on %s: %w", kind, ifi.Name, err))
			return
		}
		got = kind
	}
	switch want {
	case stampHardware:
		// Hardware stamps are on the NIC's clock, not CLOCK_REALTIME; the
		// slave would have to discipline and read that PHC. Not built yet:
		// refuse rather than mix time scales.
		return "", fmt.Errorf("timestamping: hardware is not supported by the built-in slave yet; use linuxptp mode with ptp4l on %s", ifi.Name)
	case stampSoftware, "auto", "":
		try(stampSoftware, enableSoftwareStamps)
		if want == stampSoftware && got == "" {
			return "", errors.Join(errs...)
		}
		if got == "" {
			got = stampUser
		}
	case stampUser:
		got = stampUser
	}
	return got, nil
}

// unblock closes the receiving sockets, ending the readers; safe to call
// from any goroutine, and more than once.
func (t *transport) unblock() {
	for _, c := range []*net.UDPConn{t.event, t.general} {
		if c != nil {
			c.Close()
		}
	}
}

// close releases everything; only the goroutine that sends calls it, once
// it no longer sends.
func (t *transport) close() {
	t.unblock()
	if t.txfd > 0 {
		unix.Close(t.txfd)
		t.txfd = 0
	}
}

// openSender makes the Delay_Req socket: bound to the interface, an
// ephemeral port (answers go to port 320 whatever the source port), and
// no multicast delivered to it.
func openSender(ifi *net.Interface) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	err = errors.Join(
		unix.BindToDevice(fd, ifi.Name),
		unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)}),
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0),
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 1),
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0),
		unix.Bind(fd, &unix.SockaddrInet4{}),
	)
	if err != nil {
		unix.Close(fd)
		return 0, err
	}
	return fd, nil
}

// readEvent reads one datagram from the event port with its receive
// time stamp.
func (t *transport) readEvent(buf []byte) (packet, error) {
	var n, oobn int
	var from unix.Sockaddr
	var rerr error
	err := t.evRaw.Read(func(fd uintptr) bool {
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, t.oob, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return packet{}, err
	}
	if rerr != nil {
		return packet{}, rerr
	}
	p := packet{b: buf[:n], event: true}
	if sa, ok := from.(*unix.SockaddrInet4); ok {
		p.from = netip.AddrFrom4(sa.Addr)
	}
	if t.stamping != stampUser {
		if ts, ok := stampFrom(t.oob[:oobn]); ok {
			p.at = ts
		}
	}
	if p.at.IsZero() {
		p.at = time.Now()
	}
	return p, nil
}

// readGeneral reads one datagram from the general port: no time stamp is
// needed there.
func (t *transport) readGeneral(buf []byte) (packet, error) {
	n, from, err := t.general.ReadFromUDPAddrPort(buf)
	if err != nil {
		return packet{}, err
	}
	return packet{b: buf[:n], from: from.Addr().Unmap(), at: time.Now()}, nil
}

// send transmits a Delay_Req and returns its transmit time (kernel stamp,
// or the time just before sending with user stamps).
func (t *transport) send(b []byte) (time.Time, error) {
	t.drainStamps()
	to := &unix.SockaddrInet4{Port: int(t.delayDst.Port()), Addr: t.delayDst.Addr().As4()}
	before := time.Now()
	if err := unix.Sendto(t.txfd, b, 0, to); err != nil {
		return time.Time{}, err
	}
	if t.stamping == stampUser {
		return before, nil
	}
	// The stamp is queued on the error queue as the packet leaves the
	// stack; wait briefly for it.
	deadline := before.Add(20 * time.Millisecond)
	for {
		_, oobn, _, _, err := unix.Recvmsg(t.txfd, t.txbuf, t.toob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err == nil {
			if ts, ok := stampFrom(t.toob[:oobn]); ok {
				return ts, nil
			}
			continue
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return time.Time{}, fmt.Errorf("transmit time stamp: %w", err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			// A lost stamp costs this one exchange, not the session.
			return time.Time{}, errors.New("transmit time stamp: none within 20ms")
		}
		pfd := []unix.PollFd{{Fd: int32(t.txfd), Events: unix.POLLPRI}}
		_, _ = unix.Poll(pfd, int(max(left.Milliseconds(), 1)))
	}
}

// drainStamps discards transmit stamps left by an earlier send whose
// stamp came too late, so the next one read is this send's.
func (t *transport) drainStamps() {
	for range 16 {
		if _, _, _, _, err := unix.Recvmsg(t.txfd, t.txbuf, t.toob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT); err != nil {
			return
		}
	}
}

// sendGeneral sends a message that needs no time stamp (Signaling) from
// the general port.
func (t *transport) sendGeneral(b []byte, to netip.AddrPort) error {
	_, err := t.general.WriteToUDPAddrPort(b, to)
	return err
}
