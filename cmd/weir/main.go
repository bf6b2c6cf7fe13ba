// Command weir is the gateway firmware: the daemon (`weir run`) and the
// diagnostics that talk to it.
package main

import (
	"errors"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses: 1 for a command that failed, 2 for a command line that is
// wrong (an unknown command or flag, a missing or extra argument), as
// with most Unix tools. An error may choose another status by having an
// ExitCode method.
const (
	exitFailed = 1
	exitUsage  = 2
)

// execute runs the command line args and returns the exit status.
func execute(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	printf(stderr, "weir: %v\n", err)
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return exitFailed
}
