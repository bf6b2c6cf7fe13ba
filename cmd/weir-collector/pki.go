package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/seal"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/pki"
)

// sealKeysDir is where the pki directory keeps the gateways' registered
// seal keys, <id>.pub each.
const sealKeysDir = "seal-keys"

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
			// The first seal key: its private half goes to the gateway
			// (seal_key_dir), its public half stays here, registered.
			sealDir := filepath.Join(filepath.Dir(key), args[0]+".seal")
			if opts.Force {
				if err := os.RemoveAll(sealDir); err != nil {
					return fmt.Errorf("seal key %s: %w", sealDir, err)
				}
			}
			pub, err := seal.Provision(sealDir)
			if err != nil {
				return err
			}
			if err := collector.RegisterSealKey(filepath.Join(dir, sealKeysDir), args[0], pub); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "gateway %s: seal key %s (install as its seal_key_dir), registered in %s\n",
				args[0], sealDir, collector.SealKeyFile(filepath.Join(dir, sealKeysDir), args[0]))
			if opts.Force {
				fmt.Fprintf(cmd.OutOrStdout(), "gateway %s: provisioned again: its seals begin a new chain from this key\n", args[0])
			}
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
	fleetKey := &cobra.Command{
		Use:   "fleet-key",
		Short: "Create the fleet key that signs configuration bundles (" + pki.FleetKeyFile + " 0600, " + pki.FleetPubFile + ")",
		Long: `Creates an ed25519 key in --dir: ` + pki.FleetKeyFile + ` (mode 0600) signs bundles
(weir-collector fleet sign) and belongs offline with the CA key; ` + pki.FleetPubFile + `
holds the public key, the line each gateway pins in fleet.keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, pubFile, pub, err := pki.NewFleetKey(dir, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "fleet key %s written: %s (mode 0600), public key %s\npin it in each gateway's file:\n  fleet:\n    keys: [\"%s\"]\n",
				pki.FleetKeyID(pub), key, pubFile, pki.FormatFleetKey(pub))
			return nil
		},
	}
	c.AddCommand(initCmd, gw, col, newRevokeCmd(&dir), fleetKey)
	return c
}

func newRevokeCmd(dir *string) *cobra.Command {
	var (
		deny    string
		serials []string
		certs   []string
		note    string
	)
	c := &cobra.Command{
		Use:   "revoke [ID...]",
		Short: "Revoke gateways (every certificate naming ID) or single certificates (--serial, --cert) in the collector's deny list",
		Long: `Adds entries to the deny list (default: ` + pki.DenyFile + ` in --dir), rewriting it atomically.
A running collector re-reads it when it changes: it refuses the revoked
gateways' next handshakes and ends their open sessions within --deny-check.
Revoking an id refuses every certificate naming it; revoking a serial (or
--cert FILE) refuses that certificate only, so the gateway can be re-keyed
under its id: revoke --cert the old file, then issue-gateway ID --force.`,
		RunE: func(cmd *cobra.Command, ids []string) error {
			if len(ids) == 0 && len(serials) == 0 && len(certs) == 0 {
				return errors.New("revoke: name a gateway ID, --serial HEX or --cert FILE")
			}
			if deny == "" {
				deny = filepath.Join(*dir, pki.DenyFile)
			}
			when := time.Now().UTC().Format(time.RFC3339)
			n := func(what string) string {
				s := "revoked " + when
				if what != "" {
					s += " (" + what + ")"
				}
				if note != "" {
					s += ": " + note
				}
				return s
			}
			var entries []pki.DenyEntry
			for _, id := range ids {
				entries = append(entries, pki.DenyEntry{Kind: "gateway", Value: id, Note: n("")})
			}
			for _, sn := range serials {
				entries = append(entries, pki.DenyEntry{Kind: "serial", Value: sn, Note: n("")})
			}
			for _, f := range certs {
				sn, id, err := pki.SerialOf(f)
				if err != nil {
					return err
				}
				entries = append(entries, pki.DenyEntry{Kind: "serial", Value: sn, Note: n(filepath.Base(f) + ", gateway " + id)})
			}
			added, err := pki.Revoke(deny, entries...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d entries added (%d already listed)\n", deny, added, len(entries)-added)
			return nil
		},
	}
	c.Flags().StringVar(&deny, "deny", "", "deny list to write (default: "+pki.DenyFile+" in --dir)")
	c.Flags().StringSliceVar(&serials, "serial", nil, "certificate serial to revoke, in hex")
	c.Flags().StringSliceVar(&certs, "cert", nil, "certificate file whose serial to revoke")
	c.Flags().StringVar(&note, "note", "", "why, written as a comment beside each entry")
	return c
}
