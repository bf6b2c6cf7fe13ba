package serialport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/sensors/serialport/serialtest"
)

func ptyConfig(t *testing.T) Config {
	a, _ := serialtest.PTYPair(t)
	cfg := DefaultConfig()
	cfg.Device, cfg.Baud = a, 115200
	return cfg
}

// One line, one master: a second Port on a line this process holds is
// refused naming this process, and the line is free again once the first
// closes, its lock file gone.
func TestLockedWithinProcess(t *testing.T) {
	cfg := ptyConfig(t)
	dir := t.TempDir()
	p, err := open(cfg, nil, dir)
	require.NoError(t, err)
	lockFile := lockFileName(cfg.Device, dir)
	b, err := os.ReadFile(lockFile)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%10d\n", os.Getpid()), string(b), "HDB format: ten digits and a newline")
	require.True(t, strings.HasPrefix(filepath.Base(lockFile), "LCK..pts_"), lockFile)

	_, err = open(cfg, nil, dir)
	var inUse *InUseError
	require.ErrorAs(t, err, &inUse)
	require.Equal(t, os.Getpid(), inUse.PID)
	require.True(t, inUse.Self)
	require.Empty(t, inUse.LockFile, "the flock named the holder")
	require.ErrorContains(t, err, fmt.Sprintf("serialport: %s is in use by pid %d (", cfg.Device, os.Getpid()))
	require.ErrorContains(t, err, "this process: another bus or sensor on the same line")

	require.NoError(t, p.Close())
	require.NoFileExists(t, lockFile)
	p, err = open(cfg, nil, dir)
	require.NoError(t, err)
	require.NoError(t, p.Close())
}

// A line another process has flocked (flock(1), as picocom and weir
// itself do) is refused, naming that process's pid and command line,
// before anything reconfigures the line.
func TestLockedByAnotherProcess(t *testing.T) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("flock(1) not installed (util-linux)")
	}
	cfg := ptyConfig(t)
	// --close: the lock stays with flock itself, not with sleep, so that
	// ending flock's process group frees the line.
	holder := exec.Command(flock, "--exclusive", "--close", cfg.Device, "sleep", "60")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, holder.Start())
	stop := func() {
		_ = syscall.Kill(-holder.Process.Pid, syscall.SIGKILL)
		_ = holder.Wait()
	}
	t.Cleanup(stop)

	var inUse *InUseError
	require.Eventually(t, func() bool {
		p, err := open(cfg, nil, "")
		if err == nil {
			p.Close()
			return false
		}
		return errors.As(err, &inUse)
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, holder.Process.Pid, inUse.PID)
	require.False(t, inUse.Self)
	require.Equal(t, fmt.Sprintf("%s --exclusive --close %s sleep 60", flock, cfg.Device), inUse.Command)
	require.Equal(t, fmt.Sprintf("%s is in use by pid %d (%s)", cfg.Device, holder.Process.Pid, inUse.Command), inUse.Error())

	stop()
	// flock's child may still hold the lock's file description for a
	// moment (killed between fork and its --close), and nothing here
	// reaps it: the line is free once the whole group is gone.
	require.Eventually(t, func() bool {
		p, err := open(cfg, nil, "")
		if err != nil {
			return false
		}
		return p.Close() == nil
	}, 5*time.Second, 10*time.Millisecond, "free once the holder is gone")
}

// A UUCP lock file of a live process (minicom, cu: no flock) is honoured;
// one whose process is gone, or that is not a pid at all, is replaced.
func TestUUCPLockFile(t *testing.T) {
	cfg := ptyConfig(t)
	dir := t.TempDir()
	lockFile := lockFileName(cfg.Device, dir)

	ctx, cancel := context.WithCancel(context.Background())
	live := exec.CommandContext(ctx, "sleep", "60")
	require.NoError(t, live.Start())
	t.Cleanup(func() { cancel(); _ = live.Wait() })
	require.NoError(t, os.WriteFile(lockFile, fmt.Appendf(nil, "%10d\n", live.Process.Pid), 0o644))
	_, err := open(cfg, nil, dir)
	var inUse *InUseError
	require.ErrorAs(t, err, &inUse)
	require.Equal(t, live.Process.Pid, inUse.PID)
	require.Equal(t, lockFile, inUse.LockFile)
	require.ErrorContains(t, err, fmt.Sprintf("is in use by pid %d (sleep 60) according to %s", live.Process.Pid, lockFile))

	cancel()
	_ = live.Wait()
	for _, stale := range []string{fmt.Sprintf("%10d\n", live.Process.Pid), "garbage\n", ""} {
		require.NoError(t, os.WriteFile(lockFile, []byte(stale), 0o644))
		p, err := open(cfg, nil, dir)
		require.NoError(t, err, "stale lock file %q", stale)
		pid, ok := readLockPID(lockFile)
		require.True(t, ok)
		require.Equal(t, os.Getpid(), pid)
		require.NoError(t, p.Close())
		require.NoFileExists(t, lockFile)
	}

	// A lock directory that cannot be written leaves the flock alone in
	// charge.
	p, err := open(cfg, nil, filepath.Join(dir, "missing"))
	require.NoError(t, err)
	require.NoError(t, p.Close())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "no temporary file left behind")
}

func TestLockOwner(t *testing.T) {
	locks := []byte(`1: POSIX  ADVISORY  WRITE 900 00:19:7 0 EOF
2: FLOCK  ADVISORY  WRITE 1234 00:19:8 0 EOF
2: -> FLOCK  ADVISORY  WRITE 1300 00:19:8 0 EOF
3: FLOCK  ADVISORY  WRITE 4321 fe:00:9977870 0 EOF
`)
	for _, c := range []struct {
		major, minor uint32
		ino          uint64
		want         int
	}{
		{0, 0x19, 8, 1234},       // the holder, not the waiter
		{0, 0x19, 7, 0},          // a POSIX lock is not a flock
		{0xfe, 0, 9977870, 4321}, // major in hex
		{0xfe, 0, 997787, 0},     // inode prefix
		{0x19, 0, 8, 0},          // major and minor swapped
		{0, 0x19, 1234, 0},       // a pid is not an inode
	} {
		require.Equal(t, c.want, lockOwner(locks, c.major, c.minor, c.ino), "%x:%x:%d", c.major, c.minor, c.ino)
	}
}

func TestLockFileName(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "by-id")
	require.NoError(t, os.Symlink("/dev/null", link))
	for dev, want := range map[string]string{
		"/dev/ttyS1":   "LCK..ttyS1",
		"/dev/ttyUSB0": "LCK..ttyUSB0",
		"/dev/pts/7":   "LCK..pts_7",
		link:           "LCK..null", // the link's target names the lock
		"/srv/tty-gw":  "LCK..tty-gw",
	} {
		require.Equal(t, filepath.Join("/run/lock", want), lockFileName(dev, "/run/lock"), dev)
	}
}
