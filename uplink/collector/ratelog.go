package collector

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rateLog logs at most burst lines of each kind per window; lines beyond
// are dropped and their number is given in the next line of that kind
// ("suppressed"). Refusals are what a hostile peer can make the collector
// write, so they go through it; the kinds are a fixed set, so the map
// stays small.
type rateLog struct {
	log   *slog.Logger
	every time.Duration
	burst int
	now   func() time.Time
	mu    sync.Mutex
	kinds map[string]*logWindow
}

type logWindow struct {
	start      time.Time
	n          int
	suppressed int
}

func newRateLog(log *slog.Logger, every time.Duration, burst int) *rateLog {
	return &rateLog{log: log, every: every, burst: burst, now: time.Now, kinds: map[string]*logWindow{}}
}

// logAt writes msg of kind at level unless the kind's budget for this
// window is spent.
func (r *rateLog) logAt(level slog.Level, kind, msg string, args ...any) {
	r.mu.Lock()
	now := r.now()
	w := r.kinds[kind]
	if w == nil {
		w = &logWindow{start: now}
		r.kinds[kind] = w
	}
	if now.Sub(w.start) >= r.every {
		w.start, w.n = now, 0
	}
	if w.n >= r.burst {
		w.suppressed++
		r.mu.Unlock()
		return
	}
	w.n++
	suppressed := w.suppressed
	w.suppressed = 0
	r.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	r.log.Log(context.Background(), level, msg, args...)
}

func (r *rateLog) warn(kind, msg string, args ...any)  { r.logAt(slog.LevelWarn, kind, msg, args...) }
func (r *rateLog) error(kind, msg string, args ...any) { r.logAt(slog.LevelError, kind, msg, args...) }
