//go:build !unix

package hostlog

import "os"

// openLog opens the file at path. Without openat the scan's Lstat is the
// only check against links.
func openLog(path, base string, follow bool) (*os.File, error) {
	if !follow {
		if _, err := lstatUnder(path, base); err != nil {
			return nil, err
		}
	}
	return os.Open(path)
}
