// Command weir-bench measures Weir's parts and prints tables; `make bench`
// runs it. It is a measuring tool, not part of the firmware.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{Use: "weir-bench", Short: "Measure Weir's parts", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newSpoolCmd(), newHoldCmd(), newLinkCmd(), newTailCmd(), newE2ECmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "weir-bench:", err)
		os.Exit(1)
	}
}
