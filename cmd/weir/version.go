package main

import (
	"runtime"

	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the firmware version (as --version does)",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			printf(cmd.OutOrStdout(), "weir %s %s\n", version, platform())
		},
	}
}

// platform is what the version line says after the version: the target
// and the Go release it was built with.
func platform() string {
	return runtime.GOOS + "/" + runtime.GOARCH + " " + runtime.Version()
}
