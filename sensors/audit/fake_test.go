package audit

import (
	"context"
	"errors"
	"fmt"
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
// was emitted and the last checkpoint of each source, like the spool:
// both or neither.
type fakeSpool struct {
	mu       sync.Mutex
	got      []got
	all      []event.Event // the records as emitted
	cps      map[string][]byte
	emits    int
	failNext int // so many coming Emits fail
	// crash, when set, is called with the number of this Emit (from 1)
	// before it is committed; it returns whether the Emit is refused
	// (a crash before the transaction) and may cancel the Run.
	crash func(n int) (refuse bool)
}

// got is one emitted record, reduced to what the tests compare.
type got struct {
	Path   string
	Offset uint64
	Types  string
	Msg    string
	Serial uint64
}

func (g got) String() string {
	return fmt.Sprintf("%s@%d:%s", filepath.Base(g.Path), g.Offset, g.Types)
}

func newFakeSpool() *fakeSpool { return &fakeSpool{cps: map[string][]byte{}} }

func (s *fakeSpool) Emit(ctx context.Context, evs []event.Event, cps []spool.Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	s.emits++
	if s.crash != nil && s.crash(s.emits) {
		return errors.New("crashed")
	}
	if s.failNext > 0 {
		s.failNext--
		return errors.New("spool full")
	}
	if len(cps) != 1 {
		return errors.New("fake: want one checkpoint per batch")
	}
	if len(evs)+len(cps) > spool.MaxAppendRecords {
		return fmt.Errorf("fake: %d records in one append", len(evs))
	}
	size := 0
	for _, e := range evs {
		// What the gateway adds before it encodes: the longest id and
		// host it allows, and a time.
		e.Gateway, e.Host, e.Time = strings.Repeat("g", 64), strings.Repeat("h", 253), 1
		b, err := e.AppendBinary(nil)
		if err != nil {
			return err
		}
		size += len(b)
	}
	if size > spool.MaxAppendBytes {
		return fmt.Errorf("fake: %d bytes in one append, more than the spool takes", size)
	}
	for _, e := range evs {
		if e.Kind != event.KindAudit || e.Time != 0 || e.Source == "" {
			return errors.New("fake: unexpected record header")
		}
		g := got{Msg: e.Message}
		for _, f := range e.Fields {
			switch f.Key {
			case "path":
				g.Path = f.Value.Str
			case "offset":
				g.Offset = f.Value.Num
			case "types":
				g.Types = f.Value.Str
			case "serial":
				g.Serial = f.Value.Num
			case "parse_error":
				g.Types = "ERR"
			}
		}
		s.got = append(s.got, g)
		s.all = append(s.all, e)
	}
	for _, c := range cps {
		s.cps[c.Source] = append([]byte(nil), c.Position...)
	}
	return nil
}

func (s *fakeSpool) Checkpoint(source string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cps[source], nil
}

// records returns the records emitted, whole.
func (s *fakeSpool) records() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.all...)
}

func (s *fakeSpool) events() []got {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]got(nil), s.got...)
}

func (s *fakeSpool) position(t *testing.T, path string) position {
	t.Helper()
	b, err := s.Checkpoint(checkpointPrefix + path)
	require.NoError(t, err)
	require.NotNil(t, b, "no checkpoint for %s", path)
	p, err := parsePosition(b)
	require.NoError(t, err)
	return p
}

// wait waits until n records were emitted, then a few polls more to
// catch any emitted twice, and returns them.
func (s *fakeSpool) wait(t *testing.T, n int) []got {
	t.Helper()
	require.Eventually(t, func() bool { return len(s.events()) >= n }, 10*time.Second, 2*time.Millisecond,
		"emitted %v, want %d", s.events(), n)
	time.Sleep(5 * testPoll)
	evs := s.events()
	require.Len(t, evs, n, "emitted %v", evs)
	return evs
}

const testPoll = 5 * time.Millisecond

func testConfig(path string) Config {
	c := DefaultConfig()
	c.Path = path
	c.PollInterval = testPoll
	c.EventTimeout = 4 * testPoll
	return c
}

// start runs a Reader for cfg on s until the returned stop is called (or
// the test ends).
func start(t *testing.T, cfg Config, s *fakeSpool) (*Reader, func()) {
	t.Helper()
	rd, err := New(cfg, s, nil)
	require.NoError(t, err)
	return rd, runReader(t, rd, s, context.Background())
}

func runReader(t *testing.T, rd *Reader, s *fakeSpool, ctx context.Context) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rd.Run(ctx, s) }()
	var once sync.Once
	stop := func() {
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
	return stop
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// want is what a log's lines give when read in one go, as got values.
func want(t testing.TB, path string, lines []string) []got {
	t.Helper()
	var w []got
	for _, ev := range eventsOf(t, lines, false) {
		g := got{Path: path, Msg: ev.Message}
		for _, f := range ev.Fields {
			switch f.Key {
			case "offset":
				g.Offset = f.Value.Num
			case "types":
				g.Types = f.Value.Str
			case "serial":
				g.Serial = f.Value.Num
			case "parse_error":
				g.Types = "ERR"
			}
		}
		w = append(w, g)
	}
	return w
}
