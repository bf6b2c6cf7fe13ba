package console

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func testGuardConfig() Config {
	c := DefaultConfig()
	c.MaxFailures, c.Lockout, c.FailureDelay = 3, 10*time.Minute, time.Second
	return c
}

func TestGuardDelayGrowsThenLocks(t *testing.T) {
	dir := t.TempDir()
	g, err := OpenGuard(dir, testGuardConfig())
	require.NoError(t, err)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	v, err := g.Check(t0)
	require.NoError(t, err)
	require.Equal(t, Verdict{}, v)

	v, err = g.Failed(t0)
	require.NoError(t, err)
	require.Equal(t, 1, v.Failures)
	require.Equal(t, t0.Add(time.Second), v.NotBefore, "first delay: failure_delay")
	require.False(t, v.Locked)

	t1 := t0.Add(3 * time.Second)
	v, err = g.Failed(t1)
	require.NoError(t, err)
	require.Equal(t, t1.Add(2*time.Second), v.NotBefore, "doubled")

	t2 := t1.Add(5 * time.Second)
	v, err = g.Failed(t2)
	require.NoError(t, err)
	require.True(t, v.Locked)
	require.Equal(t, t2.Add(10*time.Minute), v.LockedUntil)
	require.Equal(t, 3, v.Failures)

	// A new process (the console restarted) finds the lockout.
	g2, err := OpenGuard(dir, testGuardConfig())
	require.NoError(t, err)
	v, err = g2.Check(t2.Add(9 * time.Minute))
	require.NoError(t, err)
	require.True(t, v.Locked)

	// It ends, and the count with it.
	v, err = g2.Check(t2.Add(10 * time.Minute))
	require.NoError(t, err)
	require.Equal(t, Verdict{}, v)
	v, err = g2.Failed(t2.Add(11 * time.Minute))
	require.NoError(t, err)
	require.Equal(t, 1, v.Failures)
}

func TestGuardSuccessAndQuietSpellClear(t *testing.T) {
	g, err := OpenGuard(t.TempDir(), testGuardConfig())
	require.NoError(t, err)
	t0 := time.Now()
	_, err = g.Failed(t0)
	require.NoError(t, err)
	require.NoError(t, g.Succeeded(t0.Add(2*time.Second)))
	v, err := g.Failed(t0.Add(3 * time.Second))
	require.NoError(t, err)
	require.Equal(t, 1, v.Failures, "a good login clears the count")

	_, err = g.Failed(t0.Add(5 * time.Second))
	require.NoError(t, err)
	v, err = g.Failed(t0.Add(5*time.Second + 10*time.Minute))
	require.NoError(t, err)
	require.Equal(t, 1, v.Failures, "failures a lockout apart do not add up")
}

func TestGuardDamagedStateLocks(t *testing.T) {
	dir := t.TempDir()
	g, err := OpenGuard(dir, testGuardConfig())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, stateFile), []byte("{\"failures\": 2, \"last"), 0o600))
	now := time.Now()
	v, err := g.Check(now)
	require.NoError(t, err)
	require.True(t, v.Damaged)
	require.True(t, v.Locked)
	require.WithinDuration(t, now.Add(10*time.Minute), v.LockedUntil, time.Second)
	// The lockout was written back: it holds without the damage.
	v, err = g.Check(now.Add(time.Minute))
	require.NoError(t, err)
	require.False(t, v.Damaged)
	require.True(t, v.Locked)
}

func TestGuardClockSetBack(t *testing.T) {
	g, err := OpenGuard(t.TempDir(), testGuardConfig())
	require.NoError(t, err)
	now := time.Now()
	for i := 0; i < 3; i++ {
		_, err = g.Failed(now.Add(24 * time.Hour)) // the clock was a day ahead
		require.NoError(t, err)
	}
	v, err := g.Check(now)
	require.NoError(t, err)
	require.True(t, v.Locked)
	require.Equal(t, now.Add(10*time.Minute), v.LockedUntil, "never longer than lockout from now")
}

func TestGuardUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes anywhere; a file where the directory should be
		// fails for everyone.
		dir := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(dir, nil, 0o600))
		_, err := OpenGuard(dir, testGuardConfig())
		require.ErrorContains(t, err, "state directory")
		return
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o500))
	_, err := OpenGuard(filepath.Join(dir, "console"), testGuardConfig())
	require.ErrorContains(t, err, "state directory")
}

// TestGuardConcurrentConsoles: two consoles failing at once count every
// failure (the lock makes each read-modify-write whole).
func TestGuardConcurrentConsoles(t *testing.T) {
	dir := t.TempDir()
	cfg := testGuardConfig()
	cfg.MaxFailures = 100
	var wg sync.WaitGroup
	now := time.Now()
	for range 2 {
		g, err := OpenGuard(dir, cfg)
		require.NoError(t, err)
		wg.Go(func() {
			for range 20 {
				_, err := g.Failed(now)
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	g, err := OpenGuard(dir, cfg)
	require.NoError(t, err)
	v, err := g.Check(now)
	require.NoError(t, err)
	require.Equal(t, 40, v.Failures)
}
