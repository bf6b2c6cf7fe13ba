package hostlog

import (
	"encoding/json"
	"fmt"
)

// checkpointPrefix starts the spool checkpoint key of every tailed file;
// the rest is the file's absolute path.
const checkpointPrefix = "file:"

// position is a file's committed read position, stored as small JSON in
// the spool's checkpoint so later versions can add members.
type position struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
	Off int64  `json:"off"`
	// Cont says the bytes at Off continue an overlong line whose earlier
	// pieces were already emitted, so the next piece is flagged truncated.
	Cont bool `json:"cont,omitempty"`
}

func (p position) id() fileID { return fileID{dev: p.Dev, ino: p.Ino, known: true} }

func (p position) marshal() []byte {
	b, _ := json.Marshal(p) // cannot fail: numbers and a bool
	return b
}

func parsePosition(b []byte) (position, error) {
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return position{}, fmt.Errorf("checkpoint %q is not a file position: %w", b, err)
	}
	if p.Off < 0 {
		return position{}, fmt.Errorf("checkpoint %q has a negative offset", b)
	}
	return p, nil
}
