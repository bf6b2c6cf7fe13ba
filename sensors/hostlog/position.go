package hostlog

import (
	"encoding/json"
	"fmt"
)

// checkpointPrefix starts the spool checkpoint key of every tailed file;
// the rest is the file's absolute path.
const checkpointPrefix = "file:"

// position is a file's committed read position, stored as small JSON in
// the spool's checkpoint so later versions can add members. Positions
// written before the fingerprint existed ({dev, ino, off, cont}) decode
// with FpLen 0, which matches by device and inode alone; the next commit
// adds the fingerprint, so an upgraded gateway neither re-reads nor skips.
type position struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
	Off int64  `json:"off"`
	// Cont says the bytes at Off continue an overlong line whose earlier
	// pieces were already emitted, so the next piece is flagged truncated.
	Cont bool `json:"cont,omitempty"`
	// Part is the index of the piece at Off when Cont (older versions
	// did not store it: 0 then, read as 1).
	Part int `json:"part,omitempty"`
	// Split says the multiline event at Off continues one cut by
	// multiline.max_lines or max_bytes.
	Split bool `json:"split,omitempty"`
	// FpLen and Fp are the fingerprint: the file's first FpLen bytes
	// hash to Fp (crc64).
	FpLen int    `json:"fpn,omitempty"`
	Fp    uint64 `json:"fp,omitempty"`
}

func (p position) id() fileID { return fileID{dev: p.Dev, ino: p.Ino, known: true} }

func (p position) fingerprint() fingerprint { return fingerprint{n: p.FpLen, sum: p.Fp} }

// part is the index of the piece at Off, counting from 0.
func (p position) part() int {
	switch {
	case !p.Cont:
		return 0
	case p.Part <= 0:
		return 1
	}
	return p.Part
}

func (p position) marshal() []byte {
	b, _ := json.Marshal(p) // cannot fail: numbers and bools
	return b
}

func parsePosition(b []byte) (position, error) {
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return position{}, fmt.Errorf("checkpoint %q is not a file position: %w", b, err)
	}
	switch {
	case p.Off < 0:
		return position{}, fmt.Errorf("checkpoint %q has a negative offset", b)
	case p.FpLen < 0 || p.FpLen > fingerprintBytes:
		return position{}, fmt.Errorf("checkpoint %q has a fingerprint length outside 0..%d", b, fingerprintBytes)
	case p.Part < 0:
		return position{}, fmt.Errorf("checkpoint %q has a negative part", b)
	}
	return p, nil
}
