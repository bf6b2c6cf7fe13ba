package hostlog

import (
	"errors"
	"fmt"
	"hash/crc64"
	"io"
)

// fingerprintBytes is how much of a file's start its fingerprint covers.
// Device and inode tell files apart while they exist; the hash of the first
// bytes tells a file from a later one that got the same inode (deleted and
// recreated) or the same inode rewritten from the start (copytruncate).
const fingerprintBytes = 1024

// fingerprint says that the first n bytes of a file hash to sum. A file
// shorter than fingerprintBytes gets a fingerprint of what it holds, taken
// again as it grows; a longer fingerprint of the same file still matches
// the shorter one's bytes, so a position committed while the file was short
// is recognised after it grew. n == 0 (an empty file, or a position written
// before fingerprints existed) matches every file.
type fingerprint struct {
	n   int
	sum uint64
}

func crcTable() *crc64.Table { return crc64.MakeTable(crc64.ECMA) } // cached by hash/crc64

// takeFingerprint hashes the first min(size, fingerprintBytes) bytes of r.
func takeFingerprint(r io.ReaderAt, size int64) (fingerprint, error) {
	n := int(min(size, fingerprintBytes))
	if n <= 0 {
		return fingerprint{}, nil
	}
	var buf [fingerprintBytes]byte
	got, err := r.ReadAt(buf[:n], 0)
	if got < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // shrunk since its size was taken
		}
		return fingerprint{}, fmt.Errorf("read the first %d bytes: %w", n, err)
	}
	return fingerprint{n: n, sum: crc64.Checksum(buf[:n], crcTable())}, nil
}

// matches reports whether a file of the given size read by r starts with
// the bytes fp was taken of.
func (fp fingerprint) matches(r io.ReaderAt, size int64) (bool, error) {
	if fp.n == 0 {
		return true, nil
	}
	if size < int64(fp.n) {
		return false, nil
	}
	cur, err := takeFingerprint(r, int64(fp.n))
	if err != nil {
		return false, err
	}
	return cur.sum == fp.sum, nil
}

// complete says fp covers all the bytes a fingerprint ever covers.
func (fp fingerprint) complete() bool { return fp.n == fingerprintBytes }
