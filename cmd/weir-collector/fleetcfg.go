package main

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	gwconfig "github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/pki"
)

// defaultFleetDir is where push and status look without --dir, and what
// run --fleet-dir is usually given.
const defaultFleetDir = "fleet-config"

func newFleetCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "fleet",
		Short: "Remote configuration: sign bundles, push them to gateways, see what each runs",
		Long: `A bundle is a YAML document with version, target and config (the gateway's
own schema, merged over each gateway's local file). It is signed offline with a
fleet key (weir-collector pki fleet-key), pushed into the directory a running
collector serves (run --fleet-dir), offered to the gateways its target selects
over their uplink sessions, and applied by each gateway that pins the key:
checked, staged, applied live, rolled back if the uplink or a source fails
within the gateway's fleet.health_timeout.`,
	}
	c.AddCommand(newFleetSignCmd(), newFleetPushCmd(), newFleetStatusCmd())
	return c
}

func newFleetSignCmd() *cobra.Command {
	var key, out string
	c := &cobra.Command{
		Use:   "sign FILE",
		Short: "Check a bundle against the gateway's schema and sign it with the fleet key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return errors.New("fleet sign: --key names the fleet's private key (pki fleet-key writes it)")
			}
			body, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("fleet sign: %w", err)
			}
			b, err := pki.ParseBundle(body)
			if err != nil {
				return fmt.Errorf("fleet sign: %s: %w", args[0], err)
			}
			if err := gwconfig.CheckBundle(b); err != nil {
				return fmt.Errorf("fleet sign: %s: %w", args[0], err)
			}
			priv, err := pki.LoadFleetKey(key)
			if err != nil {
				return err
			}
			signed, err := pki.SignBundle(body, priv)
			if err != nil {
				return err
			}
			if out == "" {
				out = args[0] + ".signed"
			}
			if err := os.WriteFile(out, signed, 0o644); err != nil {
				return fmt.Errorf("fleet sign: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bundle v%d for %s signed by key %s: %s (%d bytes)\n",
				b.Version, b.Target, pki.FleetKeyID(priv.Public().(ed25519.PublicKey)), out, len(signed))
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "the fleet's private key (PEM, mode 0600)")
	c.Flags().StringVar(&out, "out", "", "the signed bundle (default: FILE.signed)")
	return c
}

func newFleetPushCmd() *cobra.Command {
	var dir, target, pub string
	c := &cobra.Command{
		Use:   "push FILE",
		Short: "Offer a signed bundle to the gateways --target selects (default: the bundle's own target)",
		Long: `Adds the signed bundle to the directory a running collector serves (--dir,
the collector's --fleet-dir). The collector reads it again within --fleet-check
and offers it to every gateway the target selects whose version is older, on
their open sessions and at each new one. A gateway takes it only if its own
checks pass: a key it pins, a newer version, a target in the signed bundle that
selects it, no protected key. --target: gateway ids and key=value labels,
comma-separated (a gateway is selected by its id, or by carrying every label).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("fleet push: %w", err)
			}
			var t pki.Target
			if target != "" {
				if t, err = pki.ParseTarget(target); err != nil {
					return fmt.Errorf("fleet push: %w", err)
				}
			}
			var key ed25519.PublicKey
			if pub != "" {
				if key, err = pki.ReadFleetKey(pub); err != nil {
					return err
				}
			}
			p, err := collector.PushBundle(dir, raw, t, key, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bundle v%d (key %s, %d bytes) pushed for %s in %s\n", p.Version, p.KeyID, p.Size, p.Target, dir)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", defaultFleetDir, "the directory the collector serves (run --fleet-dir)")
	c.Flags().StringVar(&target, "target", "", "gateway ids and key=value labels, comma-separated (default: the bundle's target)")
	c.Flags().StringVar(&pub, "pub", "", "the fleet public key (a file, or ed25519:<base64>) to check the signature against first")
	return c
}

// fleetRow is one gateway in `fleet status`.
type fleetRow struct {
	Gateway string            `json:"gateway"`
	Desired uint64            `json:"desired"` // 0: no push selects it
	Target  string            `json:"target,omitempty"`
	Report  *collector.Report `json:"report,omitempty"`
	// Seal is the live check of the gateway's Merkle log, from the
	// collector's state file (--status-file).
	Seal *collector.SealState `json:"seal,omitempty"`
}

func newFleetStatusCmd() *cobra.Command {
	var (
		dir        string
		asJSON     bool
		statusFile string
	)
	c := &cobra.Command{
		Use:   "status",
		Short: "Each gateway's desired and applied bundle version, its last result and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := fleetRows(dir)
			if err != nil {
				return err
			}
			withSeals := statusFile != ""
			if withSeals {
				st, err := readStatus(statusFile)
				if err != nil {
					return err
				}
				rows = addSealRows(rows, st.Seals)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			printFleetRows(cmd.OutOrStdout(), rows, time.Now(), withSeals)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", defaultFleetDir, "the directory the collector serves (run --fleet-dir)")
	c.Flags().StringVar(&statusFile, "status-file", "", "the collector's state file (run --status-file): adds each gateway's seal check")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// fleetRows lists every gateway that reported or that a push names by
// id, by id.
func fleetRows(dir string) ([]fleetRow, error) {
	pushes, err := collector.ReadPushes(dir)
	if err != nil {
		return nil, err
	}
	reports, err := collector.ReadReports(dir)
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for id := range reports {
		ids[id] = true
	}
	for _, p := range pushes {
		if t, err := pki.ParseTarget(p.Target); err == nil {
			for _, id := range t.Gateways {
				ids[id] = true
			}
		}
	}
	var rows []fleetRow
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		row := fleetRow{Gateway: id}
		var labels map[string]string
		if r, ok := reports[id]; ok {
			row.Report, labels = &r, r.Labels
		}
		if p, ok := collector.DesiredFor(pushes, id, labels); ok {
			row.Desired, row.Target = p.Version, p.Target
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// addSealRows joins the live check's state to the rows by gateway; a
// gateway only the check knows gets a row of its own.
func addSealRows(rows []fleetRow, seals []collector.SealState) []fleetRow {
	at := map[string]int{}
	for i, r := range rows {
		at[r.Gateway] = i
	}
	for _, s := range seals {
		s := s
		if i, ok := at[s.Gateway]; ok {
			rows[i].Seal = &s
			continue
		}
		rows = append(rows, fleetRow{Gateway: s.Gateway, Seal: &s})
	}
	slices.SortFunc(rows, func(a, b fleetRow) int { return strings.Compare(a.Gateway, b.Gateway) })
	return rows
}

// sealCell is the SEALS column: the seals checked and the last verified
// epoch, or where the log failed.
func sealCell(s *collector.SealState) string {
	switch {
	case s == nil:
		return "-"
	case s.Failure != nil:
		return fmt.Sprintf("FAILED at %d (epoch %d)", s.Failure.Seq, s.Failure.Epoch)
	case s.GaveUp != "":
		return fmt.Sprintf("%d, check stopped", s.Stats.Seals)
	case s.LastSeq == 0:
		return "0"
	}
	return fmt.Sprintf("%d ok, epoch %d size %d", s.Stats.Seals, s.LastEpoch, s.LastSize)
}

func printFleetRows(w io.Writer, rows []fleetRow, now time.Time, withSeals bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "GATEWAY\tDESIRED\tAPPLIED\tLAST\tRESULT\tREPORTED\tREASON"
	if withSeals {
		head += "\tSEALS"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		desired := "-"
		if r.Desired > 0 {
			desired = strconv.FormatUint(r.Desired, 10)
		}
		seals := ""
		if withSeals {
			seals = "\t" + sealCell(r.Seal)
		}
		if r.Report == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\tnever\t%s\n", safe(r.Gateway), desired, seals)
			continue
		}
		rep := r.Report
		last, result := "-", "-"
		if rep.Version > 0 || rep.Result != "" {
			last, result = strconv.FormatUint(rep.Version, 10), safe(rep.Result)
		}
		if r.Desired > rep.Highest && result != uplink.ConfigApplying {
			result += " (v" + strconv.FormatUint(r.Desired, 10) + " pending)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s ago\t%s%s\n", safe(r.Gateway), desired, rep.Applied, last, result,
			now.Sub(rep.Reported).Round(time.Second), safe(rep.Error), seals)
	}
	tw.Flush()
}

// safe shows what a gateway wrote with its control characters escaped:
// the reasons and results come from the gateways.
func safe(s string) string {
	q := strconv.QuoteToGraphic(s)
	return strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
}
