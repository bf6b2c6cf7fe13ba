package hostlog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// fakeSpool is the Sink and the Checkpoints of the tests: it keeps what
// was emitted and the last checkpoint of each source, like the spool.
type fakeSpool struct {
	mu       sync.Mutex
	lines    []line
	cps      map[string][]byte
	batches  []int         // events per Emit
	encoded  []int         // encoded bytes per Emit, as the gateway would spool them
	failNext int           // so many coming Emits fail
	cpErr    error         // returned by Checkpoint
	delay    time.Duration // each Emit takes so long (a slow spool)
	maxMsg   int           // the longest message emitted
	id, host string        // the stamp Emit encodes with; empty: the longest allowed
}

// line is one emitted record, reduced to what the tests check.
type line struct {
	Msg         string
	Path        string
	Offset      uint64
	Truncated   bool
	Part        uint64
	Lines       uint64
	Continued   bool
	InvalidUTF8 bool
	Fingerprint string
}

func newFakeSpool() *fakeSpool { return &fakeSpool{cps: map[string][]byte{}} }

func (s *fakeSpool) Emit(ctx context.Context, evs []event.Event, cps []spool.Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if s.failNext > 0 {
		s.failNext--
		return errors.New("spool full")
	}
	if len(cps) == 0 || len(evs) > 0 && len(cps) != 1 {
		return errors.New("fake: want one checkpoint with records, some without")
	}
	size := 0
	for _, e := range evs {
		// What the gateway adds before it encodes: the longest id and
		// host it allows, and a time.
		e.Gateway, e.Host, e.Time = strings.Repeat("g", 64), strings.Repeat("h", 253), 1
		if s.id != "" {
			e.Gateway, e.Host = s.id, s.host
		}
		b, err := e.AppendBinary(nil)
		if err != nil {
			return err
		}
		size += len(b)
	}
	s.encoded = append(s.encoded, size)
	for _, e := range evs {
		if e.Kind != event.KindLog || e.Severity != event.SevInfo || e.Time != 0 {
			return errors.New("fake: unexpected record header")
		}
		l := line{Msg: e.Message}
		s.maxMsg = max(s.maxMsg, len(e.Message))
		for _, f := range e.Fields {
			switch f.Key {
			case "path":
				l.Path = f.Value.Str
			case "offset":
				l.Offset = f.Value.Num
			case "truncated":
				l.Truncated = f.Value.Bool()
			case "part":
				l.Part = f.Value.Num
			case "lines":
				l.Lines = f.Value.Num
			case "continued":
				l.Continued = f.Value.Bool()
			case "invalid_utf8":
				l.InvalidUTF8 = f.Value.Bool()
			case "fingerprint":
				l.Fingerprint = f.Value.Str
			default:
				return errors.New("fake: unexpected field " + f.Key)
			}
		}
		s.lines = append(s.lines, l)
	}
	for _, c := range cps {
		s.cps[c.Source] = append([]byte(nil), c.Position...)
	}
	s.batches = append(s.batches, len(evs))
	return nil
}

func (s *fakeSpool) Checkpoint(source string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cpErr != nil {
		return nil, s.cpErr
	}
	return s.cps[source], nil
}

// Checkpoints lists checkpoints as the spool does.
func (s *fakeSpool) Checkpoints(prefix string, fn func(source string, position []byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cpErr != nil {
		return s.cpErr
	}
	for _, k := range sortedKeys(s.cps) {
		if strings.HasPrefix(k, prefix) {
			if err := fn(k, s.cps[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// pathOnly hides fakeSpool's Checkpoints: a store that cannot list.
type pathOnly struct{ s *fakeSpool }

func (p pathOnly) Checkpoint(source string) ([]byte, error) { return p.s.Checkpoint(source) }

func (s *fakeSpool) got() []line {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]line(nil), s.lines...)
}

func (s *fakeSpool) msgs() []string {
	var m []string
	for _, l := range s.got() {
		m = append(m, l.Msg)
	}
	return m
}

func (s *fakeSpool) checkpoint(t *testing.T, path string) position {
	t.Helper()
	b, err := s.Checkpoint(checkpointPrefix + path)
	require.NoError(t, err)
	require.NotNil(t, b, "no checkpoint for %s", path)
	p, err := parsePosition(b)
	require.NoError(t, err)
	return p
}

// waitMsgs waits until exactly want was emitted, then a few more polls
// to catch anything emitted twice.
func (s *fakeSpool) waitMsgs(t *testing.T, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	require.Eventually(t, func() bool { return len(s.got()) >= len(want) }, 5*time.Second, 5*time.Millisecond,
		"emitted %q, want %q", s.msgs(), want)
	time.Sleep(5 * testPoll)
	got := s.msgs()
	if got == nil {
		got = []string{}
	}
	require.Equal(t, want, got)
}

const testPoll = 10 * time.Millisecond

func testConfig(globs ...string) FileConfig {
	c := DefaultFileConfig()
	c.Name = "test"
	c.Paths = globs
	c.StartAt = StartAtBeginning
	c.PollInterval = testPoll
	return c
}

// forWatch runs f once with inotify and once polling.
func forWatch(t *testing.T, f func(t *testing.T, watch string)) {
	for _, w := range []string{WatchAuto, WatchPoll} {
		t.Run(w, func(t *testing.T) { f(t, w) })
	}
}

// start runs a Tailer for cfg on s until the returned stop is called (or
// the test ends).
func start(t *testing.T, cfg FileConfig, s *fakeSpool) (tl *Tailer, stop func()) {
	t.Helper()
	return startWith(t, cfg, s, s)
}

func startWith(t *testing.T, cfg FileConfig, s *fakeSpool, cps Checkpoints) (tl *Tailer, stop func()) {
	t.Helper()
	tl, err := NewTailer(cfg, cps, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx, s) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return tl, stop
}

// waitFollowing waits until the tailer follows n files, so a test knows
// the first scan is behind it.
func waitFollowing(t *testing.T, tl *Tailer, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(tl.Status().Files) == n }, 5*time.Second, 5*time.Millisecond)
}

func write(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func tempLog(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(t.TempDir(), name)
}
