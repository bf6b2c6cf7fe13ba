//go:build unix

package gateway

import "golang.org/x/sys/unix"

// accessible says whether this process may read (and write, when write
// is true) path, as the kernel decides: modes, groups, ACLs, read-only
// mounts.
func accessible(path string, write bool) error {
	mode := uint32(unix.R_OK)
	if write {
		mode |= unix.W_OK
	}
	return unix.Access(path, mode)
}

// freeSpace is what an unprivileged writer may still use under path.
func freeSpace(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
