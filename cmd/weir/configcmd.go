package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/sensors/line"
	"github.com/weirgw/weir/sensors/modbus/poll"
)

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Configuration helpers"}
	c.AddCommand(&cobra.Command{
		Use:       "example [modbus|lines]",
		Short:     "Print the built-in default configuration, every key commented; or an example of one input",
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"modbus", "lines"},
		RunE: func(cmd *cobra.Command, args []string) error {
			b := gateway.DefaultYAML()
			if len(args) == 1 {
				switch args[0] {
				case "modbus":
					b = poll.ExampleYAML()
				case "lines":
					b = line.ExampleYAML()
				default:
					return fmt.Errorf("config example: %q is not modbus or lines", args[0])
				}
			}
			_, err := cmd.OutOrStdout().Write(b)
			return err
		},
	})
	return c
}
