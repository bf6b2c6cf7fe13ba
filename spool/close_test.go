package spool

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestCloseOnReadOnlyFileSystem: the spool's file system goes read-only
// under it (a bind mount remounted read-only: what ext4 does after
// errors). Close must come back within its bound, saying why, instead of
// waiting on Badger's flush for ever; once the file system is writable
// again every committed record is there. Without the bound Close hangs.
func TestCloseOnReadOnlyFileSystem(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("bind mounts: Linux only")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount the spool read-only")
	}
	dir := filepath.Join(t.TempDir(), "spool")
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), closeWait: 3 * time.Second})
	require.NoError(t, err)
	_, err = s.Append(context.Background(), batch(ClassNormal, 100, 200), nil)
	require.NoError(t, err)

	require.NoError(t, unix.Mount(dir, dir, "", unix.MS_BIND, ""))
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	require.NoError(t, unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""))

	start := time.Now()
	err = s.Close()
	require.ErrorContains(t, err, "could not flush within 3s")
	require.Less(t, time.Since(start), time.Minute)

	require.NoError(t, unix.Unmount(dir, unix.MNT_DETACH))
	// The first instance's Badger still holds its directory lock in this
	// process; a copy of the directory stands for the next boot.
	again := filepath.Join(t.TempDir(), "again")
	require.NoError(t, os.CopyFS(again, os.DirFS(dir)))
	require.NoError(t, os.Remove(filepath.Join(again, "LOCK")))
	s2, err := Open(Options{Dir: again, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer s2.Close()
	recs, err := s2.Read(0, 1000, 0)
	require.NoError(t, err)
	require.Len(t, recs, 100, "every committed record after the next start")
}
