package serialport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// uucpLockDir is where programs of the UUCP convention (minicom, cu)
// look for lock files: /var/lock in the FHS, a link to /run/lock on
// current systems.
const uucpLockDir = "/run/lock"

// lineLock holds a serial line for one Port: an exclusive flock on the
// tty, which the kernel drops when the process dies, so it is never stale
// and is the authority; and, where the lock directory is writable, a
// UUCP lock file naming this process, for the programs that look only
// there.
type lineLock struct {
	f    *os.File // holds the flock
	uucp string   // the lock file written; empty if none
}

// lockLine takes the line before anything configures it: a refused
// opener must not have changed the holder's baud rate or parity on the
// way. lockDir empty: no UUCP lock file.
func lockLine(device, lockDir string) (*lineLock, error) {
	f, err := os.OpenFile(device, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", device, err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", device, err)
	}
	var lockErr error
	if err := rc.Control(func(fd uintptr) { lockErr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB) }); err != nil {
		lockErr = err
	}
	if lockErr != nil {
		defer f.Close()
		if errors.Is(lockErr, unix.EWOULDBLOCK) {
			return nil, flockHolder(device, f)
		}
		return nil, fmt.Errorf("lock %s: %w", device, lockErr)
	}
	l := &lineLock{f: f}
	if lockDir != "" {
		if l.uucp, err = writeUUCPLock(device, lockDir); err != nil {
			f.Close()
			return nil, err
		}
	}
	return l, nil
}

// release removes the lock file if it still names this process, then
// drops the flock.
func (l *lineLock) release() {
	if l.uucp != "" {
		if pid, ok := readLockPID(l.uucp); ok && pid == os.Getpid() {
			os.Remove(l.uucp)
		}
	}
	l.f.Close()
}

// flockHolder finds who holds the flock on the tty f opened, in
// /proc/locks, which gives the holder's pid and the locked inode.
func flockHolder(device string, f *os.File) *InUseError {
	e := &InUseError{Device: device}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return e
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return e
	}
	e.PID = lockOwner(b, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	describe(e)
	return e
}

// lockOwner returns the pid holding a FLOCK on the inode, from the text
// of /proc/locks ("1: FLOCK  ADVISORY  WRITE 1234 00:18:7 0 EOF", the
// device's major and minor in hex); 0 if none is listed.
func lockOwner(locks []byte, major, minor uint32, ino uint64) int {
	want := fmt.Sprintf("%02x:%02x:%d", major, minor, ino)
	sc := bufio.NewScanner(bytes.NewReader(locks))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// A waiter's line has "->" after the number; it does not hold.
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

// describe fills in the holder's command line.
func describe(e *InUseError) {
	if e.PID <= 0 {
		return
	}
	e.Self = e.PID == os.Getpid()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", e.PID))
	if err != nil || len(b) == 0 {
		b, _ = os.ReadFile(fmt.Sprintf("/proc/%d/comm", e.PID))
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	e.Command = s
}

// lockFileName is the UUCP name for device: LCK.. and the device's name
// under /dev with '/' as '_' (LCK..ttyS1, LCK..ttyUSB0, LCK..pts_7), after
// following symbolic links, so that /dev/serial/by-id/... and the tty it
// points to share one lock.
func lockFileName(device, dir string) string {
	p, err := filepath.EvalSymlinks(device)
	if err != nil {
		p = device
	}
	name := filepath.Base(p)
	if rest, ok := strings.CutPrefix(filepath.Clean(p), "/dev/"); ok {
		name = strings.ReplaceAll(rest, "/", "_")
	}
	return filepath.Join(dir, "LCK.."+name)
}

// writeUUCPLock makes the line's lock file hold this process's pid in the
// HDB format (ten digits, right aligned, and a newline), refusing a live
// other holder and replacing a stale file. It is best effort beside the
// flock: a lock directory that is missing or not writable leaves no file
// and no error.
func writeUUCPLock(device, dir string) (string, error) {
	name := lockFileName(device, dir)
	tmp, err := os.CreateTemp(dir, "LTMP.")
	if err != nil {
		return "", nil
	}
	defer os.Remove(tmp.Name())
	_, err = fmt.Fprintf(tmp, "%10d\n", os.Getpid())
	if cerr := tmp.Close(); err != nil || cerr != nil || os.Chmod(tmp.Name(), 0o644) != nil {
		return "", nil
	}
	for range 2 {
		// link(2) is atomic: of two openers at once, one makes the file.
		err := os.Link(tmp.Name(), name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", nil
		}
		if pid, ok := readLockPID(name); ok && pid != os.Getpid() && alive(pid) {
			e := &InUseError{Device: device, PID: pid, LockFile: name}
			describe(e)
			return "", e
		}
		// Stale: its process is gone, or it is this one's and the flock
		// says no other Port here holds the line.
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
	}
	return "", nil
}

// readLockPID reads a UUCP lock file's pid (HDB: ASCII digits).
func readLockPID(name string) (int, bool) {
	b, err := os.ReadFile(name)
	if err != nil || len(b) > 64 {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0
}

func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
