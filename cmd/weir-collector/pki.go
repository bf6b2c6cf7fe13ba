package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/uplink/pki"
)

func newPKICmd() *cobra.Command {
	var (
		dir  string
		opts pki.Options
	)
	c := &cobra.Command{
		Use:   "pki",
		Short: "Provision a CA and gateway and collector certificates (no openssl needed)",
	}
	c.PersistentFlags().StringVar(&dir, "dir", "pki", "directory holding the CA and issued files")
	c.PersistentFlags().BoolVar(&opts.Force, "force", false, "overwrite existing files")
	c.PersistentFlags().DurationVar(&opts.Validity, "validity", 0, "validity (default: CA 10 years, others 2 years)")

	var caName string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create a new CA in --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pki.InitCA(dir, caName, opts); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "CA written: %s/%s (key %s/%s, mode 0600)\n", dir, pki.CACertFile, dir, pki.CAKeyFile)
			return nil
		},
	}
	initCmd.Flags().StringVar(&caName, "name", "site", "name in the CA's common name")

	gw := &cobra.Command{
		Use:   "issue-gateway ID",
		Short: "Issue a client certificate for gateway ID",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cert, key, err := pki.IssueGateway(dir, args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "gateway %s: certificate %s, key %s\n", args[0], cert, key)
			return nil
		},
	}
	var extra []string
	col := &cobra.Command{
		Use:   "issue-collector HOST",
		Short: "Issue a server certificate for the collector reachable as HOST",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cert, key, err := pki.IssueCollector(dir, args[0], extra, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "collector %s: certificate %s, key %s\n", args[0], cert, key)
			return nil
		},
	}
	col.Flags().StringSliceVar(&extra, "also", nil, "more names or addresses for the same certificate")
	c.AddCommand(initCmd, gw, col)
	return c
}
