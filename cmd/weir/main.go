// Command weir is the gateway firmware: the daemon (`weir run`) and the
// diagnostics that talk to it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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
	var quiet exitStatus
	if errors.As(err, &quiet) {
		return int(quiet)
	}
	// One problem a line: a configuration error lists each with its
	// place, and printf would fold them into one line of "\n".
	_ = writeText(stderr, "weir: "+strings.TrimRight(err.Error(), "\n")+"\n")
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return exitFailed
}

// exitStatus ends a command that printed its own report with that status
// and nothing more on stderr (weir test config: 1 invalid, 2 warnings).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
