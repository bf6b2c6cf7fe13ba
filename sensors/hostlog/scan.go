package hostlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// compressedSuffixes are rotated archives, never tailed.
var compressedSuffixes = [...]string{".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip"}

// run is the state of one call to Tailer.Run; only its goroutine uses it.
type run struct {
	t       *Tailer
	sink    Sink
	files   map[string]*tailedFile // by absolute path
	scans   int
	initial map[string]bool   // paths present at the first scan
	tracked map[string]bool   // paths followed at some time in this run
	failed  map[string]string // path → the last error logged for it
	// known holds the checkpoints of this tailer by key: those read from
	// the spool for the paths the globs matched, updated with every
	// commit. A file is resumed from the one that names it (device, inode
	// and fingerprint), whichever path it was committed under, so a file
	// renamed while the gateway was down keeps its position.
	known      map[string]position
	loaded     map[string]bool // keys read from the spool
	listed     bool            // every key the globs match was read
	loadedScan int             // the scan whose paths were all loaded
	unreadable map[string]bool // keys whose checkpoint did not parse
	links      map[string]bool // symlinks the last scan skipped, each logged once
	recordCost int             // a record's size beyond its text, path and source name (recordCost, or less: StampSizer)
	scratch    []byte          // the read buffer, lent to the file being read
	events     []event.Event   // the records of a batch, reused
	fields     []event.Field   // their fields, reused
}

func newRun(t *Tailer, sink Sink) *run {
	cost := recordCost
	if ss, ok := sink.(StampSizer); ok {
		if n := ss.StampBytes(); n >= 0 && n < maxStamp {
			cost = recordCost - maxStamp + n
		}
	}
	return &run{
		t: t, sink: sink, recordCost: cost,
		files:      map[string]*tailedFile{},
		initial:    map[string]bool{},
		tracked:    map[string]bool{},
		failed:     map[string]string{},
		known:      map[string]position{},
		loaded:     map[string]bool{},
		unreadable: map[string]bool{},
		links:      map[string]bool{},
	}
}

func (r *run) closeAll() {
	for p, f := range r.files {
		f.close()
		delete(r.files, p)
	}
	r.t.publishFiles([]FileStatus{})
}

// committed records that key's checkpoint is now p.
func (r *run) committed(key string, p position) {
	r.known[key] = p
	r.loaded[key] = true
	delete(r.unreadable, key)
}

// found is a regular file a glob matched.
type found struct {
	id   fileID
	size int64
	base string // the globBase of the glob that matched it
}

// scan expands the globs into the regular files they match now. Unless
// follow_symlinks, a match that is a symlink, or lies in a directory
// symlink a wildcard matched, is skipped (logged once while it stays).
func (r *run) scan() map[string]found {
	m := map[string]found{}
	links := map[string]bool{}
	for i, g := range r.t.globs {
		names, _ := filepath.Glob(g) // the only error, a malformed glob, Validate refused
		for _, n := range names {
			if _, dup := m[n]; dup || compressed(n) {
				continue
			}
			var fi os.FileInfo
			var err error
			if r.t.cfg.FollowSymlinks {
				fi, err = os.Stat(n)
			} else {
				fi, err = lstatUnder(n, r.t.bases[i])
			}
			if errors.Is(err, errSymlink) {
				links[n] = true
				if !r.links[n] {
					r.t.log.Warn("symbolic link skipped; set follow_symlinks to tail what links point at",
						"path", n, "err", err)
				}
				continue
			}
			if err != nil || !fi.Mode().IsRegular() {
				continue // gone since the glob, or a directory, fifo, device
			}
			m[n] = found{id: idOf(fi), size: fi.Size(), base: r.t.bases[i]}
		}
	}
	r.links = links
	return m
}

func compressed(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return slices.Contains(compressedSuffixes[:], ext)
}

// poll reconciles the followed files with what the globs match now, then
// reads every followed file. busy says a file has more to read at once;
// next is when an open multiline event times out (zero: none); err is the
// sink's refusal of a batch (the records are read again later).
func (r *run) poll(ctx context.Context) (busy bool, next time.Time, err error) {
	defer r.publish()
	now := r.scan()
	first := r.scans == 0
	r.scans++
	if first {
		for p := range now {
			r.initial[p] = true
		}
	}
	for p := range r.failed {
		if _, ok := now[p]; !ok {
			delete(r.failed, p) // a new failure there is worth a new log line
		}
	}
	byID := map[fileID]string{}
	for _, p := range sortedKeys(now) {
		if id := now[p].id; id.known {
			if _, dup := byID[id]; !dup {
				byID[id] = p
			}
		}
	}

	// A rename whose commit failed last time goes before anything else.
	if err := r.commitMoved(ctx); err != nil {
		return false, time.Time{}, err
	}

	// Files no longer at their path (rotated, deleted) are first read to
	// the end from the open descriptor, so a file is finished before its
	// successor at the same path is opened. Then those renamed within the
	// globs are followed under their new name, the others dropped.
	moves := map[string]string{}
	for _, p := range sortedKeys(r.files) {
		f := r.files[p]
		if cur, ok := now[p]; ok && cur.id.same(f.id) {
			continue
		}
		np, renamed := byID[f.id]
		renamed = renamed && f.id.known
		if err := f.drain(ctx, r, !renamed); err != nil {
			return false, time.Time{}, err
		}
		if renamed {
			moves[p] = np
			continue
		}
		f.close()
		delete(r.files, p)
	}
	if len(moves) > 0 {
		moved := make([]*tailedFile, 0, len(moves))
		for old := range moves {
			moved = append(moved, r.files[old])
			delete(r.files, old)
		}
		for _, f := range moved {
			np := moves[f.path]
			r.t.log.Info("file renamed; following it under its new name", "path", f.path, "new_path", np)
			f.rename(np, now[np].base)
			r.files[np] = f
			r.tracked[np] = true
		}
	}
	// A file's position moves to its new key before anything else is
	// committed: a new file at its old path overwrites the old key.
	if err := r.commitMoved(ctx); err != nil {
		return false, time.Time{}, err
	}

	// New files.
	ids := map[fileID]bool{}
	for _, f := range r.files {
		ids[f.id] = true
	}
	for _, p := range sortedKeys(now) {
		if _, ok := r.files[p]; ok {
			continue
		}
		if id := now[p].id; id.known && ids[id] {
			continue // another name (link) of a file already followed
		}
		f, err := r.open(p, now)
		if err != nil {
			r.fail(p, err)
			continue
		}
		if f == nil {
			continue
		}
		delete(r.failed, p)
		r.files[p] = f
		r.tracked[p] = true
		ids[f.id] = true
	}
	if err := r.commitMoved(ctx); err != nil {
		return false, time.Time{}, err
	}

	for _, p := range sortedKeys(r.files) {
		if ctx.Err() != nil {
			return false, time.Time{}, nil
		}
		f := r.files[p]
		if f.f == nil {
			if cur := now[p]; cur.size == f.size {
				continue // closed for close_inactive and still idle
			}
			if err := r.reopen(f); err != nil {
				r.fail(p, err)
				continue
			}
		}
		more, err := f.read(ctx, r, maxBatchesPerPoll, false)
		if err != nil {
			return false, time.Time{}, err
		}
		busy = busy || more
	}
	r.closeInactive(time.Now())
	return busy, r.deadline(), nil
}

// canReadOnly says the files written to are all followed and open, so
// reading just them (readOnly) is enough: no scan. Not while a renamed
// file's position waits to be committed under its new key (commitMoved
// failed): that goes first, in poll.
func (r *run) canReadOnly(written map[string]bool) bool {
	for p := range written {
		if f := r.files[p]; f == nil || f.f == nil {
			return false
		}
	}
	for _, f := range r.files {
		if f.moved {
			return false
		}
	}
	return true
}

// readOnly reads the given followed files, as poll does, without a scan:
// inotify said they were only written to.
func (r *run) readOnly(ctx context.Context, written map[string]bool) (busy bool, next time.Time, err error) {
	defer r.publish()
	for _, p := range sortedKeys(written) {
		if ctx.Err() != nil {
			return false, time.Time{}, nil
		}
		more, err := r.files[p].read(ctx, r, maxBatchesPerPoll, false)
		if err != nil {
			return false, time.Time{}, err
		}
		busy = busy || more
	}
	return busy, r.deadline(), nil
}

// deadline is when the first open multiline event times out; zero: none.
func (r *run) deadline() time.Time {
	var next time.Time
	for _, f := range r.files {
		if d := f.cut.deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next
}

// commitMoved commits the positions of files that follow a new name (or
// were resumed from the checkpoint of another path) under their new keys,
// all in one Emit: a chain of renames (a→b, b→c) overwrites keys that
// other files' positions are still under.
func (r *run) commitMoved(ctx context.Context) error {
	var moved []*tailedFile
	var cps []spool.Checkpoint
	var ps []position
	for _, p := range sortedKeys(r.files) {
		f := r.files[p]
		if !f.moved {
			continue
		}
		f.refingerprint()
		pos, part, split := f.cut.commit()
		ps = append(ps, f.position(pos, part, split))
		cps = append(cps, spool.Checkpoint{Source: f.key, Position: ps[len(ps)-1].marshal()})
		moved = append(moved, f)
	}
	if len(moved) == 0 {
		return nil
	}
	if len(cps) > spool.MaxAppendRecords {
		return fmt.Errorf("hostlog: %d files renamed at once; more than one commit holds", len(cps))
	}
	if err := r.sink.Emit(ctx, nil, cps); err != nil {
		return fmt.Errorf("hostlog: commit the positions of %d renamed files: %w", len(cps), err)
	}
	for i, f := range moved {
		f.committed(ps[i], 0)
		r.committed(f.key, ps[i])
	}
	return nil
}

// closeInactive releases the descriptors of files that did not grow for
// close_inactive and hold no open multiline event.
func (r *run) closeInactive(now time.Time) {
	for _, p := range sortedKeys(r.files) {
		f := r.files[p]
		if f.f == nil || f.dirty || f.cut.ev.open || now.Sub(f.active) < r.t.cfg.CloseInactive {
			continue
		}
		r.t.log.Debug("file inactive; closing it until it grows", "path", p, "offset", f.off)
		f.close()
	}
}

// reopen opens a file closed for close_inactive again; it must still be
// the same inode (its start is checked when it is read).
func (r *run) reopen(f *tailedFile) error {
	osf, err := openLog(f.path, f.base, r.t.cfg.FollowSymlinks)
	if err != nil {
		return fmt.Errorf("hostlog: open %s: %w", f.path, err)
	}
	fi, err := osf.Stat()
	if err != nil {
		osf.Close()
		return fmt.Errorf("hostlog: stat %s: %w", f.path, err)
	}
	if !idOf(fi).same(f.id) {
		osf.Close()
		return nil // replaced since the scan; the next one sees it
	}
	f.f, f.active = osf, time.Now()
	return nil
}

// open opens the file at path p and decides where to start reading it. It
// returns nil and no error for a file to skip.
func (r *run) open(p string, now map[string]found) (*tailedFile, error) {
	if err := r.load(now); err != nil {
		return nil, err
	}
	osf, err := openLog(p, now[p].base, r.t.cfg.FollowSymlinks)
	if err != nil {
		return nil, fmt.Errorf("hostlog: open %s: %w", p, err)
	}
	fi, err := osf.Stat()
	if err != nil {
		osf.Close()
		return nil, fmt.Errorf("hostlog: stat %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		osf.Close()
		return nil, nil
	}
	id := idOf(fi)
	for _, f := range r.files {
		if id.known && f.id == id {
			osf.Close()
			return nil, nil // replaced since the scan by a file already followed
		}
	}
	f := newTailedFile(r.t, p, now[p].base, osf, id, fi.Size(), time.Now())
	log := r.t.log.With("path", p)
	if r.tracked[p] {
		// Followed earlier in this run, so whatever is at the path now is
		// a new file: its checkpoint describes the old one.
		log.Info("new file at a followed path; reading it from the beginning")
		return f, nil
	}
	key, pos, ok, err := r.match(f)
	if err != nil {
		osf.Close()
		return nil, err
	}
	_, had := r.known[f.key]
	switch {
	case ok && pos.Off > f.size:
		log.Warn("file shorter than its checkpoint (truncated); reading it from the beginning",
			"offset", pos.Off, "size", f.size)
	case ok:
		f.off, f.part, f.split, f.fp = pos.Off, pos.part(), pos.Split, pos.fingerprint()
		f.cut.reset(f.part, f.split)
		if key == f.key {
			f.dirty = false
			log.Info("resuming file", "offset", f.off)
		} else {
			f.moved = true
			log.Info("file renamed since its checkpoint; resuming it under its new name",
				"old_path", strings.TrimPrefix(key, checkpointPrefix), "offset", f.off)
		}
	case r.unreadable[f.key]:
		// Starting over may repeat lines; guessing may lose them.
		log.Warn("unreadable checkpoint; reading from the beginning")
	case had:
		log.Info("file replaced since its checkpoint (rotated); reading it from the beginning")
	default:
		if r.initial[p] && r.t.cfg.StartAt == StartAtEnd {
			f.off = f.size
		}
		log.Info("following file", "offset", f.off)
	}
	return f, nil
}

// checkpointLister is a checkpoint store that also lists them (the
// spool): with it, the checkpoints of every path the globs match are read
// at the first open, those of paths that hold no file now included, so a
// file renamed while the gateway was down to a name nothing was committed
// under is still recognised.
type checkpointLister interface {
	Checkpoints(prefix string, fn func(source string, position []byte) error) error
}

// load reads the checkpoints of the paths in now that were not read yet
// (at the first call, every checkpoint of a path the globs match, when the
// store can list them).
func (r *run) load(now map[string]found) error {
	if r.loadedScan == r.scans {
		return nil // every path of this scan was loaded by an earlier open
	}
	if l, ok := r.t.cps.(checkpointLister); ok && !r.listed {
		got := map[string][]byte{}
		err := l.Checkpoints(checkpointPrefix, func(source string, b []byte) error {
			if r.matches(strings.TrimPrefix(source, checkpointPrefix)) {
				got[source] = append([]byte(nil), b...)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("hostlog: list checkpoints: %w", err)
		}
		for _, key := range sortedKeys(got) {
			if !r.loaded[key] {
				r.remember(key, got[key])
			}
		}
		r.listed = true
	}
	for _, p := range sortedKeys(now) {
		key := checkpointPrefix + p
		if r.loaded[key] || r.listed {
			r.loaded[key] = true
			continue
		}
		b, err := r.t.cps.Checkpoint(key)
		if err != nil {
			return fmt.Errorf("hostlog: checkpoint of %s: %w", p, err)
		}
		r.remember(key, b)
	}
	r.loadedScan = r.scans
	return nil
}

// remember keeps a checkpoint read from the store.
func (r *run) remember(key string, b []byte) {
	r.loaded[key] = true
	if len(b) == 0 {
		return
	}
	pos, err := parsePosition(b)
	if err != nil {
		r.t.log.Warn("unreadable checkpoint", "path", strings.TrimPrefix(key, checkpointPrefix), "err", err)
		r.unreadable[key] = true
		return
	}
	r.known[key] = pos
}

// matches says a glob of the tailer matches path.
func (r *run) matches(path string) bool {
	for _, g := range r.t.globs {
		if ok, _ := filepath.Match(g, path); ok {
			return true
		}
	}
	return false
}

// match finds the checkpoint of f's file among those known: same device
// and inode, and a fingerprint that f's first bytes match. When several
// do (a file renamed, its position committed under both names) the one
// furthest on is the newer.
func (r *run) match(f *tailedFile) (key string, pos position, ok bool, err error) {
	if !f.id.known {
		pos, ok = r.known[f.key]
		return f.key, pos, ok, nil
	}
	for k, p := range r.known {
		if p.id() != f.id || ok && (p.Off < pos.Off || p.Off == pos.Off && k > key) {
			continue
		}
		same, err := p.fingerprint().matches(f.f, f.size)
		if err != nil {
			return "", position{}, false, fmt.Errorf("hostlog: fingerprint of %s: %w", f.path, err)
		}
		if same {
			key, pos, ok = k, p, true
		}
	}
	return key, pos, ok, nil
}

// fail logs and counts err for path p once, until it changes or clears.
func (r *run) fail(p string, err error) {
	msg := err.Error()
	if r.failed[p] == msg {
		return
	}
	r.failed[p] = msg
	r.t.recordError(err)
	r.t.log.Warn("cannot follow file", "path", p, "err", err)
}

func (r *run) publish() {
	fs := make([]FileStatus, 0, len(r.files))
	for _, p := range sortedKeys(r.files) {
		fs = append(fs, r.files[p].status())
	}
	r.t.publishFiles(fs)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
