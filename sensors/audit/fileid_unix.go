//go:build unix

package audit

import (
	"os"
	"syscall"
)

func idOf(fi os.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino), known: true} //nolint:unconvert // types differ by platform
}
