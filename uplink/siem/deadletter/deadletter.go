package deadletter

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
)

// ErrFull is returned once the file has reached its bound: the output
// stops (and retries) rather than drop what it cannot set aside.
var ErrFull = errors.New("dead-letter file full")

// File is an append-only dead-letter file.
type File struct {
	path   string
	max    int64
	mu     sync.Mutex
	f      *os.File
	size   int64
	writes uint64
}

// Open opens (creating, mode 0600) the file at path, bounded to maxBytes
// (0: no bound).
func Open(path string, maxBytes int64) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("deadletter: %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("deadletter: open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("deadletter: %s: %w", path, err)
	}
	return &File{path: path, max: maxBytes, f: f, size: fi.Size()}, nil
}

type line struct {
	Time    string       `json:"time"`
	Output  string       `json:"output"`
	ID      string       `json:"id"`
	Status  int          `json:"status,omitempty"`
	Reason  string       `json:"reason"`
	Record  *event.Event `json:"record"`
	Payload string       `json:"payload,omitempty"`
}

// Write sets one record aside with why the target refused it and the
// payload it was sent as, and returns once it is on disk.
func (d *File) Write(output, id string, status int, reason string, e *event.Event, payload []byte) error {
	b, err := json.Marshal(line{Time: time.Now().UTC().Format(time.RFC3339Nano), Output: output, ID: id, Status: status,
		Reason: reason, Record: e, Payload: string(payload)})
	if err != nil {
		return fmt.Errorf("deadletter: encode %s: %w", id, err)
	}
	b = append(b, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.max > 0 && d.size+int64(len(b)) > d.max {
		return fmt.Errorf("deadletter: %s: %w (%d bytes); move it away to let the output go on", d.path, ErrFull, d.size)
	}
	if _, err := d.f.Write(b); err != nil {
		return fmt.Errorf("deadletter: write %s: %w", d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("deadletter: sync %s: %w", d.path, err)
	}
	d.size += int64(len(b))
	d.writes++
	return nil
}

// Count is the records set aside since Open.
func (d *File) Count() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes
}

// Close closes the file.
func (d *File) Close() error { return d.f.Close() }
