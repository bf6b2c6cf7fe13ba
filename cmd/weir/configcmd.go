package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/process"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/line"
	"github.com/weirgw/weir/sensors/modbus/poll"
	"github.com/weirgw/weir/sensors/syslog"
	"github.com/weirgw/weir/uplink/siem/outputs"
)

// configExample is one section `weir config example NAME` prints.
type configExample struct {
	name string
	yaml func() []byte
	// input: the example is one input's section, to go under inputs.NAME
	// (a list item for lines); otherwise it is a whole document.
	input bool
}

// configExamples are the sections with an example of their own, in the
// order help lists them.
var configExamples = []configExample{
	{"modbus", poll.ExampleYAML, true},
	{"lines", line.ExampleYAML, true},
	{"syslog", syslog.ExampleYAML, true},
	{"audit", audit.ExampleYAML, true},
	{"integrity", integrity.ExampleYAML, true},
	{"board", board.ExampleYAML, false},
	{"outputs", outputs.ExampleYAML, false},
	{"rules", rules.ExampleYAML, false},
	{"processors", process.ExampleYAML, false},
}

func exampleNames() []string {
	names := make([]string, len(configExamples))
	for i, e := range configExamples {
		names[i] = e.name
	}
	return names
}

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Configuration helpers"}
	names := exampleNames()
	c.AddCommand(&cobra.Command{
		Use:       "example [" + strings.Join(names, "|") + "]",
		Short:     "Print the built-in default configuration, every key commented; or an example of one section",
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: names,
		RunE: func(cmd *cobra.Command, args []string) error {
			b := gateway.DefaultYAML()
			if len(args) == 1 {
				i := slices.IndexFunc(configExamples, func(e configExample) bool { return e.name == args[0] })
				if i < 0 {
					return fmt.Errorf("config example: %q is not %s or %s", args[0],
						strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
				}
				b = configExamples[i].yaml()
			}
			return writeText(cmd.OutOrStdout(), string(b))
		},
	})
	return c
}
