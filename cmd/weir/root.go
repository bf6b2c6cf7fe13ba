package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
)

type globals struct {
	configPath string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "weir",
		Short:         "Weir industrial edge gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	// --version says what `weir version` says, as weir-collector's does.
	root.SetVersionTemplate("{{.Name}} {{.Version}} " + platform() + "\n")
	def := gateway.DefaultConfigFile
	if p := os.Getenv(gateway.EnvPrefix + "_CONFIG"); p != "" {
		def = p
	}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", def,
		"configuration file (YAML); env WEIR_CONFIG; a missing default file means built-in defaults")
	root.AddCommand(newRunCmd(g), newTestCmd(g), newStatusCmd(g), newTopCmd(g), newPTPCmd(g), newLinkCmd(g), newSensorsCmd(g), newSpoolCmd(g), newAlertsCmd(g), newConfigCmd(g), newVersionCmd(),
		newConsoleCmd(g), newPasswdCmd(), newVerifyProofCmd())
	root.SetHelpCommand(newHelpCmd())
	strict(root)
	return root
}

// load reads the configuration in force: the file, the fleet bundle
// applied over it, the WEIR_* variables. A file named on the command
// line or in WEIR_CONFIG must exist, the default one may be absent.
func (g *globals) load(cmd *cobra.Command) (*gateway.Loaded, error) {
	explicit := cmd.Flags().Changed("config") || os.Getenv(gateway.EnvPrefix+"_CONFIG") != ""
	return gateway.LoadInForce(g.configPath, explicit)
}

func newLogger(c gateway.LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
