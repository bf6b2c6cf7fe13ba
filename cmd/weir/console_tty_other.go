//go:build !unix

package main

import (
	"errors"
	"os"
)

// openTTY: serial lines are served on Unix only; stdin works everywhere.
func openTTY(string) (*os.File, func(), error) {
	return nil, nil, errors.New("--tty is supported on Unix only")
}
