package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Guard keeps count of failed logins in a state file, so that neither the
// growing delay nor a lockout ends when the console process does (a
// session that times out or hangs up is followed by a fresh process). Two
// consoles sharing a directory (two serial ports) share the count: each
// change is made under a lock on a file beside the state.
type Guard struct {
	dir string
	cfg Config
}

// Verdict is what the guard says of the next login.
type Verdict struct {
	// Failures is the count of failed logins in a row.
	Failures int
	// Locked: no login is checked until LockedUntil.
	Locked      bool
	LockedUntil time.Time
	// NotBefore: the next login is not checked before this (the growing
	// delay); zero when there is nothing to wait for.
	NotBefore time.Time
	// Damaged: the state file could not be read, so the console counts as
	// locked (a lockout that a damaged file lifted would be none).
	Damaged bool
}

// state is the file's content.
type state struct {
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"last_failure"`
	NotBefore   time.Time `json:"not_before"`
	LockedUntil time.Time `json:"locked_until"`
}

const (
	stateFile = "login-state.json"
	lockFile  = "login-state.lock"
	// maxDoublings bounds the growing delay at 64 times failure_delay.
	maxDoublings = 6
)

// OpenGuard keeps the state in dir, created 0700 if need be. A directory
// that cannot be written is an error: the console does not run without a
// lockout it can keep.
func OpenGuard(dir string, cfg Config) (*Guard, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("console: state directory %s: %w", dir, err)
	}
	g := &Guard{dir: dir, cfg: cfg}
	unlock, err := g.lock()
	if err != nil {
		return nil, err
	}
	unlock()
	return g, nil
}

// Check says whether a login may be checked now.
func (g *Guard) Check(now time.Time) (Verdict, error) {
	var v Verdict
	err := g.update(now, func(s *state, damaged bool) bool {
		v = g.verdict(s, now, damaged)
		return damaged
	})
	return v, err
}

// Failed counts a failed login and returns the verdict after it: the
// delay before the next, or the lockout it started.
func (g *Guard) Failed(now time.Time) (Verdict, error) {
	var v Verdict
	err := g.update(now, func(s *state, damaged bool) bool {
		s.Failures++
		s.LastFailure = now
		s.NotBefore = now.Add(g.delay(s.Failures))
		if s.Failures >= g.cfg.MaxFailures {
			s.LockedUntil, s.NotBefore = now.Add(g.cfg.Lockout), time.Time{}
		}
		v = g.verdict(s, now, damaged)
		return true
	})
	return v, err
}

// Succeeded clears the count after a good login.
func (g *Guard) Succeeded(now time.Time) error {
	return g.update(now, func(s *state, _ bool) bool {
		*s = state{}
		return true
	})
}

// delay is failure_delay doubled for each failure after the first.
func (g *Guard) delay(failures int) time.Duration {
	return g.cfg.FailureDelay << min(max(failures-1, 0), maxDoublings)
}

func (g *Guard) verdict(s *state, now time.Time, damaged bool) Verdict {
	v := Verdict{Failures: s.Failures, Damaged: damaged}
	if now.Before(s.LockedUntil) {
		v.Locked, v.LockedUntil = true, s.LockedUntil
	}
	if now.Before(s.NotBefore) {
		v.NotBefore = s.NotBefore
	}
	return v
}

// update reads the state under the lock, lets f change it, and writes it
// back when f says so. It applies what time has settled first: an ended
// lockout or a quiet spell as long as one clears the count, and times
// further ahead than configuration allows (the clock was set back, or the
// file edited) come back within bounds.
func (g *Guard) update(now time.Time, f func(s *state, damaged bool) (write bool)) error {
	unlock, err := g.lock()
	if err != nil {
		return err
	}
	defer unlock()
	s, damaged := g.read(now)
	if !s.LockedUntil.IsZero() && !now.Before(s.LockedUntil) ||
		s.LockedUntil.IsZero() && s.Failures > 0 && now.Sub(s.LastFailure) >= g.cfg.Lockout {
		s = state{}
	}
	if lim := now.Add(g.cfg.Lockout); s.LockedUntil.After(lim) {
		s.LockedUntil = lim
	}
	if lim := now.Add(g.delay(maxDoublings + 1)); s.NotBefore.After(lim) {
		s.NotBefore = lim
	}
	if !f(&s, damaged) {
		return nil
	}
	return g.write(s)
}

// read returns the state; a file that is there but does not parse counts
// as a lockout starting now.
func (g *Guard) read(now time.Time) (state, bool) {
	var s state
	b, err := os.ReadFile(filepath.Join(g.dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, false
	}
	if err != nil || json.Unmarshal(b, &s) != nil || s.Failures < 0 {
		return state{Failures: g.cfg.MaxFailures, LastFailure: now, LockedUntil: now.Add(g.cfg.Lockout)}, true
	}
	return s, false
}

// write replaces the state file whole (a new file, synced, renamed over
// the old), so a power cut leaves the old state or the new one.
func (g *Guard) write(s state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	path := filepath.Join(g.dir, stateFile)
	tmp, err := os.CreateTemp(g.dir, stateFile+".*")
	if err != nil {
		return fmt.Errorf("console: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("console: write %s: %w", path, err)
	}
	return syncDir(g.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync() // not every file system syncs directories
	return nil
}

// lock takes the exclusive lock beside the state.
func (g *Guard) lock() (unlock func(), err error) {
	path := filepath.Join(g.dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("console: lock %s: %w", path, err)
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("console: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}
