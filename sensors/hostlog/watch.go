package hostlog

import (
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// watcher nudges the tailer when inotify reports a change in the globs'
// directories, so it reads at once instead of at the next poll. Polling
// stays the safety net: an event lost to a full queue, or a directory that
// does not exist yet, is caught by the next scan.
type watcher struct {
	w      *fsnotify.Watcher
	globs  []string
	log    *slog.Logger
	nudge  chan struct{} // one pending nudge at most
	done   chan struct{}
	closed sync.Once
	// missing says a directory the globs name could not be watched (it
	// does not exist yet): the tailer then polls at poll_interval.
	missing bool

	mu      sync.Mutex
	written map[string]bool // files only written to since the last take
	full    bool            // something else happened: scan
}

// newWatcher watches the globs' directories; nil when inotify is
// unavailable (not Linux, or max_user_instances reached), logged once.
func newWatcher(globs []string, log *slog.Logger) *watcher {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("inotify unavailable; polling the files instead", "err", err)
		return nil
	}
	w := &watcher{w: fw, globs: globs, log: log, nudge: make(chan struct{}, 1), done: make(chan struct{}), written: map[string]bool{}}
	go w.loop()
	return w
}

func (w *watcher) loop() {
	defer close(w.done)
	for {
		select {
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || compressed(ev.Name) {
				continue // archives being compressed write a lot
			}
			switch file, dir := w.relevant(ev.Name); {
			case file && ev.Op == fsnotify.Write:
				w.note(ev.Name)
			case file || dir:
				w.note("")
			}
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Debug("inotify queue overflowed; scanning", "err", err)
			} else {
				w.log.Warn("inotify error; scanning", "err", err)
			}
			w.note("")
		}
	}
}

// note records a write to path, or with "" anything else, and nudges.
func (w *watcher) note(path string) {
	w.mu.Lock()
	if path == "" {
		w.full = true
	} else {
		w.written[path] = true
	}
	w.mu.Unlock()
	select {
	case w.nudge <- struct{}{}:
	default:
	}
}

// take returns what happened since the last take: the files written to,
// and whether anything else happened (created, renamed, removed, lost
// events), which needs a scan.
func (w *watcher) take() (written map[string]bool, full bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	written, full = w.written, w.full
	w.written, w.full = map[string]bool{}, false
	return written, full
}

// relevant says name is a file a glob matches, or a directory one of
// them names (created, renamed or removed).
func (w *watcher) relevant(name string) (file, dir bool) {
	for _, g := range w.globs {
		if ok, _ := filepath.Match(g, name); ok {
			return true, false
		}
		if ok, _ := filepath.Match(filepath.Dir(g), name); ok {
			dir = true
		}
	}
	return false, dir
}

// sync watches the directories the globs name now (inotify drops the
// watch of a directory that is removed; one created later is added here).
// It returns false when inotify's limits are reached: the caller then
// closes the watcher and polls.
func (w *watcher) sync() bool {
	w.missing = false
	for _, d := range globDirs(w.globs) {
		err := w.w.Add(d)
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist) || isNotDir(err):
			w.missing = true
		default:
			// ENOSPC (max_user_watches) and the like.
			w.log.Warn("cannot watch a directory with inotify; polling the files instead", "dir", d, "err", err)
			return false
		}
	}
	return true
}

// globDirs are the directories the globs' files live in: the glob's
// directory, or what it matches when it holds wildcards itself.
func globDirs(globs []string) []string {
	seen := map[string]bool{}
	var dirs []string
	for _, g := range globs {
		d := filepath.Dir(g)
		ds := []string{d}
		if hasMeta(d) {
			ds, _ = filepath.Glob(d) // malformed globs were refused by Validate
		}
		for _, d := range ds {
			if !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

func hasMeta(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}

func (w *watcher) close() {
	if w == nil {
		return
	}
	w.closed.Do(func() {
		w.w.Close()
		<-w.done
	})
}
