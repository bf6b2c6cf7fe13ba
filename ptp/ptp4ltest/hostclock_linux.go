package ptp4ltest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// HoldHostClock takes the host-wide lock for a test that steers
// CLOCK_REALTIME (StartSlave takes it), waiting up to 2 min while another
// test, in this process or another, holds it; then it saves the kernel
// clock's adjustments, and when t ends puts them back and releases the
// lock. Without the lock two tests' restores could interleave and leave
// the first one's frequency behind. A test holds it once: a second call
// in the same test waits for the first to be released, which is at the
// test's end.
func HoldHostClock(ctx context.Context, t testing.TB) {
	t.Helper()
	path := filepath.Join(os.TempDir(), "weir-ptp4ltest-clock.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("ptp4ltest: host clock lock: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			t.Fatalf("ptp4ltest: host clock lock %s: %v", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			t.Fatalf("ptp4ltest: host clock lock %s: another ptp4l slave still runs: %v", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	var saved unix.Timex // modes 0: read only
	if _, err := unix.Adjtimex(&saved); err != nil {
		f.Close()
		t.Fatalf("ptp4ltest: read kernel clock adjustments: %v", err)
	}
	t.Cleanup(func() {
		defer f.Close() // releases the lock
		tx := unix.Timex{
			Modes:    unix.ADJ_FREQUENCY | unix.ADJ_STATUS | unix.ADJ_MAXERROR | unix.ADJ_ESTERROR,
			Freq:     saved.Freq,
			Status:   saved.Status,
			Maxerror: saved.Maxerror,
			Esterror: saved.Esterror,
		}
		if _, err := unix.Adjtimex(&tx); err != nil {
			t.Errorf("ptp4ltest: restore kernel clock adjustments (freq %d, status %#x): %v", saved.Freq, saved.Status, err)
		}
		if tx.Tai != saved.Tai {
			tai := unix.Timex{Modes: unix.ADJ_TAI}
			setInt(&tai.Constant, saved.Tai)
			if _, err := unix.Adjtimex(&tai); err != nil {
				t.Errorf("ptp4ltest: restore kernel TAI offset %d: %v", saved.Tai, err)
			}
		}
	})
}

// setInt sets a Timex field whose width differs between architectures.
func setInt[T ~int32 | ~int64](dst *T, v int32) { *dst = T(v) }
