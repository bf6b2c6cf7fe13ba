package main

import (
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func newTestCmd(g *globals) *cobra.Command {
	test := &cobra.Command{Use: "test", Short: "Check configuration and outputs"}
	test.AddCommand(&cobra.Command{
		Use:   "config",
		Short: "Validate the configuration and print it with secrets redacted (exit 1 if invalid)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.load(cmd)
			if err != nil {
				return err
			}
			for _, w := range l.Warnings {
				printf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			out, err := yaml.Marshal(l.Redacted().Map())
			if err != nil {
				return err
			}
			printf(cmd.OutOrStdout(), "# configuration OK (from %s)\n", l.Source())
			return writeText(cmd.OutOrStdout(), string(out))
		},
	})
	test.AddCommand(newTestOutputCmd(g))
	return test
}
