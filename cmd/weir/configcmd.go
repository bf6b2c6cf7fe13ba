package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/process"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/line"
	"github.com/weirgw/weir/sensors/modbus/poll"
	"github.com/weirgw/weir/sensors/syslog"
	"github.com/weirgw/weir/uplink"
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

func newConfigCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Configuration helpers"}
	c.AddCommand(newShowCmd(g, "show", "Print the running gateway's configuration in force (the file, the fleet bundle over it), secrets redacted",
		gateway.FetchConfig, printConfigView))
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

// printConfigView prints the configuration in force as a YAML file
// headed by comments: its generation, where it came from, the fleet
// bundle in force and the last one's outcome.
func printConfigView(w io.Writer, v *gateway.ConfigView) {
	printf(w, "# configuration in force: generation %d from %s (secrets redacted)\n", v.Generation, v.Source)
	if f := v.Fleet; f != nil && f.Enabled {
		printf(w, "# fleet: %s\n", fleetLine(f))
	}
	b, err := yaml.Marshal(v.Config)
	if err != nil {
		printf(w, "# %v\n", err)
		return
	}
	_ = writeText(w, string(b))
}

// fleetLine says which bundle is in force and what came of the last.
func fleetLine(f *gateway.FleetStatus) string {
	s := "the local file alone (no bundle applied)"
	if f.Applied > 0 {
		s = fmt.Sprintf("bundle v%d in force (key %s)", f.Applied, f.KeyID)
	}
	if l := f.Last; l != nil && (l.Version != f.Applied || l.Result != uplink.ConfigApplied) {
		result := l.Result
		if result != uplink.ConfigApplied && result != uplink.ConfigApplying {
			result = strings.ToUpper(result)
		}
		s += fmt.Sprintf("; last: v%d %s", l.Version, result)
		if l.Error != "" {
			s += ": " + l.Error
		}
	}
	return s
}
