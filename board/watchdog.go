package board

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Watchdog is an open Linux watchdog device (/dev/watchdog). Once open,
// the board resets unless Kick is called within the timeout; Close with
// magic stops it (the driver disarms on the magic character 'V', unless
// the kernel was built with nowayout).
type Watchdog struct {
	f       *os.File
	device  string
	timeout time.Duration // as the driver took it; 0: not settable (not a watchdog driver)
	setErr  string        // why the timeout could not be set

	mu    sync.Mutex // serializes writes with Close
	kicks atomic.Uint64
	last  atomic.Int64 // unix ns of the last kick
}

// OpenWatchdog opens device and sets its timeout (WDIOC_SETTIMEOUT, whole
// seconds; the driver may round or clamp it: Timeout says what it took).
// As periph's drivers report "not applicable" apart from "failed", a
// device that does not exist gives present false and no error: the caller
// says so once and runs on. A device that exists but cannot be opened
// (busy: another process, such as systemd's RuntimeWatchdogSec, holds it;
// or permission) is an error.
func OpenWatchdog(device string, timeout time.Duration) (w *Watchdog, present bool, err error) {
	f, err := os.OpenFile(device, os.O_WRONLY|syscall.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return nil, true, fmt.Errorf("board: watchdog %s: held by another process (a watchdog daemon, or systemd's RuntimeWatchdogSec): %w", device, err)
		}
		return nil, true, fmt.Errorf("board: watchdog %s: %w", device, err)
	}
	w = &Watchdog{f: f, device: device}
	got, err := setWatchdogTimeout(f, timeout)
	if err != nil {
		// A FIFO or a plain file (tests), or a driver without the ioctl:
		// kicks still work, the timeout is the driver's own.
		w.setErr = err.Error()
	} else {
		w.timeout = got
	}
	w.kickLocked()
	return w, true, nil
}

// Kick restarts the watchdog's countdown. Any byte but 'V' is a keepalive
// (and clears a 'V' written earlier).
func (w *Watchdog) Kick() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return fmt.Errorf("board: watchdog %s: closed", w.device)
	}
	return w.kickLocked()
}

func (w *Watchdog) kickLocked() error {
	if _, err := w.f.Write([]byte{'k'}); err != nil {
		return fmt.Errorf("board: watchdog %s: kick: %w", w.device, err)
	}
	w.kicks.Add(1)
	w.last.Store(time.Now().UnixNano())
	return nil
}

// Close closes the device. With magic it first writes 'V', so the driver
// stops counting: a clean shutdown does not reset the board. Without, the
// board resets after the timeout unless someone opens and kicks it again.
func (w *Watchdog) Close(magic bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	var err error
	if magic {
		if _, werr := w.f.Write([]byte{'V'}); werr != nil {
			err = fmt.Errorf("board: watchdog %s: magic close: %w", w.device, werr)
		}
	}
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("board: watchdog %s: %w", w.device, cerr)
	}
	w.f = nil
	return err
}

// WatchdogStatus is the device as `weir status` shows it.
type WatchdogStatus struct {
	Device   string    `json:"device"`
	Timeout  string    `json:"timeout,omitempty"` // as the driver took it
	Note     string    `json:"note,omitempty"`    // why the timeout is the driver's own
	Kicks    uint64    `json:"kicks"`             // since open
	LastKick time.Time `json:"last_kick,omitzero"`
}

// Status takes a snapshot.
func (w *Watchdog) Status() WatchdogStatus {
	st := WatchdogStatus{Device: w.device, Kicks: w.kicks.Load(), Note: w.setErr}
	if w.timeout > 0 {
		st.Timeout = w.timeout.String()
	}
	if ns := w.last.Load(); ns != 0 {
		st.LastKick = time.Unix(0, ns)
	}
	return st
}

// Device is the device's path.
func (w *Watchdog) Device() string { return w.device }
