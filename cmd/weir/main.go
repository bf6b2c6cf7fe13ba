// Command weir is the gateway firmware: the daemon (`weir run`) and the
// diagnostics that talk to it.
package main

import (
	"os"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRoot().Execute(); err != nil {
		// One problem a line: a configuration error lists each with its
		// place, and printf would fold them into one line of "\n".
		_ = writeText(os.Stderr, "weir: "+strings.TrimRight(err.Error(), "\n")+"\n")
		os.Exit(1)
	}
}
