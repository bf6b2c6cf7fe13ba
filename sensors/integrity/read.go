package integrity

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// reader looks at paths. It keeps one hash and one buffer, so hashing a
// tree allocates little per file; it is not safe for concurrent use.
type reader struct {
	maxBytes int64
	follow   bool
	h        hash.Hash
	buf      []byte
	skipped  uint64 // files not hashed for their size, since last reset
}

func newReader(maxBytes int64, follow bool) *reader {
	return &reader{maxBytes: maxBytes, follow: follow, h: sha256.New(), buf: make([]byte, 64<<10)}
}

// gone says whether err means there is nothing at the path (any more).
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// read returns what is at path now: TypeAbsent if nothing is. err means
// the path could not be looked at (its directory is unreadable, say) and
// the entry must not be compared, else it would pass for a deletion.
// hashErr means a regular file could not be read: the entry is flagged
// Unreadable and its other attributes stand.
func (r *reader) read(path string) (e entry, hashErr, err error) {
	fi, err := os.Lstat(path)
	if gone(err) {
		return entry{}, nil, nil
	}
	if err != nil {
		return entry{}, nil, err
	}
	if fi.Mode().Type() == fs.ModeSymlink {
		target, err := os.Readlink(path)
		if gone(err) {
			return entry{}, nil, nil
		}
		if err != nil {
			return entry{}, nil, err
		}
		e.Target = target
		if r.follow {
			// A dangling link is recorded as the link itself.
			if tfi, err := os.Stat(path); err == nil {
				fi = tfi
			}
		}
	}
	fill(&e, fi)
	if e.Type == TypeFile {
		if err := r.hash(path, &e); gone(err) {
			return entry{}, nil, nil
		} else if err != nil {
			e.Unreadable = true
			return e, err, nil
		}
	}
	return e, nil, nil
}

// fill copies fi's attributes into e, Target apart.
func fill(e *entry, fi fs.FileInfo) {
	switch m := fi.Mode(); {
	case m.IsRegular():
		e.Type = TypeFile
	case m.IsDir():
		e.Type = TypeDir
	case m.Type() == fs.ModeSymlink:
		e.Type = TypeSymlink
	default:
		e.Type = TypeOther
	}
	e.Mode = fi.Mode() & modeBits
	e.Size = fi.Size()
	e.Mtime = fi.ModTime().UnixNano()
	fillOwner(e, fi)
}

// hash hashes the regular file at path into e, and takes e's attributes
// from the open file, so they describe what was hashed even if the path
// was replaced in between.
func (r *reader) hash(path string, e *entry) error {
	f, err := os.OpenFile(path, openFlags(r.follow), 0)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	fill(e, fi)
	if e.Type != TypeFile {
		return nil
	}
	if e.Size > r.maxBytes {
		e.HashSkipped = true
		r.skipped++
		return nil
	}
	r.h.Reset()
	// LimitReader hides File.WriteTo, so CopyBuffer uses r.buf; reading
	// one byte past the limit tells a file that grew beyond it.
	n, err := io.CopyBuffer(r.h, io.LimitReader(f, r.maxBytes+1), r.buf)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if n > r.maxBytes {
		e.HashSkipped = true
		r.skipped++
		return nil
	}
	r.h.Sum(e.SHA256[:0])
	e.Hashed = true
	return nil
}
