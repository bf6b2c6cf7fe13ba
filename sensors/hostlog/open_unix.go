//go:build unix

package hostlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// openLog opens the file at path for reading. Unless follow, it walks from
// base down with openat and O_NOFOLLOW, one component at a time, so a link
// swapped in after the scan looked (in the file's name or a directory a
// wildcard matched) is refused, not followed: errSymlink. O_NONBLOCK keeps
// a FIFO swapped in likewise from blocking the open; the caller checks the
// descriptor is a regular file.
func openLog(path, base string, follow bool) (*os.File, error) {
	if follow {
		return os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	}
	rel, err := relUnder(path, base)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	dfd, err := openRetry(unix.AT_FDCWD, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: base, Err: err}
	}
	at := base
	parts := strings.Split(rel, string(filepath.Separator))
	for i, name := range parts {
		last := i == len(parts)-1
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if last {
			flags |= unix.O_NONBLOCK
		} else {
			flags |= unix.O_DIRECTORY
		}
		at = filepath.Join(at, name)
		fd, err := openRetry(dfd, name, flags)
		if err != nil && (errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)) && isLinkAt(dfd, name) {
			err = errSymlink
		}
		unix.Close(dfd)
		if errors.Is(err, errSymlink) {
			return nil, fmt.Errorf("%s: %w", at, errSymlink)
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: at, Err: err}
		}
		dfd = fd
	}
	return os.NewFile(uintptr(dfd), path), nil
}

func openRetry(dfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dfd, name, flags, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

func isLinkAt(dfd int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}
