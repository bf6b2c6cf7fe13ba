package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"unicode/utf8"
)

// logRing keeps the daemon's most recent log lines for the console's
// `logs` (GET /v1/logs): a technician at the serial port sees why the
// gateway is unhappy without a shell or the journal. Bounded in lines and
// in bytes a line; it holds what the log holds, and secrets are never
// logged.
type logRing struct {
	mu    sync.Mutex
	lines []string // a circle of cap(lines) once full
	next  int      // where the next line goes once full
	total uint64   // lines ever written
}

const (
	logRingLines   = 500
	logRingLineMax = 1024
)

func newLogRing(n int) *logRing { return &logRing{lines: make([]string, 0, n)} }

// Write takes one formatted line (slog's text handler writes each record
// in one call).
func (r *logRing) Write(p []byte) (int, error) {
	n := len(p)
	p = bytes.TrimRight(p, "\n")
	if len(p) > logRingLineMax {
		cut := logRingLineMax
		for cut > 0 && !utf8.RuneStart(p[cut]) {
			cut--
		}
		p = append(p[:cut:cut], " ..."...)
	}
	line := string(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if len(r.lines) < cap(r.lines) {
		r.lines = append(r.lines, line)
		return n, nil
	}
	r.lines[r.next] = line
	r.next = (r.next + 1) % len(r.lines)
	return n, nil
}

// Logs is the answer of GET /v1/logs.
type Logs struct {
	Lines []string `json:"lines"`
	// Total counts every line logged since start; Total minus what Lines
	// holds fell out of the ring or was not asked for.
	Total uint64 `json:"total"`
}

// last returns the newest n lines, oldest first.
func (r *logRing) last(n int) Logs {
	r.mu.Lock()
	defer r.mu.Unlock()
	n = min(n, len(r.lines))
	out := make([]string, 0, n)
	for i := len(r.lines) - n; i < len(r.lines); i++ {
		out = append(out, r.lines[(r.next+i)%len(r.lines)])
	}
	return Logs{Lines: out, Total: r.total}
}

// teeHandler hands each record to the daemon's own handler and to the
// ring. The ring keeps info and above whatever log.level says, so a
// quiet log (level warn) still tells a technician what happened.
type teeHandler struct {
	next, ring slog.Handler
}

func newTeeHandler(next slog.Handler, r *logRing) slog.Handler {
	return teeHandler{next: next, ring: slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelInfo})}
}

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l) || h.ring.Enabled(ctx, l)
}

func (h teeHandler) Handle(ctx context.Context, rec slog.Record) error {
	if h.ring.Enabled(ctx, rec.Level) {
		_ = h.ring.Handle(ctx, rec.Clone())
	}
	if h.next.Enabled(ctx, rec.Level) {
		return h.next.Handle(ctx, rec)
	}
	return nil
}

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{next: h.next.WithAttrs(as), ring: h.ring.WithAttrs(as)}
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{next: h.next.WithGroup(name), ring: h.ring.WithGroup(name)}
}
