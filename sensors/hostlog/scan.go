package hostlog

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// compressedSuffixes are rotated archives, never tailed.
var compressedSuffixes = [...]string{".gz", ".bz2", ".xz", ".zst"}

// run is the state of one call to Tailer.Run; only its goroutine uses it.
type run struct {
	t       *Tailer
	sink    Sink
	files   map[string]*tailedFile // by absolute path
	scans   int
	initial map[string]bool   // paths present at the first scan
	tracked map[string]bool   // paths followed at some time in this run
	failed  map[string]string // path → the last error logged for it
}

func newRun(t *Tailer, sink Sink) *run {
	return &run{
		t: t, sink: sink,
		files:   map[string]*tailedFile{},
		initial: map[string]bool{},
		tracked: map[string]bool{},
		failed:  map[string]string{},
	}
}

func (r *run) closeAll() {
	for p, f := range r.files {
		f.close()
		delete(r.files, p)
	}
	r.t.publishFiles([]FileStatus{})
}

// found is a regular file a glob matched.
type found struct {
	id   fileID
	size int64
}

// scan expands the globs into the regular files they match now.
func (r *run) scan() map[string]found {
	m := map[string]found{}
	for _, g := range r.t.globs {
		names, _ := filepath.Glob(g) // the only error, a malformed glob, Validate refused
		for _, n := range names {
			if _, dup := m[n]; dup || compressed(n) {
				continue
			}
			fi, err := os.Stat(n)
			if err != nil || !fi.Mode().IsRegular() {
				continue // gone since the glob, or a directory, fifo, device
			}
			m[n] = found{id: idOf(fi), size: fi.Size()}
		}
	}
	return m
}

func compressed(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return slices.Contains(compressedSuffixes[:], ext)
}

// poll reconciles the followed files with what the globs match now, then
// reads every followed file. busy says a file has more to read at once;
// err is the sink's refusal of a batch (the lines are read again later).
func (r *run) poll(ctx context.Context) (busy bool, err error) {
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
			return false, err
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
			f.rename(np)
			r.files[np] = f
			r.tracked[np] = true
		}
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
		f, err := r.open(p)
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

	for _, p := range sortedKeys(r.files) {
		if ctx.Err() != nil {
			return false, nil
		}
		more, err := r.files[p].read(ctx, r, maxBatchesPerPoll, false)
		if err != nil {
			return false, err
		}
		busy = busy || more
	}
	return busy, nil
}

// open opens the file at path p and decides where to start reading it. It
// returns nil and no error for a file to skip.
func (r *run) open(p string) (*tailedFile, error) {
	osf, err := os.Open(p)
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
	f := newTailedFile(r.t, p, osf, id, fi.Size())
	log := r.t.log.With("path", p)
	switch {
	case r.tracked[p]:
		// Followed earlier in this run, so whatever is at the path now is
		// a new file: its checkpoint describes the old one.
		log.Info("new file at a followed path; reading it from the beginning")
	default:
		b, err := r.t.cps.Checkpoint(f.key)
		if err != nil {
			osf.Close()
			return nil, fmt.Errorf("hostlog: checkpoint of %s: %w", p, err)
		}
		if len(b) > 0 {
			r.resume(f, b, log)
			break
		}
		if r.initial[p] && r.t.cfg.StartAt == StartAtEnd {
			f.off = fi.Size()
		}
		log.Info("following file", "offset", f.off)
	}
	return f, nil
}

// resume places f at its checkpoint, or at the start when the checkpoint
// belongs to another file or lies past the end.
func (r *run) resume(f *tailedFile, cp []byte, log *slog.Logger) {
	pos, err := parsePosition(cp)
	switch {
	case err != nil:
		// Starting over may repeat lines; guessing may lose them.
		log.Warn("unreadable checkpoint; reading from the beginning", "err", err)
	case !pos.id().same(f.id):
		log.Info("file replaced since the last run (rotated); reading it from the beginning")
	case pos.Off > f.size:
		log.Warn("file shorter than its checkpoint (truncated); reading from the beginning",
			"offset", pos.Off, "size", f.size)
	default:
		f.off, f.cont, f.dirty = pos.Off, pos.Cont, false
		log.Info("resuming file", "offset", f.off)
	}
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
