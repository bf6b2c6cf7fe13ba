//go:build linux

package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"golang.org/x/sys/unix"

	"github.com/weirgw/weir/event"
)

const (
	// recvBufferBytes holds any audit message (the kernel's are under
	// 9 KiB; a longer one is cut into flagged pieces of max_line_bytes
	// anyway).
	recvBufferBytes = 64 << 10
	// socketBufferBytes is asked of the kernel for the socket: a burst
	// waits there while the reader is scheduled. Without CAP_NET_ADMIN
	// the kernel caps it at net.core.rmem_max.
	socketBufferBytes = 4 << 20
	// registerWait bounds the wait for the kernel's answer to "Weir is
	// the audit daemon".
	registerWait = 5 * time.Second
	// stopWait bounds reading what the kernel sent before it was
	// released.
	stopWait = 200 * time.Millisecond
	// auditNLGroupReadLog is the kernel's read-only multicast group,
	// AUDIT_NLGRP_READLOG.
	auditNLGroupReadLog = 1
	// auditStatusSize is sizeof(struct audit_status) as of Linux 5.x; the
	// kernel reads as much of it as it knows.
	auditStatusSize = 44
)

// errNotKernel marks a datagram not sent by the kernel.
var errNotKernel = errors.New("netlink message not from the kernel")

// nlSocket is an audit netlink socket the Go runtime polls, so a read
// waits without a thread and ends at a deadline or Close.
type nlSocket struct {
	f   *os.File
	rc  syscall.RawConn
	seq atomic.Uint32
	// draining makes recv return EAGAIN once nothing is left, rather
	// than wait for more.
	draining atomic.Bool
}

func openSocket(groups uint32) (*nlSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_AUDIT)
	if err != nil {
		return nil, fmt.Errorf("open the kernel's audit socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind the kernel's audit socket: %w", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBufferBytes) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBufferBytes)
	}
	f := os.NewFile(uintptr(fd), "audit netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &nlSocket{f: f, rc: rc}, nil
}

// recv reads one datagram into buf; n is its whole length, which may be
// more than len(buf) (the rest is cut off).
func (s *nlSocket) recv(buf []byte) (n int, err error) {
	var from unix.Sockaddr
	var rerr error
	err = s.rc.Read(func(fd uintptr) bool {
		n, from, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_TRUNC)
		return rerr != unix.EAGAIN || s.draining.Load()
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
		return 0, errNotKernel
	}
	return n, nil
}

// send sends one request to the kernel and returns its sequence number.
func (s *nlSocket) send(typ, flags uint16, payload []byte) (uint32, error) {
	seq := s.seq.Add(1)
	b := make([]byte, nlHeaderLen+len(payload))
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint16(b[6:8], flags)
	binary.NativeEndian.PutUint32(b[8:12], seq)
	copy(b[nlHeaderLen:], payload)
	var serr error
	err := s.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	return seq, cmpErr(err, serr)
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// setPID asks the kernel to send its records to this process (pid) or
// to nobody (0). Only the registered process may unregister.
func (s *nlSocket) setPID(pid uint32, ack bool) (uint32, error) {
	st := make([]byte, auditStatusSize)
	binary.NativeEndian.PutUint32(st[0:4], uint32(libaudit.AuditStatusPID))
	binary.NativeEndian.PutUint32(st[12:16], pid)
	flags := uint16(unix.NLM_F_REQUEST)
	if ack {
		flags |= unix.NLM_F_ACK
	}
	return s.send(libaudit.AuditSet, flags, st)
}

// kernel is a netlink session: the socket records come on, a control
// socket for status and settings (which never receives records, so
// go-libaudit's client, which skips what it did not ask for, loses
// nothing there), and the goroutine reading the first into the queue.
type kernel struct {
	mode   string
	bootID string
	ev     *nlSocket
	ctl    *libaudit.AuditClient
	q      *msgQueue
	log    *slog.Logger

	registered bool // unicast: the kernel sends to ev
	stopping   atomic.Bool
	overflows  atomic.Uint64
	readDone   chan struct{}
	err        error // set before q.ch is closed
	closeOnce  sync.Once
}

func (k *kernel) Mode() string      { return k.mode }
func (k *kernel) BootID() string    { return k.bootID }
func (k *kernel) Err() error        { return k.err }
func (k *kernel) Overflows() uint64 { return k.overflows.Load() }

func (k *kernel) Status() (kernelStatus, error) {
	st, err := k.ctl.GetStatus()
	if err != nil {
		return kernelStatus{}, fmt.Errorf("audit: netlink: read the kernel's audit status: %w", err)
	}
	return fromLibaudit(st), nil
}

func fromLibaudit(st *libaudit.AuditStatus) kernelStatus {
	return kernelStatus{
		Enabled: st.Enabled, Failure: st.Failure, PID: st.PID, RateLimit: st.RateLimit,
		BacklogLimit: st.BacklogLimit, Lost: st.Lost, Backlog: st.Backlog, BacklogWaitTime: st.BacklogWaitTime,
	}
}

// read puts every datagram the kernel sends in the queue until Stop or
// Close; it waits for room in the queue at most maxQueueWait, so the
// kernel never waits on Weir for long.
func (k *kernel) read() {
	defer close(k.readDone)
	defer close(k.q.ch)
	buf := make([]byte, recvBufferBytes)
	for {
		n, err := k.ev.recv(buf)
		switch {
		case err == nil:
			k.q.put(bytes.Clone(buf[:min(n, len(buf))]))
		case errors.Is(err, unix.EAGAIN):
			return // stopping, and nothing is left
		case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, os.ErrClosed):
			if !k.stopping.Load() {
				k.err = fmt.Errorf("audit: netlink: read: %w", err)
			}
			return
		case errors.Is(err, unix.ENOBUFS):
			k.overflows.Add(1)
		case errors.Is(err, errNotKernel), errors.Is(err, unix.EINTR):
		default:
			k.err = fmt.Errorf("audit: netlink: read: %w", err)
			return
		}
	}
}

func (k *kernel) Stop() {
	k.release()
	k.stopping.Store(true)
	k.ev.draining.Store(true)
	// Wakes the reader if it waits; it reads on until the socket is empty.
	_ = k.ev.f.SetReadDeadline(time.Now().Add(stopWait))
	<-k.readDone
}

// release unregisters Weir as the kernel's audit daemon, at most once.
func (k *kernel) release() {
	if !k.registered {
		return
	}
	k.registered = false
	if _, err := k.ev.setPID(0, true); err != nil {
		k.log.Warn("audit: netlink: could not release the kernel's audit socket; it finds out when it next sends", "err", err)
	}
}

func (k *kernel) Close() error {
	var err error
	k.closeOnce.Do(func() {
		k.release()
		k.stopping.Store(true)
		err = errors.Join(k.ev.f.Close(), k.ctl.Close())
		<-k.readDone
	})
	return err
}

// processAlive says whether pid names a running process.
func processAlive(pid uint32) bool {
	err := unix.Kill(int(pid), 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// readBootID names the running kernel's boot.
func readBootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// openKernel starts a session in the configured mode (auto resolved
// now), registers Weir as the audit daemon and sets the kernel up in
// unicast, and starts reading. The warnings are records telling of
// settings the kernel did not take.
func openKernel(ctx context.Context, rd *Reader, q *msgQueue) (kernelStream, []event.Event, error) {
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: netlink: %w", err)
	}
	var st *kernelStatus
	lst, stErr := ctl.GetStatus()
	if stErr == nil {
		s := fromLibaudit(lst)
		st = &s
	}
	mode, note, err := resolveMode(rd.cfg.Mode, st, stErr, uint32(os.Getpid()), processAlive)
	if err != nil {
		ctl.Close()
		return nil, nil, err
	}
	k := &kernel{mode: mode, bootID: readBootID(), ctl: ctl, q: q, log: rd.log, readDone: make(chan struct{})}
	var warnings []event.Event
	warn := func(msg string) {
		rd.log.Warn(msg)
		warnings = append(warnings, warning(rd.cfg.Name, mode, "audit: "+msg))
	}
	if note != "" {
		rd.log.Info("audit: netlink mode auto", "mode", mode, "why", note)
	}
	group := uint32(0)
	if mode == ModeMulticast {
		group = auditNLGroupReadLog
	}
	k.ev, err = openSocket(group)
	if err != nil {
		ctl.Close()
		if mode == ModeMulticast && errors.Is(err, unix.EPERM) {
			err = fmt.Errorf("%w (the multicast group needs CAP_AUDIT_READ)", err)
		}
		return nil, nil, fmt.Errorf("audit: netlink %s: %w", mode, err)
	}
	if mode == ModeMulticast {
		if len(rd.cfg.Rules) > 0 || rd.cfg.BacklogLimit != nil || rd.cfg.RateLimit != nil || rd.cfg.BacklogWaitTime != nil {
			warn(fmt.Sprintf("rules and backlog settings not applied: %s; reading the multicast group beside it", note))
		}
		go k.read()
		return k, warnings, nil
	}
	if err := k.register(ctx); err != nil {
		k.ev.f.Close()
		ctl.Close()
		return nil, nil, err
	}
	// Read from now on: setting the kernel up takes a moment, and records
	// come meanwhile.
	go k.read()
	loaded := k.configure(rd, *st, warn)
	rd.update(func(s *Status) { s.Netlink.RulesLoaded = loaded })
	return k, warnings, nil
}

// register makes Weir the kernel's audit daemon, queueing the records
// that come before the kernel's answer.
func (k *kernel) register(ctx context.Context) error {
	seq, err := k.ev.setPID(uint32(os.Getpid()), true)
	if err != nil {
		return fmt.Errorf("audit: netlink unicast: become the audit daemon: %w", err)
	}
	deadline := time.Now().Add(registerWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = k.ev.f.SetReadDeadline(deadline)
	defer k.ev.f.SetReadDeadline(time.Time{})
	buf := make([]byte, recvBufferBytes)
	for {
		n, err := k.ev.recv(buf)
		switch {
		case errors.Is(err, errNotKernel), errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("audit: netlink unicast: become the audit daemon: no answer from the kernel: %w", err)
		}
		m, err := decodeNetlink(buf[:min(n, len(buf))])
		if err == nil && m.Type == nlmsgError && m.Seq == seq {
			if err := m.errno(); err != nil {
				if errors.Is(err, unix.EEXIST) {
					err = fmt.Errorf("%w: another audit daemon holds the kernel's audit socket (use mode multicast or auto beside it)", err)
				}
				return fmt.Errorf("audit: netlink unicast: become the audit daemon: %w", err)
			}
			k.registered = true
			return nil
		}
		k.q.put(bytes.Clone(buf[:min(n, len(buf))]))
	}
}

// configure applies the backlog settings and the rules and enables
// auditing; what the kernel refuses is a warning, not the end of the
// session: the records still come. It returns the rules loaded.
func (k *kernel) configure(rd *Reader, st kernelStatus, warn func(string)) int {
	if st.Enabled == 2 {
		warn("the kernel's audit configuration is locked until reboot (enabled 2, auditctl -e 2): rules and backlog settings not applied")
		return 0
	}
	ks := rd.cfg.kernelSettings()
	if err := k.ctl.SetBacklogLimit(ks.backlogLimit, libaudit.WaitForReply); err != nil {
		warn(fmt.Sprintf("backlog_limit %d not applied: %v", ks.backlogLimit, err))
	}
	if err := k.ctl.SetRateLimit(ks.rateLimit, libaudit.WaitForReply); err != nil {
		warn(fmt.Sprintf("rate_limit %d not applied: %v", ks.rateLimit, err))
	}
	if err := k.ctl.SetBacklogWaitTime(int32(ks.backlogWaitTime), libaudit.WaitForReply); err != nil {
		warn(fmt.Sprintf("backlog_wait_time %d not applied: %v (the kernel takes at most ten times its default of 60 s, in jiffies)", ks.backlogWaitTime, err))
	}
	// Enabled before the rules go in, so the kernel records each rule
	// loaded (CONFIG_CHANGE) in the stream Weir reads.
	if st.Enabled != 1 {
		if err := k.ctl.SetEnabled(true, libaudit.WaitForReply); err != nil {
			warn(fmt.Sprintf("auditing could not be enabled: %v", err))
		}
	}
	loaded := 0
	if len(rd.rules) > 0 {
		if _, err := k.ctl.DeleteRules(); err != nil {
			warn(fmt.Sprintf("the kernel's rules could not be deleted, the configured ones are added beside them: %v", err))
		}
		for i, wf := range rd.rules {
			if err := k.ctl.AddRule(wf); err != nil {
				warn(fmt.Sprintf("rules[%d] %q not loaded: the kernel refused it: %v", i, rd.cfg.Rules[i], err))
				continue
			}
			loaded++
		}
	}
	return loaded
}
