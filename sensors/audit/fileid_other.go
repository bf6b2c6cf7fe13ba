//go:build !unix

package audit

import "os"

// idOf knows no device or inode here: files are told apart by their
// first bytes only.
func idOf(os.FileInfo) fileID { return fileID{} }
