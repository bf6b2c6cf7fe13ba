package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/line"
	"github.com/weirgw/weir/sensors/modbus/poll"
	"github.com/weirgw/weir/sensors/syslog"
)

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Configuration helpers"}
	c.AddCommand(&cobra.Command{
		Use:       "example [modbus|lines|syslog|audit|integrity|rules]",
		Short:     "Print the built-in default configuration, every key commented; or an example of one input, or the built-in rules",
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"modbus", "lines", "syslog", "audit", "integrity", "rules"},
		RunE: func(cmd *cobra.Command, args []string) error {
			b := gateway.DefaultYAML()
			if len(args) == 1 {
				switch args[0] {
				case "modbus":
					b = poll.ExampleYAML()
				case "lines":
					b = line.ExampleYAML()
				case "syslog":
					b = syslog.ExampleYAML()
				case "audit":
					b = audit.ExampleYAML()
				case "integrity":
					b = integrity.ExampleYAML()
				case "rules":
					b = rules.ExampleYAML()
				default:
					return fmt.Errorf("config example: %q is not modbus, lines, syslog, audit, integrity or rules", args[0])
				}
			}
			return writeText(cmd.OutOrStdout(), string(b))
		},
	})
	return c
}
