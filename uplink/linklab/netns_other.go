//go:build !linux

package linklab

import (
	"errors"
	"runtime"
)

func platformAvailable() error {
	return errors.New("linklab: network namespaces need Linux, not " + runtime.GOOS)
}

func processAlive(int) bool { return true }

func killProcess(int) {}

// Do needs Linux.
func (n Namespace) Do(func() error) error { return platformAvailable() }

func (l *Lab) makeWire() error { return platformAvailable() }
