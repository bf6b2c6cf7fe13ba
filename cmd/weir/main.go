// Command weir is the gateway firmware: the daemon (`weir run`) and the
// diagnostics that talk to it.
package main

import "os"

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRoot().Execute(); err != nil {
		printf(os.Stderr, "weir: %v\n", err)
		os.Exit(1)
	}
}
