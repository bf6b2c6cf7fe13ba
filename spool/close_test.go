package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// closeHelperEnv names the spool directory TestCloseHelperProcess runs in.
const closeHelperEnv = "WEIR_SPOOL_CLOSE_HELPER"

// TestCloseHelperProcess is the daemon of TestCloseOnReadOnlyFileSystem,
// run as a child: it opens the spool, commits 100 records, says so, and
// closes it when told, printing how that went. In a process of its own,
// Badger's goroutines, left retrying, end with it, as they do in the field.
func TestCloseHelperProcess(t *testing.T) {
	dir := os.Getenv(closeHelperEnv)
	if dir == "" {
		t.Skip("run by TestCloseOnReadOnlyFileSystem")
	}
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), closeWait: 3 * time.Second})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	if _, err := s.Append(context.Background(), batch(ClassNormal, 100, 200), nil); err != nil {
		fmt.Println("append:", err)
		os.Exit(1)
	}
	fmt.Println("appended")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	start := time.Now()
	err = s.Close()
	fmt.Printf("closed after %s: %v\n", time.Since(start).Round(time.Second), err)
	os.Exit(0)
}

// TestCloseOnReadOnlyFileSystem: the spool's file system goes read-only
// under the daemon (a bind mount remounted read-only: what ext4 does after
// errors), and the daemon is asked to stop. Close must come back within
// its bound, saying why, instead of waiting on Badger's flush for ever;
// at the next start every committed record is there. Without the bound
// the child never answers.
func TestCloseOnReadOnlyFileSystem(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("bind mounts: Linux only")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount the spool read-only")
	}
	dir := filepath.Join(t.TempDir(), "spool")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCloseHelperProcess$")
	cmd.Env = append(os.Environ(), closeHelperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	if err := cmd.Start(); errors.Is(err, syscall.ENOEXEC) {
		t.Skip("the test binary cannot run itself here (an emulated architecture without binfmt_misc)")
	} else {
		require.NoError(t, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "appended\n", line)

	require.NoError(t, unix.Mount(dir, dir, "", unix.MS_BIND, ""))
	mounted := true
	t.Cleanup(func() {
		if mounted {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	require.NoError(t, unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""))

	_, err = stdin.Write([]byte("close\n"))
	require.NoError(t, err)
	answered := make(chan string, 1)
	go func() { l, _ := out.ReadString('\n'); answered <- l }()
	select {
	case l := <-answered:
		t.Log(strings.TrimSpace(l))
		require.Contains(t, l, "could not flush within 3s")
	case <-time.After(2 * time.Minute):
		t.Fatal("Close did not come back with the spool's file system read-only")
	}
	require.NoError(t, cmd.Wait())
	require.NoError(t, unix.Unmount(dir, unix.MNT_DETACH))
	mounted = false

	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer s.Close()
	recs, err := s.Read(0, 1000, 0)
	require.NoError(t, err)
	require.Len(t, recs, 100, "every committed record at the next start")
}
