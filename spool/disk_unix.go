//go:build unix

package spool

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// allocated is the space a file takes on disk. Badger maps its write-ahead
// and value-log files at twice their nominal size as sparse files, so the
// apparent size would overstate the spool many times over.
func allocated(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return fi.Size()
}

// statfsSpace asks the kernel: the blocks an unprivileged process may
// still take, so the root-only reserve of ext4 is never counted on.
type statfsSpace struct{}

func (statfsSpace) Free(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
