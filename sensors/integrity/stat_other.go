//go:build !unix

package integrity

import (
	"io/fs"
	"os"
)

func openFlags(bool) int { return os.O_RDONLY }

// fillOwner leaves owner and inode zero: this platform has no Stat_t.
func fillOwner(*entry, fs.FileInfo) {}
