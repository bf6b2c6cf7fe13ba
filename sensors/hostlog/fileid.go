package hostlog

// fileID identifies a file independently of its name: device and inode.
// On systems without them known is false and files are told apart by path
// only, so rotation by rename goes unnoticed.
type fileID struct {
	dev, ino uint64
	known    bool
}

// same reports whether a and b may be the same file.
func (a fileID) same(b fileID) bool {
	if !a.known || !b.known {
		return true
	}
	return a.dev == b.dev && a.ino == b.ino
}
