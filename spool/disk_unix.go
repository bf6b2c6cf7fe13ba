//go:build unix

package spool

import (
	"io/fs"
	"syscall"
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
