//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/term"
)

// openTTY opens a serial line for the console, never as the process's
// controlling terminal (a hang-up ends a session, not the console), in
// raw mode; restore puts its settings back. The descriptor is reached
// through SyscallConn, not Fd, which would make it blocking: closing the
// file must end a read still waiting on it.
func openTTY(dev string) (*os.File, func(), error) {
	f, err := os.OpenFile(dev, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	var old *term.State
	var rawErr error
	if err := rc.Control(func(fd uintptr) { old, rawErr = term.MakeRaw(int(fd)) }); err != nil {
		rawErr = err
	}
	if rawErr != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: raw mode: %w (is it a terminal?)", dev, rawErr)
	}
	return f, func() { _ = rc.Control(func(fd uintptr) { _ = term.Restore(int(fd), old) }) }, nil
}
