package linklab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

func platformAvailable() error { return nil }

func processAlive(pid int) bool {
	return pid > 0 && !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func killProcess(pid int) {
	if pid != os.Getpid() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Do runs fn on an OS thread that has entered the namespace, for fn to
// open sockets there: a socket belongs to the namespace it was made in,
// whichever thread uses it later. fn must not start goroutines that open
// sockets. The thread returns to its own namespace before it is handed back
// to the Go scheduler; if it cannot, it is never handed back (the runtime
// ends it), so no other goroutine ever runs in the namespace by accident.
func (n Namespace) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("linklab: note own namespace: %w", err)
			return
		}
		defer home.Close()
		f, err := os.Open(filepath.Join(netnsDir, n.Name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("linklab: open namespace %s: %w", n.Name, err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("linklab: enter namespace %s: %w", n.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("linklab: leave namespace %s: %w", n.Name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
