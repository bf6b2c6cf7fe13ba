package hostlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// Sink is what the tailer hands its records to. Emit returns only once the
// records AND the checkpoints are durable (the gateway stamps, encodes and
// appends them to the spool in one transaction). It may block
// (backpressure). A call may carry checkpoints and no events: a file's
// start position is committed before its first line, and the positions of
// renamed files move to their new names together. Emit must not keep the
// slices after it returns: the tailer reuses them.
type Sink interface {
	Emit(ctx context.Context, events []event.Event, checkpoints []spool.Checkpoint) error
}

// Checkpoints gives the last committed position of a source: nil and no
// error when there is none. A store that can also list them by prefix
// (the spool's Checkpoints method; see checkpointLister) lets a file
// renamed while the gateway was down keep its position under any name.
type Checkpoints interface {
	Checkpoint(source string) ([]byte, error)
}

// Batch limits: one Emit carries at most this many records, of at most
// this many bytes once encoded (estimated from above: the spool takes at
// most spool.MaxAppendBytes in one append).
const (
	maxBatchLines = 512
	maxBatchBytes = spool.MaxAppendBytes - 8<<10
)

// recordCost bounds what a record costs in the spool beyond its message,
// path and source name: the gateway id (64) and host name (253) at their
// longest, the fingerprint (58), the other fields and the header.
const recordCost = 512

// maxStamp is the part of recordCost the sink's stamp takes at its
// longest: the gateway id (64) and the host name (253).
const maxStamp = 64 + 253

// StampSizer is a Sink that says how many bytes its stamp adds to each
// record (the gateway id and host name it writes). The tailer then counts
// those instead of the longest possible, keeping the rest of recordCost:
// with a short id and host, a batch holds about 450 lines of 200 bytes
// instead of 270, and each fsynced commit carries that many more.
type StampSizer interface {
	StampBytes() int
}

// readChunk is how much one read asks of a file.
const readChunk = 64 << 10

// maxBatchesPerPoll bounds how long one busy file holds the loop before
// the others get their turn; the next poll then starts at once.
const maxBatchesPerPoll = 16

// maxRetryWait caps the wait between retries after Emit failed.
const maxRetryWait = 10 * time.Second

// Tailer follows the files of one FileConfig.
type Tailer struct {
	cfg      FileConfig
	globs    []string // absolute
	bases    []string // each glob's globBase
	priority event.Priority
	start    *regexp.Regexp // multiline.start_pattern; nil when off
	cps      Checkpoints
	log      *slog.Logger
	running  atomic.Bool

	mu     sync.Mutex // guards status
	status TailStatus
}

// TailStatus is a snapshot for `weir status`. Watching says inotify
// reports changes; false: the files are polled.
type TailStatus struct {
	Name      string       `json:"name"`
	Watching  bool         `json:"inotify"`
	Files     []FileStatus `json:"files"`
	Lines     uint64       `json:"lines"` // lines emitted since start
	Errors    uint64       `json:"errors"`
	LastError string       `json:"last_error,omitempty"`
}

// FileStatus is one followed file: its committed offset, its size at the
// last poll, the records emitted from it since start, and whether its
// descriptor is open (false: closed for close_inactive).
type FileStatus struct {
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	Lines  uint64 `json:"lines"`
	Open   bool   `json:"open"`
}

// NewTailer makes a Tailer for cfg; zero values in cfg take their
// defaults. cps gives the positions committed by earlier runs. A nil
// logger discards.
func NewTailer(cfg FileConfig, cps Checkpoints, logger *slog.Logger) (*Tailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hostlog: %w", err)
	}
	if cps == nil {
		return nil, errors.New("hostlog: " + cfg.Name + ": no checkpoint store")
	}
	cfg = cfg.withDefaults()
	prio, err := event.ParsePriority(cfg.Priority)
	if err != nil {
		return nil, fmt.Errorf("hostlog: %w", err)
	}
	globs := make([]string, len(cfg.Paths))
	for i, p := range cfg.Paths {
		if globs[i], err = filepath.Abs(p); err != nil {
			return nil, fmt.Errorf("hostlog: %s: glob %q: %w", cfg.Name, p, err)
		}
	}
	bases := make([]string, len(globs))
	for i, g := range globs {
		bases[i] = globBase(g)
	}
	var start *regexp.Regexp
	if cfg.Multiline.StartPattern != "" {
		if start, err = regexp.Compile(cfg.Multiline.StartPattern); err != nil {
			return nil, fmt.Errorf("hostlog: %s: multiline.start_pattern: %w", cfg.Name, err)
		}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Tailer{
		cfg: cfg, globs: globs, bases: bases, priority: prio, start: start, cps: cps,
		log:    logger.With("source", cfg.Name),
		status: TailStatus{Name: cfg.Name, Files: []FileStatus{}},
	}, nil
}

// Run tails until ctx is done and returns nil then; it returns an error
// only for something fatal. Failures of one file or of the sink are
// logged, counted in Status and retried. Run may be called again after it
// returned, but not concurrently.
func (t *Tailer) Run(ctx context.Context, sink Sink) error {
	if sink == nil {
		return fmt.Errorf("hostlog: %s: no sink", t.cfg.Name)
	}
	if !t.running.CompareAndSwap(false, true) {
		return fmt.Errorf("hostlog: %s: already running", t.cfg.Name)
	}
	defer t.running.Store(false)

	r := newRun(t, sink)
	defer r.closeAll()
	var w *watcher
	if t.cfg.Watch == WatchAuto {
		w = newWatcher(t.globs, t.log)
		defer func() { w.close() }()
	}
	t.setWatching(w != nil)
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	var nudge <-chan struct{}
	var lastScan time.Time
	for {
		var written map[string]bool // nil: scan
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-nudge:
			var full bool
			if written, full = w.take(); full {
				written = nil
			}
		}
		if written == nil && w != nil && !w.sync() {
			w.close()
			w = nil
			t.setWatching(false)
		}
		var busy bool
		var next time.Time
		var err error
		if written != nil && r.canReadOnly(written) {
			busy, next, err = r.readOnly(ctx, written)
		} else {
			busy, next, err = r.poll(ctx)
			lastScan = time.Now()
		}
		wait := t.cfg.PollInterval
		nudge = nil
		if w != nil {
			nudge = w.nudge
			// A file that failed to open, or a directory not there yet,
			// is tried again at the poll interval.
			if !w.missing && len(r.failed) == 0 {
				wait = max(time.Until(lastScan.Add(t.cfg.RescanInterval)), 0)
			}
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			// The sink refused a batch: every line of it is read again,
			// after the back-off whatever inotify says.
			failures++
			t.recordError(err)
			t.log.Warn("emit failed; retrying the same lines", "err", err, "failures", failures)
			wait, nudge = retryWait(t.cfg.PollInterval, failures), nil
		case busy:
			failures = 0
			wait = 0
		default:
			failures = 0
		}
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), 0))
		}
		timer.Reset(wait)
	}
}

// retryWait doubles the poll interval with each consecutive failure, up
// to maxRetryWait (or the poll interval, when that is longer).
func retryWait(interval time.Duration, failures int) time.Duration {
	w := interval
	for i := 1; i < failures && w < maxRetryWait; i++ {
		w *= 2
	}
	return max(interval, min(w, maxRetryWait))
}

// Status returns a snapshot; it is safe to call concurrently with Run.
func (t *Tailer) Status() TailStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.status
	s.Files = append([]FileStatus{}, s.Files...)
	return s
}

func (t *Tailer) recordError(err error) {
	t.mu.Lock()
	t.status.Errors++
	t.status.LastError = err.Error()
	t.mu.Unlock()
}

func (t *Tailer) addLines(n int) {
	t.mu.Lock()
	t.status.Lines += uint64(n)
	t.mu.Unlock()
}

func (t *Tailer) publishFiles(fs []FileStatus) {
	t.mu.Lock()
	t.status.Files = fs
	t.mu.Unlock()
}

func (t *Tailer) setWatching(on bool) {
	t.mu.Lock()
	t.status.Watching = on
	t.mu.Unlock()
}
