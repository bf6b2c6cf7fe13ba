package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/hostlog"
	"github.com/weirgw/weir/spool"
)

// Health is the pipeline's health as the watchdogs see it: OK while the
// spool can be written (or holds for a known reason), every configured
// source runs and makes progress, and the admin socket answers. Only then
// are the hardware watchdog and systemd's kicked.
type Health struct {
	OK       bool      `json:"ok"`
	Checked  time.Time `json:"checked,omitzero"`
	Since    time.Time `json:"since,omitzero"` // of the current verdict
	Problems []string  `json:"problems,omitempty"`
	// SpoolProblem is the spool's part of Problems, for the spool LED.
	SpoolProblem string `json:"spool_problem,omitempty"`
	// Holding is a known reason the pipeline waits, which is not a fault:
	// the spool full for want of an uplink, or the disk full.
	Holding  string `json:"holding,omitempty"`
	Interval string `json:"interval"`
	// Watchdog is the hardware watchdog kicked on each healthy check; nil
	// when there is none (WatchdogNote says why).
	Watchdog     *board.WatchdogStatus `json:"watchdog,omitempty"`
	WatchdogNote string                `json:"watchdog_note,omitempty"`
	// Systemd is true under a unit with WatchdogSec: WATCHDOG=1 goes with
	// each kick.
	Systemd bool   `json:"systemd_watchdog"`
	Kicks   uint64 `json:"kicks"` // healthy checks since start
}

// healthState holds the last verdict.
type healthState struct {
	mu sync.Mutex
	h  Health
}

func (s *healthState) snapshot() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.h
	h.Problems = append([]string(nil), s.h.Problems...)
	return h
}

func (s *healthState) set(h Health) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

// sourceHealth tracks one configured source: its goroutine alive, its
// spool writes (a write that never returns is a wedge unless the spool is
// full), and optionally a check of its own schedule.
type sourceHealth struct {
	name  string
	alive atomic.Bool
	// stopping: a reload is stopping it to start its replacement; its
	// end is not a fault, but a spool write that hangs still is.
	stopping atomic.Bool
	// check reports a source stuck by its own measure ("" when fine); nil
	// for sources driven by their input, which may rightly be silent.
	check func(now time.Time, stall time.Duration) string

	// The spool's refusals when its current wait began; the health
	// check's alone.
	base    int64
	baseSet bool

	mu       sync.Mutex
	inflight int
	busy     time.Time // since when some Emit has been in flight
	done     time.Time // the last Emit that returned
}

func (h *sourceHealth) enter(now time.Time) {
	h.mu.Lock()
	if h.inflight == 0 {
		h.busy = now
	}
	h.inflight++
	h.mu.Unlock()
}

func (h *sourceHealth) leave(now time.Time) {
	h.mu.Lock()
	h.inflight--
	h.done = now
	h.mu.Unlock()
}

// waiting is how long the source has had a spool write in flight with
// none returning; 0 when it has none.
func (h *sourceHealth) waiting(now time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inflight == 0 {
		return 0
	}
	last := h.busy
	if h.done.After(last) {
		last = h.done
	}
	return now.Sub(last)
}

// trackedSink is a source's sink: the gateway's Emit, timed for health.
type trackedSink struct {
	g     *Gateway
	h     *sourceHealth
	input string // the name processors.inputs knows it by
}

func (s trackedSink) Emit(ctx context.Context, evs []event.Event, cps []spool.Checkpoint) error {
	s.h.enter(time.Now())
	defer s.h.leave(time.Now())
	_, err := s.g.emit(ctx, s.input, evs, cps)
	return err
}

// StampBytes tells the file tailer how much the gateway's stamp adds to
// each record (hostlog.StampSizer), so that its batches are sized to
// what they take in the spool.
func (s trackedSink) StampBytes() int { return s.g.StampBytes() }

var _ hostlog.StampSizer = trackedSink{}

// sourceSet is the sources the health check watches; a reload adds and
// drops them as it replaces parts.
type sourceSet struct {
	mu   sync.Mutex
	list []*sourceHealth
}

func (s *sourceSet) snapshot() []*sourceHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*sourceHealth(nil), s.list...)
}

// source registers a configured source for the health check and returns
// its sink.
func (g *Gateway) source(name string, check func(time.Time, time.Duration) string) (*sourceHealth, trackedSink) {
	h := &sourceHealth{name: name, check: check}
	g.sources.mu.Lock()
	g.sources.list = append(g.sources.list, h)
	g.sources.mu.Unlock()
	return h, trackedSink{g: g, h: h}
}

// dropSource stops watching h: its part was stopped by a reload.
func (g *Gateway) dropSource(h *sourceHealth) {
	g.sources.mu.Lock()
	defer g.sources.mu.Unlock()
	if i := slices.Index(g.sources.list, h); i >= 0 {
		g.sources.list = slices.Delete(g.sources.list, i, i+1)
	}
}

// healthTimings are the board section's watchdog timings, or their
// defaults without a board.
func (g *Gateway) healthTimings() (interval, stall time.Duration) {
	bc := board.DefaultConfig()
	if g.cfg.Board != nil {
		bc = g.cfg.Board.Effective()
	}
	return bc.Watchdog.Interval, bc.Watchdog.Stall
}

// runHealth checks health every interval (more often if systemd's
// WatchdogSec asks) and kicks the watchdogs while it is good. The
// hardware watchdog is opened here, once the pipeline runs, and left open
// when this returns: Run closes it with the magic character only after
// every part has stopped, so a shutdown that hangs still resets the board.
func (g *Gateway) runHealth(ctx context.Context) error {
	interval, stall := g.healthTimings()
	if d := g.notify.watchdog; d > 0 {
		// systemd wants a ping within WatchdogSec; two per period.
		interval = min(interval, d/2)
	}
	note := g.openWatchdog()
	probe := &spoolProbe{dir: filepath.Join(g.dataDir, "spool")}
	t := time.NewTicker(interval)
	defer t.Stop()
	prev := Health{OK: true}
	var kicks uint64
	hold := &holdWatch{}
	for {
		now := time.Now()
		h := g.checkHealth(ctx, now, stall, interval, probe, hold)
		if ctx.Err() != nil {
			return nil // the parts are stopping: not a verdict
		}
		h.Interval, h.WatchdogNote, h.Systemd = interval.String(), note, g.notify.watchdog > 0
		if h.OK {
			if wd := g.watchdog; wd != nil {
				if err := wd.Kick(); err != nil && ctx.Err() == nil {
					g.log.Error("watchdog kick failed", "err", err)
				}
			}
			g.notify.send("WATCHDOG=1")
			kicks++
		}
		h.Kicks = kicks
		if wd := g.watchdog; wd != nil {
			st := wd.Status()
			h.Watchdog = &st
		}
		h.Since = now
		if h.OK == prev.OK {
			h.Since = prev.Since
		}
		switch {
		case !h.OK && (prev.OK || len(h.Problems) != len(prev.Problems)):
			g.log.Error("unhealthy: watchdogs not kicked", "problems", h.Problems)
			g.notify.send("STATUS=unhealthy: " + h.Problems[0])
		case h.OK && !prev.OK:
			g.log.Info("healthy again: watchdogs kicked")
			g.notify.send("STATUS=running")
		}
		g.health.set(h)
		prev = h
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// openWatchdog opens the board's watchdog, if it names one, and returns
// what status should say when there is none. An absent device is said
// once; a present one that fails is logged as an error and not used (the
// pipeline runs on: a gateway that will not start is worse than one that
// cannot be reset).
func (g *Gateway) openWatchdog() string {
	if g.cfg.Board == nil {
		return "no board section"
	}
	dev := g.cfg.Board.WatchdogDevice()
	if dev == "" {
		if g.cfg.Board.Watchdog.Device == board.PinNone {
			return "board.watchdog.device: none"
		}
		return "board.watchdog.device not set, and profile " + g.cfg.Board.Profile + " has none"
	}
	timeout := g.cfg.Board.Effective().Watchdog.Timeout
	wd, present, err := board.OpenWatchdog(dev, timeout)
	switch {
	case !present:
		g.log.Warn("no watchdog device; running without a hardware watchdog", "device", dev)
		return "no " + dev
	case err != nil:
		g.log.Error("watchdog not used", "err", err)
		return err.Error()
	}
	st := wd.Status()
	g.log.Info("hardware watchdog armed", "device", dev, "timeout", st.Timeout, "note", st.Note)
	g.watchdog = wd
	return ""
}

// holdWatch follows the spool's refusals (appends that had to wait for
// room, counted when they start waiting) from check to check.
type holdWatch struct {
	prev, cur int64 // refused records at the previous and this check
}

// holding says why the spool makes sources wait, if it does: so little
// room is left that the largest append a source may make would wait
// (bulk waits from 90 %).
func (w *holdWatch) holding(st spool.Stats) string {
	w.prev = w.cur
	w.cur = 0
	for _, c := range st.Classes {
		w.cur += c.Refused
	}
	if st.MaxBytes <= 0 {
		return ""
	}
	largest := int64(spool.MaxAppendBytes) + spool.MaxAppendRecords*64
	if st.Used+largest >= st.MaxBytes/10*9 {
		return fmt.Sprintf("spool %.0f%% full: sources wait for the uplink", 100*float64(st.Used)/float64(st.MaxBytes))
	}
	return ""
}

// refusedSince says whether the spool refused an append since a source
// began the wait it is in: the base is the count at the check before the
// first one that saw it waiting. Called by the health check alone.
func (w *holdWatch) refusedSince(s *sourceHealth, waiting bool) bool {
	if !waiting {
		s.baseSet = false
		return false
	}
	if !s.baseSet {
		s.base, s.baseSet = w.prev, true
	}
	return w.cur > s.base
}

// checkHealth is one verdict.
func (g *Gateway) checkHealth(ctx context.Context, now time.Time, stall, interval time.Duration, probe *spoolProbe, hold *holdWatch) Health {
	h := Health{Checked: now}
	h.Holding = hold.holding(g.spool.Stats())
	// A check should end within the interval, so the next kick is not
	// late; but a probe needs some time on a busy disk.
	wait := max(interval/2, 500*time.Millisecond)
	if problem, holding := probe.check(now, wait); problem != "" {
		h.SpoolProblem = problem
		h.Problems = append(h.Problems, problem)
	} else if holding != "" {
		h.Holding = holding
	}
	for _, s := range g.sources.snapshot() {
		if !s.alive.Load() {
			if !s.stopping.Load() {
				h.Problems = append(h.Problems, s.name+": stopped")
			}
			continue
		}
		w := s.waiting(now)
		if hold.refusedSince(s, w > 0) || (w > 0 && h.Holding != "") {
			continue // held back by a full spool: known, not a wedge
		}
		if w >= stall {
			h.Problems = append(h.Problems, fmt.Sprintf("%s: a spool write has waited %s", s.name, w.Round(time.Millisecond)))
			continue
		}
		if s.check != nil {
			if p := s.check(now, stall); p != "" {
				h.Problems = append(h.Problems, p)
			}
		}
	}
	actx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := g.adminProbe.ask(actx, g.socket); err != nil && ctx.Err() == nil {
		h.Problems = append(h.Problems, "admin socket: "+err.Error())
	}
	h.OK = len(h.Problems) == 0
	return h
}

// adminProbe asks the admin socket for /v1/health as the CLI would, on a
// connection of its own each time (no keep-alive: a check every few
// seconds must not pile up idle connections).
type adminProbe struct {
	once   sync.Once
	client *http.Client
}

func (p *adminProbe) ask(ctx context.Context, socket string) error {
	p.once.Do(func() {
		p.client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			}}}
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://weir/v1/health", nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", socket, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return fmt.Errorf("%s: %w", socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", socket, resp.Status)
	}
	return nil
}

// spoolProbe writes, syncs and removes a small file in the spool's
// directory: what the spool's own commits need of the file system. A
// probe that does not finish in time (a hung disk, a frozen file system)
// is waited for across checks, never started twice.
type spoolProbe struct {
	dir string

	mu      sync.Mutex
	running bool
	started time.Time
	result  chan error
}

// check runs or awaits a probe for up to wait. A full disk is a known
// reason to hold (holding), not a fault.
func (p *spoolProbe) check(now time.Time, wait time.Duration) (problem, holding string) {
	p.mu.Lock()
	if !p.running {
		p.running, p.started, p.result = true, now, make(chan error, 1)
		go func(res chan<- error) { res <- p.write() }(p.result)
	}
	res, started := p.result, p.started
	p.mu.Unlock()
	select {
	case err := <-res:
		p.mu.Lock()
		p.running = false
		p.mu.Unlock()
		switch {
		case err == nil:
			return "", ""
		case errors.Is(err, syscall.ENOSPC):
			return "", "disk full under " + p.dir
		}
		return "spool: cannot write " + p.dir + ": " + err.Error(), ""
	case <-time.After(wait):
		return fmt.Sprintf("spool: a write in %s has not finished for %s", p.dir, time.Since(started).Round(time.Millisecond)), ""
	}
}

func (p *spoolProbe) write() error {
	name := filepath.Join(p.dir, ".health-probe")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte{'w'})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}
