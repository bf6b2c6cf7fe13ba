//go:build !unix

package spool

import (
	"errors"
	"io/fs"
)

// allocated is the space a file takes on disk; without block counts, its
// apparent size.
func allocated(fi fs.FileInfo) int64 { return fi.Size() }

// statfsSpace cannot tell the free space here: the disk guard stays off.
type statfsSpace struct{}

func (statfsSpace) Free(string) (int64, error) { return 0, errors.ErrUnsupported }
