package collector

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// quarantine keeps the frames sessions panicked on, for analysis: each in
// a file of its own (cut to QuarantineMaxFrame bytes) beside a note of the
// panic, at most maxFiles frames in the directory, counted across
// restarts. Beyond that, frames are dropped: a peer that can make the
// collector panic must not be able to fill its disk too.
type quarantine struct {
	dir      string
	maxFiles int
	mu       sync.Mutex
	n        int
	loaded   bool
}

func newQuarantine(dir string, maxFiles int) *quarantine {
	if dir == "" {
		return nil
	}
	return &quarantine{dir: dir, maxFiles: maxFiles}
}

// keep writes frame and its note, returning the frame's path.
func (q *quarantine) keep(gateway, peer string, frame []byte, note string) (string, error) {
	if q == nil {
		return "", nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := os.MkdirAll(q.dir, 0o700); err != nil {
		return "", fmt.Errorf("collector: quarantine %s: %w", q.dir, err)
	}
	if !q.loaded {
		ents, err := os.ReadDir(q.dir)
		if err != nil {
			return "", fmt.Errorf("collector: quarantine %s: %w", q.dir, err)
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".frame") {
				q.n++
			}
		}
		q.loaded = true
	}
	if q.n >= q.maxFiles {
		return "", fmt.Errorf("collector: quarantine %s holds %d frames already; this one is not kept", q.dir, q.n)
	}
	if gateway == "" {
		gateway = "unknown"
	}
	base := filepath.Join(q.dir, fmt.Sprintf("%s-%s-%d", time.Now().UTC().Format("20060102T150405.000000000Z"), gateway, q.n))
	total := len(frame)
	if len(frame) > QuarantineMaxFrame {
		frame = frame[:QuarantineMaxFrame]
	}
	header := fmt.Sprintf("gateway: %s\npeer: %s\nframe: %s.frame (%d of %d bytes kept)\n\n%s\n", gateway, peer, filepath.Base(base), len(frame), total, note)
	if err := os.WriteFile(base+".txt", []byte(header), 0o600); err != nil {
		return "", fmt.Errorf("collector: quarantine: %w", err)
	}
	if err := os.WriteFile(base+".frame", frame, 0o600); err != nil {
		return "", fmt.Errorf("collector: quarantine: %w", err)
	}
	q.n++
	return base + ".frame", nil
}
