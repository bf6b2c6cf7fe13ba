//go:build unix

package integrity

import (
	"io/fs"
	"os"
	"syscall"
)

// openFlags open a file for hashing: never through a symlink swapped in
// since it was looked at (unless symlinks are followed), and without
// blocking on a FIFO swapped in likewise.
func openFlags(follow bool) int {
	f := os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_CLOEXEC
	if !follow {
		f |= syscall.O_NOFOLLOW
	}
	return f
}

// fillOwner copies owner, inode and device from fi's system data.
func fillOwner(e *entry, fi fs.FileInfo) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = st.Uid, st.Gid
		e.Inode, e.dev = uint64(st.Ino), uint64(st.Dev) //nolint:unconvert // the types differ by platform
	}
}
