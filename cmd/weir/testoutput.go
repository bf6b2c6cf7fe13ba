package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
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
				return fmt.Errorf("test output: no uplink endpoint in %s (uplink.endpoints)", l.Source())
			}
			// The identity is checked here first, naming each key: a
			// handshake with a broken one fails with less to say.
			if bad := identityProblems(gateway.CheckUplinkIdentity(l.Config, time.Now())); len(bad) > 0 {
				w := cmd.OutOrStdout()
				printf(w, "uplink.tls (from %s): not usable, no endpoint dialled\n", l.Source())
				for _, c := range bad {
					printf(w, "  %-8s %s: %s\n", c.Status, c.Key, c.Detail)
				}
				return fmt.Errorf("test output: the gateway's TLS identity has %d problem(s)", len(bad))
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
		printf(w, "  FAILED (%s): %s\n", r.Reason, onceOnly(r.Err.Error()))
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

// identityProblems are the checks that failed.
func identityProblems(cs gateway.Checks) gateway.Checks {
	var bad gateway.Checks
	for _, c := range cs {
		if c.Status == gateway.CheckError {
			bad = append(bad, c)
		}
	}
	return bad
}

// onceOnly drops an explanation that only repeats the error it explains:
// "E (probably: E)" is E, and "A: E (probably: E)" is "A: E".
func onceOnly(msg string) string {
	const open = " (probably: "
	i := strings.LastIndex(msg, open)
	if i < 0 || !strings.HasSuffix(msg, ")") {
		return msg
	}
	why := msg[i+len(open) : len(msg)-1]
	if strings.Contains(msg[:i], why) {
		return msg[:i]
	}
	return msg
}
