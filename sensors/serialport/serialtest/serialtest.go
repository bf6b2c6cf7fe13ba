package serialtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// PTYPair starts socat linking two new ptys and returns their paths. What
// is written to one is read from the other. The test is skipped if socat is
// not installed (scripts/deps.sh installs it). socat is stopped when the
// test ends.
func PTYPair(t testing.TB) (a, b string) {
	t.Helper()
	socat, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("socat is not installed (scripts/deps.sh installs it): no pty pair for a serial line")
	}
	dir := t.TempDir()
	a, b = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, socat, "-b", "4096",
		"pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start socat: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, ea := os.Stat(a)
		_, eb := os.Stat(b)
		if ea == nil && eb == nil {
			return a, b
		}
		if time.Now().After(deadline) {
			t.Fatalf("socat did not create %s and %s within 5s", a, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
