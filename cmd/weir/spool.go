package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/spool"
)

func newSpoolCmd(g *globals) *cobra.Command {
	var (
		socket string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "spool",
		Short: "Show the spool: backlog, bound, per-class evictions and refusals, commits, disk use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			socket, err := g.socket(cmd, socket)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			st, err := gateway.FetchStatus(ctx, socket)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st.Spool, true)
			}
			printSpool(cmd.OutOrStdout(), st.Spool, time.Now())
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&socket, "socket", "", "admin socket (default: from the configuration)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var (
		from uint64
		n    int
	)
	inspect := &cobra.Command{
		Use:   "inspect",
		Short: "Print spooled records, decoded, one JSON object a line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 || n > 10000 {
				return asUsage(cmd, fmt.Errorf("--n %d: want 1 to 10000", n))
			}
			socket, err := g.socket(cmd, socket)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			recs, err := gateway.FetchSpoolRecords(ctx, socket, from, n)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if err := writeJSON(cmd.OutOrStdout(), r, false); err != nil {
					return err
				}
			}
			if len(recs) == 0 {
				printf(cmd.ErrOrStderr(), "no unacknowledged record at or after %d\n", from)
			}
			return nil
		},
	}
	inspect.Flags().Uint64Var(&from, "from", 0, "first sequence (default: the oldest unacknowledged)")
	inspect.Flags().IntVar(&n, "n", 20, "how many records")
	cmd.AddCommand(inspect)
	return cmd
}

func printSpool(w io.Writer, sp spool.Stats, now time.Time) {
	printf(w, "backlog     %d records, %s of data; %s of %s max (%.1f%%)\n",
		sp.Records, bytesIEC(sp.Bytes), bytesIEC(sp.Used), bytesIEC(sp.MaxBytes), percent(sp.Used, sp.MaxBytes))
	if !sp.Oldest.IsZero() {
		printf(w, "oldest      %s (appended %s)\n", since(now, sp.Oldest), sp.Oldest.UTC().Format(time.RFC3339))
	}
	printf(w, "sequences   acked up to %d, next %d\n", sp.AckedUpTo, sp.NextSeq)
	printf(w, "since start %d records appended in %d commits (fsyncs)\n", sp.Appended, sp.Commits)
	printf(w, "disk        %s\n", bytesIEC(sp.DiskBytes))
	printf(w, "%-10s  %10s  %10s  %9s  %9s  %9s\n", "class", "records", "bytes", "evicted", "expired", "waited")
	for c, cs := range sp.Classes {
		printf(w, "%-10s  %10d  %10s  %9d  %9d  %9d\n", spool.Class(c), cs.Records, bytesIEC(cs.Bytes), cs.Evicted, cs.Expired, cs.Refused)
	}
	if sp.Recovered != "" {
		printf(w, "recovered   %s\n", sp.Recovered)
	}
}
