// Command weir-collector is the head-end: it receives records from
// gateways over mutual TLS and writes them to a sink, and it provisions
// the certificates gateways and collectors use (`weir-collector pki`).
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"
)

// errSilentExit ends with status 1, having printed what went wrong.
var errSilentExit = errors.New("failed")

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "weir-collector",
		Short:         "Weir head-end collector",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	// The same line as `weir --version` and `weir version`.
	root.SetVersionTemplate("{{.Name}} {{.Version}} " + runtime.GOOS + "/" + runtime.GOARCH + " " + runtime.Version() + "\n")
	root.AddCommand(newRunCmd(), newPKICmd(), newFleetCmd(), newVerifyCmd(), newProveCmd(), newStatusCmd())
	if err := root.Execute(); err != nil {
		if errors.Is(err, errSilentExit) {
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "weir-collector:", err)
		os.Exit(1)
	}
}
