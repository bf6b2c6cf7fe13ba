package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/uplink/sender"
)

func newTestOutputCmd(g *globals) *cobra.Command {
	var pings int
	cmd := &cobra.Command{
		Use:   "output",
		Short: "Connect to each uplink endpoint: handshake, peer certificate chain, cipher, RTT of a few pings (exit 1 on any failure)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.load(cmd)
			if err != nil {
				return err
			}
			if !l.Uplink.Enabled() {
				return errors.New("test output: no uplink endpoint configured")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			failed := 0
			for _, ep := range l.Uplink.Endpoints {
				res := sender.Probe(ctx, l.Uplink, l.Gateway.ID, ep, pings)
				printProbe(cmd.OutOrStdout(), res, time.Now())
				if res.Err != nil {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("test output: %d of %d endpoints failed", failed, len(l.Uplink.Endpoints))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&pings, "pings", 5, "Ping/Pong round trips to time per endpoint")
	return cmd
}

func printProbe(w io.Writer, r *sender.ProbeResult, now time.Time) {
	printf(w, "%s\n", r.Endpoint)
	if r.Negotiated != "" {
		printf(w, "  negotiated  %s\n", r.Negotiated)
	}
	for i, c := range r.Chain {
		printf(w, "  cert[%d]     subject %q\n              issuer  %q\n              valid   %s to %s (%s)\n", i,
			c.Subject.String(), c.Issuer.String(), c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), expiry(c.NotAfter, now))
	}
	if r.Err != nil {
		printf(w, "  FAILED (%s): %v\n", r.Reason, r.Err)
		return
	}
	printf(w, "  collector holds up to seq %d for this gateway\n", r.Highest)
	if len(r.RTTs) > 0 {
		lo, hi, sum := r.RTTs[0], r.RTTs[0], time.Duration(0)
		for _, d := range r.RTTs {
			lo, hi, sum = min(lo, d), max(hi, d), sum+d
		}
		printf(w, "  rtt         min %s avg %s max %s over %d pings\n", lo.Round(time.Microsecond),
			(sum / time.Duration(len(r.RTTs))).Round(time.Microsecond), hi.Round(time.Microsecond), len(r.RTTs))
	}
	printf(w, "  OK\n")
}
