package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
)

func newLinkCmd(g *globals) *cobra.Command {
	return newShowCmd(g, "link", "Show the uplink's link quality per endpoint: RTT, loss, goodput, handshakes and why they failed, outages, certificates",
		gateway.FetchLink, printLink)
}

func printLink(w io.Writer, l *gateway.Link) {
	u := l.Uplink
	if u.State == "disabled" && len(u.Endpoints) == 0 {
		printf(w, "uplink disabled: no endpoint configured; records stay spooled\n")
		return
	}
	printf(w, "gateway %s  mode %s  backlog %d records (%s)", l.Gateway, u.Mode, l.BacklogRecords, bytesIEC(l.BacklogBytes))
	if l.OldestUnacked > 0 {
		printf(w, ", oldest unacked %s", (time.Duration(l.OldestUnacked * float64(time.Second))).Round(time.Second))
	}
	printf(w, "\n")
	printf(w, "certificates: own expires %s, CA %s\n", expiry(u.CertExpiry, l.At), expiry(u.CAExpiry, l.At))
	if u.CertWarning != "" {
		printf(w, "WARNING: %s\n", u.CertWarning)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	printf(tw, "ENDPOINT\tSTATE\tSRTT\tRTTVAR\tLOSS 1m/15m\tGOODPUT\tREC/s\tACKED\tHANDSHAKES\tFAILED\tRECONN\tOUTAGE\n")
	for _, e := range u.Endpoints {
		state := string(e.State)
		if e.Active {
			state += "*"
		}
		printf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%d\t%d\t%d\t%d\t%s\n", e.Endpoint, state,
			msStr(e.SRTTMillis), msStr(e.RTTVarMillis), lossStr(e.Loss1m, e.Loss15m), bps(e.GoodputBitsPS),
			e.RecordsPerSecond, e.RecordsAcked, e.Handshakes, e.HandshakeFailures, e.Reconnects,
			(time.Duration(e.OutageSeconds * float64(time.Second))).Round(time.Second))
	}
	tw.Flush()
	for _, e := range u.Endpoints {
		var notes []string
		if e.Negotiated != "" {
			notes = append(notes, e.Negotiated)
		}
		if e.RTTSource != "" {
			notes = append(notes, "rtt from "+e.RTTSource)
		}
		if e.AckLatencyMillis > 0 {
			notes = append(notes, "ack latency "+msStr(e.AckLatencyMillis))
		}
		if e.HandshakeMillis > 0 {
			n := "handshake " + msStr(e.HandshakeMillis)
			if e.FirstAckMillis > 0 {
				n += ", first ack " + msStr(e.FirstAckMillis) + " after it"
			}
			notes = append(notes, n)
		}
		if e.Active && e.Window > 0 {
			notes = append(notes, fmt.Sprintf("window %d, %d in flight", e.Window, e.BatchesInFlight))
		}
		if len(e.FailureReasons) > 0 {
			var rs []string
			for r, n := range e.FailureReasons {
				rs = append(rs, fmt.Sprintf("%s %d", r, n))
			}
			sort.Strings(rs)
			notes = append(notes, "failures: "+strings.Join(rs, ", "))
		}
		if len(notes) > 0 {
			printf(w, "  %s: %s\n", e.Endpoint, strings.Join(notes, "; "))
		}
		if e.LastError != "" {
			printf(w, "  %s: last error (%s, %s ago): %s\n", e.Endpoint, e.LastReason, since(l.At, e.LastErrorAt), e.LastError)
		}
	}
	printf(w, "(* carries batches now)\n")
}

func expiry(t, now time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := t.Sub(now)
	if d <= 0 {
		return fmt.Sprintf("EXPIRED %s", t.Format(time.DateOnly))
	}
	return fmt.Sprintf("in %d days (%s)", int(d.Hours()/24), t.Format(time.DateOnly))
}

func msStr(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", v)
}

func lossStr(a, b float64) string {
	if a < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f%%/%.1f%%", 100*a, 100*b)
}

func bps(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1f Mb/s", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f kb/s", v/1e3)
	}
	return fmt.Sprintf("%.0f b/s", v)
}
