package integrity

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// tally counts the entries of a new baseline by type.
type tally [typeCount]int

func (t *tally) total() int { return t[TypeFile] + t[TypeDir] + t[TypeSymlink] + t[TypeOther] }

// scanAll looks at every path. A root without a baseline gets one, made
// silently; the others are compared and their changes committed.
func (r *runner) scanAll(ctx context.Context) error {
	m := r.m
	start := time.Now()
	r.watchFull, r.flooded = false, false
	r.read.skipped = 0
	var (
		fresh   []string // roots whose baseline this scan makes
		rootCPs []spool.Checkpoint
		counts  tally
	)
	for _, root := range m.roots {
		if !r.baselined[root] {
			old, err := r.load(root)
			if err != nil {
				return err
			}
			r.baselined[root] = old != nil
		}
		if r.baselined[root] {
			if err := r.scanTree(ctx, root, false); err != nil {
				return err
			}
		} else {
			cp, err := r.makeBaseline(ctx, root, &counts)
			if err != nil {
				return err
			}
			fresh = append(fresh, root)
			rootCPs = append(rootCPs, cp)
		}
		if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
			// A file or a missing path: its directory tells when it is
			// replaced, deleted or created.
			r.watch(filepath.Dir(root))
		}
	}
	if len(fresh) > 0 {
		// The roots' own entries go last, with the summary: until they
		// are committed a restart makes the baseline again, silently.
		ev := r.summary(fresh, &counts)
		if err := r.add(ctx, []event.Event{ev}, rootCPs, 0, counts.total()); err != nil {
			return err
		}
	}
	if err := r.flush(ctx); err != nil {
		return err
	}
	for _, root := range fresh {
		r.baselined[root] = true
	}
	files, err := r.count()
	if err != nil {
		return err
	}
	var watches int
	if r.watcher != nil {
		watches = len(r.watcher.WatchList())
	}
	end := time.Now()
	skipped := r.read.skipped
	m.update(func(s *Status) {
		s.Files, s.Watches = files, watches
		s.LastScan, s.LastScanMillis = end, end.Sub(start).Milliseconds()
		s.Scans++
		s.HashSkipped = skipped
	})
	if len(fresh) > 0 {
		m.log.Info("integrity: baseline created", "roots", fresh, "paths", counts.total(), "took", end.Sub(start))
	}
	return nil
}

// makeBaseline walks root and commits an entry for every path under it,
// with no records; it returns root's own entry for the caller to commit
// last.
func (r *runner) makeBaseline(ctx context.Context, root string, counts *tally) (spool.Checkpoint, error) {
	var rootCP spool.Checkpoint
	err := r.walk(ctx, root, func(p string, e *entry) error {
		if e.Type != TypeAbsent {
			counts[e.Type]++
		}
		cp := r.checkpoint(p, e)
		if p == root {
			rootCP = cp
			return nil
		}
		return r.add(ctx, nil, []spool.Checkpoint{cp}, 0, 0)
	})
	if err != nil {
		return rootCP, err
	}
	if rootCP.Source == "" {
		// The root could not be looked at (its directory unreadable):
		// no baseline yet, the next scan tries again.
		return rootCP, fmt.Errorf("integrity: %s could not be looked at", root)
	}
	// Entries from an attempt cut short whose paths are gone since.
	return rootCP, r.sweep(ctx, root, true)
}

// scanTree looks at p and everything under it, commits a record and a new
// entry for each change, and marks deleted what the baseline holds under p
// that is gone.
func (r *runner) scanTree(ctx context.Context, p string, silent bool) error {
	err := r.walk(ctx, p, func(path string, e *entry) error {
		return r.observe(ctx, path, e, silent)
	})
	if err != nil {
		return err
	}
	return r.sweep(ctx, p, silent)
}

// observe compares what is at p with its baseline entry and adds a record
// and the new entry to the batch if they differ (only the entry if silent).
func (r *runner) observe(ctx context.Context, p string, cur *entry, silent bool) error {
	old, err := r.load(p)
	if err != nil {
		return err
	}
	kind, attrs := compare(old, cur)
	if kind == "" {
		if old != nil && old.Type == TypeAbsent && !r.m.isRoot(p) {
			// A deleted path's entry kept by an older version (a
			// tombstone): dropped now, with no record.
			return r.add(ctx, nil, []spool.Checkpoint{r.checkpoint(p, cur)}, 0, 0)
		}
		return nil
	}
	delta := 0
	switch kind {
	case ChangeCreated:
		delta = 1
	case ChangeDeleted:
		delta = -1
	}
	cps := []spool.Checkpoint{r.checkpoint(p, cur)}
	if silent {
		return r.add(ctx, nil, cps, 0, delta)
	}
	ev := r.change(p, kind, attrs, old, cur)
	return r.add(ctx, []event.Event{ev}, cps, 1, delta)
}

// sweep finds what the baseline holds below p that is gone, and observes
// it as absent: its entry is deleted.
func (r *runner) sweep(ctx context.Context, p string, silent bool) error {
	var gonePaths []string
	err := r.m.store.Checkpoints(childPrefix(p), func(source string, _ []byte) error {
		path := strings.TrimPrefix(source, sourcePrefix)
		if _, ok := r.m.rootOf(path); !ok {
			return nil // excluded since, or outside every path: left alone
		}
		if _, err := os.Lstat(path); gone(err) {
			gonePaths = append(gonePaths, path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("integrity: baseline under %s: %w", p, err)
	}
	for _, path := range gonePaths {
		cur, _, err := r.read.read(path)
		if err != nil {
			continue
		}
		if err := r.observe(ctx, path, &cur, silent); err != nil {
			return err
		}
	}
	return nil
}

// walk visits p and, if it is a directory, everything under it that is
// not excluded, parents before children, and watches the directories. A
// path that cannot be looked at is logged and skipped.
func (r *runner) walk(ctx context.Context, p string, visit func(string, *entry) error) error {
	w := walker{r: r, ctx: ctx, visit: visit}
	return w.walk(p)
}

type walker struct {
	r     *runner
	ctx   context.Context
	visit func(string, *entry) error
	// stack holds the directories being walked, by device and inode, so a
	// followed symlink cannot lead the walk round in a loop.
	stack [][2]uint64
	n     int
}

func (w *walker) walk(p string) error {
	if w.n++; w.n%256 == 0 {
		if err := w.ctx.Err(); err != nil {
			return err
		}
	}
	e, hashErr, err := w.r.read.read(p)
	if err != nil {
		w.r.m.recordError("integrity: cannot look at "+p, err)
		return nil
	}
	if hashErr != nil {
		w.r.m.recordError("integrity: cannot hash "+p, hashErr)
	}
	if err := w.visit(p, &e); err != nil {
		return err
	}
	if e.Type != TypeDir {
		return nil
	}
	id := [2]uint64{e.dev, e.Inode}
	if slices.Contains(w.stack, id) {
		return nil
	}
	w.r.watch(p)
	f, err := os.Open(p)
	if err != nil {
		if !gone(err) {
			w.r.m.recordError("integrity: cannot list "+p, err)
		}
		return nil
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		w.r.m.recordError("integrity: cannot list "+p, err)
	}
	slices.Sort(names)
	w.stack = append(w.stack, id)
	defer func() { w.stack = w.stack[:len(w.stack)-1] }()
	for _, name := range names {
		child := filepath.Join(p, name)
		if w.r.m.excluded(child) {
			continue
		}
		if err := w.walk(child); err != nil {
			return err
		}
	}
	return nil
}

// load returns p's baseline entry, nil if it has none. An entry that does
// not decode is logged and taken as none, so the path is reported as
// created and its entry rewritten.
func (r *runner) load(p string) (*entry, error) {
	pos, err := r.m.store.Checkpoint(sourcePrefix + p)
	if err != nil {
		return nil, fmt.Errorf("integrity: baseline of %s: %w", p, err)
	}
	if pos == nil {
		return nil, nil
	}
	e, err := decodeEntry(pos)
	if err != nil {
		r.m.recordError("integrity: baseline of "+p+" is corrupt; taken as new", err)
		return nil, nil
	}
	return &e, nil
}

// count returns the number of paths present in the baseline under the
// roots: an absent root's entry is not one.
func (r *runner) count() (int64, error) {
	var n int64
	err := r.m.store.Checkpoints(sourcePrefix, func(source string, pos []byte) error {
		if len(pos) >= 2 && FileType(pos[1]) != TypeAbsent {
			if _, ok := r.m.rootOf(strings.TrimPrefix(source, sourcePrefix)); ok {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("integrity: count baseline: %w", err)
	}
	return n, nil
}

// checkpoint makes what the baseline holds for p: its entry, or none if
// nothing is there (the checkpoint is deleted). A root that is absent
// keeps an absent entry: a root's own entry says its baseline was made, so
// that a root that appears later is reported as created.
func (r *runner) checkpoint(p string, e *entry) spool.Checkpoint {
	if e.Type == TypeAbsent && !r.m.isRoot(p) {
		return spool.Checkpoint{Source: sourcePrefix + p, Delete: true}
	}
	return spool.Checkpoint{Source: sourcePrefix + p, Position: appendEntry(make([]byte, 0, 64+len(e.Target)), e)}
}
