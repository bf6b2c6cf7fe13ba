package integrity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxSettleFactor bounds the wait of a path that never goes quiet: it is
// looked at once this many Settle periods have passed since its first
// event.
const maxSettleFactor = 20

// maxRetryWait caps the wait before a failed scan is tried again.
const maxRetryWait = 5 * time.Minute

// maxPending bounds the paths waiting to settle. A flood of events beyond
// it (a package upgrade unpacking into /etc) is dropped for one full
// rescan, which finds the same changes with bounded memory.
const maxPending = 4096

// pendingPath is a path with events waiting to settle.
type pendingPath struct{ first, last time.Time }

// runner is the state of one Run.
type runner struct {
	m       *Monitor
	sink    Sink
	watcher *fsnotify.Watcher // nil if inotify is unavailable: rescans only
	read    *reader
	batch   batch
	pending map[string]pendingPath
	// baselined holds the roots whose baseline exists: their own entry is
	// committed, last of the first scan.
	baselined map[string]bool
	// flooded is set when events were lost or too many; until the next
	// scan begins, events are dropped.
	flooded bool
	// watchFull is set once a watch could not be added in this scan, so
	// the log says it once per scan.
	watchFull bool
}

// Run watches and scans until ctx is done and returns nil then; it returns
// an error only for something fatal. It first scans every path: the first
// time, that makes the baseline (one summary record, no record per file);
// afterwards it reports what changed while the gateway was not running.
// Failures of one path or of the sink are logged, counted in Status and
// retried by a later scan. Run may be called again after it returned, but
// not concurrently.
func (m *Monitor) Run(ctx context.Context, sink Sink) error {
	if sink == nil {
		return errors.New("integrity: no sink")
	}
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("integrity: already running")
	}
	defer m.running.Store(false)

	r := &runner{
		m: m, sink: sink,
		read:      newReader(int64(m.cfg.MaxFileBytes), m.cfg.FollowSymlinks),
		pending:   map[string]pendingPath{},
		baselined: map[string]bool{},
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		m.recordError("integrity: no inotify; changes are found by rescans only", err, "rescan_interval", m.cfg.RescanInterval)
	} else {
		r.watcher = w
		defer w.Close()
	}
	return r.loop(ctx)
}

func (r *runner) loop(ctx context.Context) error {
	m := r.m
	var events <-chan fsnotify.Event
	var errs <-chan error
	if r.watcher != nil {
		events, errs = r.watcher.Events, r.watcher.Errors
	}
	rescan := time.NewTimer(0) // the first scan at once
	defer rescan.Stop()
	var tick *time.Ticker
	var tickC <-chan time.Time
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	failures := 0
	for {
		scan := false
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				// The watcher gave up; rescans still run.
				events = nil
				m.recordError("integrity: watches stopped; changes are found by rescans only", errors.New("event channel closed"))
				break
			}
			if r.flooded {
				break // the coming rescan looks at everything
			}
			if !r.note(ev, time.Now()) {
				m.update(func(s *Status) { s.Overflows++ })
				m.log.Warn("integrity: too many paths changing at once; rescanning", "paths", maxPending)
				r.flood(rescan)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				break
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				m.update(func(s *Status) { s.Overflows++ })
				m.log.Warn("integrity: watch queue overflowed; rescanning")
			} else {
				m.recordError("integrity: watch failed; rescanning", err)
			}
			r.flood(rescan)
		case <-tickC:
			if err := r.settle(ctx, time.Now()); err != nil {
				r.discard()
				if ctx.Err() != nil {
					return nil
				}
				failures++
				m.recordError("integrity: commit failed; rescanning later", err)
				rescan.Reset(retryWait(m.cfg.Settle, failures))
			}
		case <-rescan.C:
			scan = true
		case <-m.kick:
			scan = true
		}
		if scan {
			if err := r.scanAll(ctx); err != nil {
				r.discard()
				if ctx.Err() != nil {
					return nil
				}
				failures++
				m.recordError("integrity: scan failed; retrying", err, "failures", failures)
				rescan.Reset(retryWait(m.cfg.Settle, failures))
			} else {
				failures = 0
				rescan.Reset(m.cfg.RescanInterval)
			}
		}
		// Tick while paths wait to settle, and only then: an idle board
		// is not woken.
		switch {
		case len(r.pending) > 0 && tick == nil:
			tick = time.NewTicker(max(m.cfg.Settle/2, time.Millisecond))
			tickC = tick.C
		case len(r.pending) == 0 && tick != nil:
			tick.Stop()
			tick, tickC = nil, nil
		}
		n := len(r.pending)
		m.update(func(s *Status) { s.Pending = n })
	}
}

// flood drops the paths waiting to settle, and the events until the next
// scan begins, and has that scan start once the burst is likely over
// (not later: more overflows do not put it off).
func (r *runner) flood(rescan *time.Timer) {
	clear(r.pending)
	if !r.flooded {
		r.flooded = true
		rescan.Reset(r.m.cfg.Settle)
	}
}

// retryWait doubles with each consecutive failure, from one second (or
// settle, if longer) up to maxRetryWait.
func retryWait(settle time.Duration, failures int) time.Duration {
	w := max(time.Second, settle)
	for i := 1; i < failures && w < maxRetryWait; i++ {
		w *= 2
	}
	return min(w, maxRetryWait)
}

// note takes one watch event: the path it names waits to settle. It
// returns false if that would make too many paths wait.
func (r *runner) note(ev fsnotify.Event, now time.Time) bool {
	p := filepath.Clean(ev.Name)
	root, ok := r.m.rootOf(p)
	if !ok || !r.baselined[root] {
		// Outside the paths (a sibling of a watched file), or under a
		// root whose baseline is still being made.
		return true
	}
	pp, ok := r.pending[p]
	if !ok {
		if len(r.pending) >= maxPending {
			return false
		}
		pp.first = now
	}
	pp.last = now
	r.pending[p] = pp
	return true
}

// settle looks at the paths that have been quiet for Settle, or waited
// too long, and commits what changed.
func (r *runner) settle(ctx context.Context, now time.Time) error {
	settle := r.m.cfg.Settle
	due := map[string]bool{}
	for p, pp := range r.pending {
		if now.Sub(pp.last) >= settle || now.Sub(pp.first) >= maxSettleFactor*settle {
			due[p] = true
			delete(r.pending, p)
		}
	}
	if len(due) == 0 {
		return nil
	}
	for p := range due {
		// A path under another due one is looked at with it.
		covered := false
		for c, q := p, filepath.Dir(p); q != c; c, q = q, filepath.Dir(q) {
			if due[q] {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		if err := r.settlePath(ctx, p); err != nil {
			return err
		}
	}
	if err := r.flush(ctx); err != nil {
		return err
	}
	return nil
}

// settlePath looks at p after its events. A directory that is still the
// same directory (same inode) is compared by itself: an event on it, such
// as a chmod, says nothing about its entries, which have events of their
// own. Anything else, a new or replaced directory above all, is looked at
// with everything under it.
func (r *runner) settlePath(ctx context.Context, p string) error {
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		old, err := r.load(p)
		if err != nil {
			return err
		}
		var cur entry
		fill(&cur, fi)
		if old != nil && old.Type == TypeDir && old.Inode == cur.Inode {
			r.watch(p)
			return r.observe(ctx, p, &cur, false)
		}
	}
	return r.scanTree(ctx, p, false)
}

// watch puts an inotify watch on the directory dir. Adding one that is
// there already is harmless: the kernel keeps one watch per inode.
func (r *runner) watch(dir string) {
	if r.watcher == nil {
		return
	}
	if err := r.watcher.Add(dir); err != nil && !gone(err) {
		if !r.watchFull {
			r.watchFull = true
			r.m.recordError(fmt.Sprintf("integrity: watch %s failed (fs.inotify.max_user_watches?); changes there are found by rescans", dir), err)
		}
	}
}
