package spool

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate gives f n bytes of real blocks, not a sparse hole: the
// ballast must hold space that can be handed back. File systems without
// fallocate get zeros written.
func preallocate(f *os.File, n int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return writeZeros(f, n)
	}
	return err
}
