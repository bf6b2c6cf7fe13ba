package main

import (
	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
)

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Configuration helpers"}
	c.AddCommand(&cobra.Command{
		Use:   "example",
		Short: "Print the built-in default configuration, every key commented",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(gateway.DefaultYAML())
			return err
		},
	})
	return c
}
