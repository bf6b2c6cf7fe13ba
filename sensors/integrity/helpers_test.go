package integrity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

var _ Store = (*spool.Spool)(nil)

// spoolSink is the gateway's Emit in small: it encodes the records and
// appends them with the checkpoints to a real spool in one call.
type spoolSink struct {
	sp *spool.Spool

	mu       sync.Mutex
	calls    int
	failFrom int // from this call on (1-based), Emit fails; 0 never
}

func (s *spoolSink) Emit(ctx context.Context, evs []event.Event, cps []spool.Checkpoint) error {
	s.mu.Lock()
	s.calls++
	fail := s.failFrom > 0 && s.calls >= s.failFrom
	s.mu.Unlock()
	if fail {
		return errors.New("sink: refused")
	}
	entries := make([]spool.Entry, len(evs))
	for i := range evs {
		e := evs[i]
		e.Gateway, e.Host, e.Time = "gw", "host", time.Now().UnixNano()
		b, err := e.MarshalBinary()
		if err != nil {
			return err
		}
		class := spool.ClassNormal
		if e.Priority == event.PriorityCritical {
			class = spool.ClassCritical
		}
		entries[i] = spool.Entry{Class: class, Data: b}
	}
	_, err := s.sp.Append(ctx, entries, cps)
	return err
}

// harness runs a Monitor over a temporary tree against a real spool.
type harness struct {
	t        *testing.T
	tree     string // the watched directory
	spoolDir string
	sp       *spool.Spool
	sink     *spoolSink
	m        *Monitor
	cancel   context.CancelFunc
	done     chan error
	cursor   uint64
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, tree: filepath.Join(t.TempDir(), "tree"), spoolDir: t.TempDir()}
	require.NoError(t, os.Mkdir(h.tree, 0o755))
	t.Cleanup(h.stop)
	return h
}

// testConfig watches the tree with a short settle and no timed rescans.
func (h *harness) testConfig() Config {
	return Config{Paths: []string{h.tree}, Settle: 50 * time.Millisecond, RescanInterval: time.Hour}
}

// start opens the spool if need be, runs a monitor and waits for its
// first scan to end.
func (h *harness) start(cfg Config, self ...string) {
	h.t.Helper()
	h.run(cfg, self...)
	h.waitFor("first scan", func() bool { return h.m.Status().Scans >= 1 })
}

// run opens the spool if need be and runs a monitor.
func (h *harness) run(cfg Config, self ...string) {
	h.t.Helper()
	if h.sp == nil {
		sp, err := spool.Open(spool.Options{Dir: h.spoolDir, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(h.t, err)
		h.sp = sp
		h.sink = &spoolSink{sp: sp}
	}
	m, err := newMonitor(cfg, self, h.sp, nil)
	require.NoError(h.t, err)
	h.m = m
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- m.Run(ctx, h.sink) }()
}

// halt ends the monitor and leaves the spool open.
func (h *harness) halt() {
	if h.cancel != nil {
		h.cancel()
		require.NoError(h.t, <-h.done)
		h.cancel = nil
	}
}

// stop ends the monitor and closes the spool, as a gateway shutdown does.
func (h *harness) stop() {
	h.halt()
	if h.sp != nil {
		require.NoError(h.t, h.sp.Close())
		h.sp = nil
	}
}

// waitFor polls cond for up to 20 s; it is a wait, not a timing assertion.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; status %+v", what, h.m.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// read returns the records spooled since the last read, decoded.
func (h *harness) read() []event.Event {
	h.t.Helper()
	var out []event.Event
	for {
		recs, err := h.sp.Read(h.cursor, 1000, 0)
		require.NoError(h.t, err)
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			var e event.Event
			require.NoError(h.t, e.UnmarshalBinary(r.Data))
			out = append(out, e)
			h.cursor = r.Seq + 1
		}
	}
}

// settled waits until nothing is pending, then for one full rescan, so
// whatever the change produced has been committed; it returns the records
// since the last read.
func (h *harness) settled() []event.Event {
	h.t.Helper()
	h.waitFor("pending paths", func() bool { return h.m.Status().Pending == 0 })
	scans := h.m.Status().Scans
	h.m.Rescan()
	h.waitFor("a rescan", func() bool { return h.m.Status().Scans > scans })
	return h.read()
}

// awaitRecords waits until n records arrived without asking for a rescan
// (the watch must find the change), then settles and returns them all.
func (h *harness) awaitRecords(n int) []event.Event {
	h.t.Helper()
	var got []event.Event
	h.waitFor("records from the watch", func() bool {
		got = append(got, h.read()...)
		return len(got) >= n
	})
	return append(got, h.settled()...)
}

func (h *harness) path(rel string) string { return filepath.Join(h.tree, rel) }

func (h *harness) write(rel, content string) {
	h.t.Helper()
	p := h.path(rel)
	require.NoError(h.t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(h.t, os.WriteFile(p, []byte(content), 0o644))
}

func fields(e event.Event) map[string]event.Value {
	m := map[string]event.Value{}
	for _, f := range e.Fields {
		m[f.Key] = f.Value
	}
	return m
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// change is a record reduced to what most tests check.
type change struct{ Path, Change string }

func changes(evs []event.Event) []change {
	var out []change
	for _, e := range evs {
		f := fields(e)
		out = append(out, change{f["path"].Str, f["change"].Str})
	}
	return out
}

// entries returns the baseline's entries by path, as their type.
func (h *harness) entries() map[string]FileType {
	h.t.Helper()
	out := map[string]FileType{}
	require.NoError(h.t, h.sp.Checkpoints(sourcePrefix, func(source string, pos []byte) error {
		e, err := decodeEntry(pos)
		require.NoError(h.t, err, source)
		out[source[len(sourcePrefix):]] = e.Type
		return nil
	}))
	return out
}
