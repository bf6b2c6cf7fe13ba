package integrity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// Source is the source name of integrity records.
const Source = "integrity"

// sourcePrefix starts the checkpoint source of every baseline entry:
// "fim:<path>".
const sourcePrefix = "fim:"

// Sink is what the monitor hands its records to. Emit returns only once
// the records AND the checkpoints are durable (the gateway stamps, encodes
// and appends them to the spool in one transaction); a change and the
// baseline entry it leaves are committed together, so a crash neither
// loses a change nor reports it twice. A call may carry checkpoints and no
// events (the first baseline). Emit must not keep the slices.
type Sink interface {
	Emit(ctx context.Context, events []event.Event, checkpoints []spool.Checkpoint) error
}

// Store reads back committed checkpoints: the baseline. Checkpoint gives
// one source's last position, nil and no error when there is none;
// Checkpoints lists those whose source starts with prefix. *spool.Spool
// is one.
type Store interface {
	Checkpoint(source string) ([]byte, error)
	Checkpoints(prefix string, fn func(source string, position []byte) error) error
}

// Monitor keeps the baseline of its paths and reports every change to it.
type Monitor struct {
	cfg   Config
	roots []string        // absolute, clean, none under another unless excluded there
	self  map[string]bool // the gateway's own binary and configuration file
	store Store
	log   *slog.Logger

	running atomic.Bool
	kick    chan struct{} // a rescan asked for

	mu     sync.Mutex // guards status
	status Status
}

// Status is a snapshot for the admin socket.
type Status struct {
	Paths []string `json:"paths"` // watched, the gateway's own files included
	// Files is the number of paths in the baseline (files, directories,
	// symlinks), as of the last scan and the changes since.
	Files   int64 `json:"files"`
	Watches int   `json:"watches"` // directories under an inotify watch
	Pending int   `json:"pending"` // paths waiting to settle
	// LastScan is when the last full scan ended; LastScanMillis how long it
	// took, hashing included.
	LastScan       time.Time `json:"last_scan,omitzero"`
	LastScanMillis int64     `json:"last_scan_ms"`
	Scans          uint64    `json:"scans"`
	// HashSkipped counts files the last scan did not hash: larger than
	// max_file_bytes.
	HashSkipped uint64 `json:"hash_skipped"`
	Changes     uint64 `json:"changes"`   // change records committed since start
	Overflows   uint64 `json:"overflows"` // watch queue overflows, each answered by a rescan
	Errors      uint64 `json:"errors"`
	LastError   string `json:"last_error,omitempty"`
}

// New makes a Monitor for cfg. configFile is the gateway's configuration
// file ("" if none); it and the running binary are watched whatever
// cfg.Paths says, and a change to either is reported with severity
// critical. store gives the baseline committed by earlier runs. A nil
// logger discards.
func New(cfg Config, configFile string, store Store, logger *slog.Logger) (*Monitor, error) {
	var self []string
	if exe, err := os.Executable(); err == nil {
		self = append(self, exe)
	} else if logger != nil {
		logger.Warn("integrity: own binary not found; not watched", "err", err)
	}
	if configFile != "" {
		self = append(self, configFile)
	}
	return newMonitor(cfg, self, store, logger)
}

// newMonitor is New with the gateway's own files given.
func newMonitor(cfg Config, self []string, store Store, logger *slog.Logger) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("integrity: %w", err)
	}
	if store == nil {
		return nil, errors.New("integrity: no baseline store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	m := &Monitor{
		cfg: cfg, self: map[string]bool{}, store: store,
		log:  logger.With("source", Source),
		kick: make(chan struct{}, 1),
	}
	paths := slices.Clone(cfg.Paths)
	for _, p := range self {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("integrity: own file %q: %w", p, err)
		}
		// The file itself, not a link to it, is what matters.
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
		m.self[abs] = true
		paths = append(paths, abs)
	}
	m.roots = m.normalRoots(paths)
	m.status = Status{Paths: slices.Clone(m.roots)}
	return m, nil
}

// normalRoots cleans paths, drops duplicates and drops a path that lies
// under another one unless an exclude glob cuts it off there.
func (m *Monitor) normalRoots(paths []string) []string {
	var roots []string
	for _, p := range paths {
		roots = append(roots, filepath.Clean(p))
	}
	slices.Sort(roots)
	roots = slices.Compact(roots)
	var out []string
	for _, r := range roots {
		covered := false
		for _, o := range out {
			if under(r, o) && !m.excludedBetween(o, r) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, r)
		}
	}
	return out
}

// under says whether p lies strictly below dir.
func under(p, dir string) bool {
	if dir == "/" {
		return p != "/" && strings.HasPrefix(p, "/")
	}
	return len(p) > len(dir) && p[len(dir)] == '/' && strings.HasPrefix(p, dir)
}

// childPrefix is the checkpoint prefix of every path below p.
func childPrefix(p string) string {
	return sourcePrefix + strings.TrimSuffix(p, "/") + "/"
}

// excluded says whether an exclude glob matches p itself.
func (m *Monitor) excluded(p string) bool {
	for _, g := range m.cfg.Exclude {
		target := p
		if !strings.Contains(g, "/") {
			target = filepath.Base(p)
		}
		if ok, _ := filepath.Match(g, target); ok {
			return true
		}
	}
	return false
}

// excludedBetween says whether p, below root, or a directory between
// them is excluded.
func (m *Monitor) excludedBetween(root, p string) bool {
	if len(m.cfg.Exclude) == 0 {
		return false
	}
	for q := p; q != root && under(q, root); q = filepath.Dir(q) {
		if m.excluded(q) {
			return true
		}
	}
	return false
}

// isRoot says whether p is one of the roots.
func (m *Monitor) isRoot(p string) bool { return slices.Contains(m.roots, p) }

// rootOf returns the root that covers p, if one does.
func (m *Monitor) rootOf(p string) (string, bool) {
	for _, r := range m.roots {
		if p == r || under(p, r) && !m.excludedBetween(r, p) {
			return r, true
		}
	}
	return "", false
}

// Rescan asks a running monitor for a full scan soon; it does not wait.
func (m *Monitor) Rescan() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Status returns a snapshot; it is safe to call concurrently with Run.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.status
	s.Paths = slices.Clone(s.Paths)
	return s
}

func (m *Monitor) update(f func(*Status)) {
	m.mu.Lock()
	f(&m.status)
	m.mu.Unlock()
}

// recordError counts err and logs it at warning level.
func (m *Monitor) recordError(msg string, err error, args ...any) {
	m.update(func(s *Status) {
		s.Errors++
		s.LastError = msg + ": " + err.Error()
	})
	m.log.Warn(msg, append(args, "err", err)...)
}
