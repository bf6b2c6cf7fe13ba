package audit

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// checkpointPrefix starts the spool checkpoint key of the audit input;
// the rest is the log's absolute path.
const checkpointPrefix = "audit:"

// headBytes is how much of a file's start identifies it beside device and
// inode: a new file given a freed inode does not begin like the old one
// (its first line has another timestamp).
const headBytes = 256

// fileID identifies a log file independently of its name.
type fileID struct {
	dev, ino uint64
	known    bool   // dev and ino are set (unix)
	headLen  int    // bytes of the file's start hashed, up to headBytes
	headSum  uint64 // FNV-1a of them
}

// head hashes the first n bytes of f (fewer if it is shorter).
func head(f io.ReaderAt, n int) (int, uint64, error) {
	b := make([]byte, n)
	got, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return 0, 0, err
	}
	h := fnv.New64a()
	h.Write(b[:got])
	return got, h.Sum64(), nil
}

// identify makes the fileID of an open file.
func identify(f *os.File) (fileID, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, 0, err
	}
	id := idOf(fi)
	if id.headLen, id.headSum, err = head(f, headBytes); err != nil {
		return fileID{}, 0, err
	}
	return id, fi.Size(), nil
}

// matches says whether the file f (with info fi) is the one id names: the
// same device and inode where known, and the same first headLen bytes.
func (id fileID) matches(f io.ReaderAt, fi os.FileInfo) bool {
	if cur := idOf(fi); cur.known && id.known && (cur.dev != id.dev || cur.ino != id.ino) {
		return false
	}
	if fi.Size() < int64(id.headLen) {
		return false
	}
	n, sum, err := head(f, id.headLen)
	return err == nil && n == id.headLen && sum == id.headSum
}

// position is the committed read position, stored as small JSON in the
// spool's checkpoint so later versions can add members.
type position struct {
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	HeadLen int    `json:"head_len"`
	HeadSum uint64 `json:"head_fnv"`
	// Off is where reading resumes: the start of the oldest event not yet
	// emitted, or the end of the last line taken.
	Off int64 `json:"off"`
	// Cont says the bytes at Off continue an overlong line whose earlier
	// pieces were emitted.
	Cont bool `json:"cont,omitempty"`
	// Skip are the lines after Off (their offsets less Off) that belong
	// to events already emitted: records of another event came between an
	// event's own, and that event was complete first.
	Skip []int64 `json:"skip,omitempty"`
}

func (p position) id() fileID {
	return fileID{dev: p.Dev, ino: p.Ino, known: p.Dev != 0 || p.Ino != 0, headLen: p.HeadLen, headSum: p.HeadSum}
}

func (p position) marshal() []byte {
	b, _ := json.Marshal(p) // cannot fail: numbers and a bool
	return b
}

func parsePosition(b []byte) (position, error) {
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return position{}, fmt.Errorf("checkpoint %q is not an audit log position: %w", b, err)
	}
	if p.Off < 0 || p.HeadLen < 0 || p.HeadLen > headBytes {
		return position{}, fmt.Errorf("checkpoint %q is out of range", b)
	}
	for _, s := range p.Skip {
		if s <= 0 {
			return position{}, fmt.Errorf("checkpoint %q skips a line at or before its offset", b)
		}
	}
	return p, nil
}
