package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/spool"
)

func newStatusCmd(g *globals) *cobra.Command {
	return newShowCmd(g, "status", "Show the running gateway's sources, spool backlog and uplink",
		gateway.FetchStatus, func(w io.Writer, st *gateway.Status) { printStatus(w, st, time.Now()) })
}

// socket returns the admin socket: the flag's, or the configuration's.
func (g *globals) socket(cmd *cobra.Command, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	l, err := g.load(cmd)
	if err != nil {
		return "", err
	}
	return gateway.SocketPath(l.Config), nil
}

func printStatus(w io.Writer, st *gateway.Status, now time.Time) {
	fmt.Fprintf(w, "gateway  %s  (weir %s, up %s, data %s)\n", st.Gateway, st.Version, since(now, st.Started), st.DataDir)
	for _, s := range st.Sources {
		fmt.Fprintf(w, "source   %s: %d files, %d lines", s.Name, len(s.Files), s.Lines)
		if s.Errors > 0 {
			fmt.Fprintf(w, ", %d errors (last: %s)", s.Errors, s.LastError)
		}
		fmt.Fprintln(w)
		for _, f := range s.Files {
			fmt.Fprintf(w, "           %s  offset %d of %d, %d lines\n", f.Path, f.Offset, f.Size, f.Lines)
		}
	}
	printInputs(w, st, now)
	sp := st.Spool
	oldest := ""
	if !sp.Oldest.IsZero() {
		oldest = ", oldest " + since(now, sp.Oldest)
	}
	fmt.Fprintf(w, "spool    backlog %d records (%s, %.0f%% of max)%s; acked up to %d, next %d; %s on disk\n",
		sp.Records, bytesIEC(sp.Bytes), percent(sp.Used, sp.MaxBytes), oldest, sp.AckedUpTo, sp.NextSeq, bytesIEC(sp.DiskBytes))
	if lost := lossLine(sp); lost != "" {
		fmt.Fprintf(w, "         %s\n", lost)
	}
	printSpoolDisk(w, sp, now)
	u := st.Uplink
	if u.State == "disabled" {
		fmt.Fprintln(w, "uplink   disabled: no endpoint configured; records stay spooled")
		return
	}
	fmt.Fprintf(w, "uplink   %s %s", u.State, u.Endpoint)
	if u.State == "connected" && !u.ConnectedAt.IsZero() {
		fmt.Fprintf(w, " for %s", since(now, u.ConnectedAt))
	}
	fmt.Fprintf(w, "; sent %d, acked %d; last ack %d", u.RecordsSent, u.RecordsAcked, u.LastAckSeq)
	if !u.LastAckAt.IsZero() {
		fmt.Fprintf(w, " %s ago", since(now, u.LastAckAt))
	}
	fmt.Fprintln(w)
	if u.LastError != "" {
		fmt.Fprintf(w, "         last error (%s): %s\n", u.LastReason, u.LastError)
	}
	if u.CertWarning != "" {
		fmt.Fprintf(w, "         WARNING: %s\n", u.CertWarning)
	}
	if len(u.Endpoints) > 1 || (len(u.Endpoints) == 1 && u.Endpoints[0].HandshakeFailures > 0) {
		fmt.Fprintln(w, "         `weir link` shows each endpoint's RTT, loss, handshakes and outages")
	}
}

// printInputs shows the optional inputs that are on, a line each, and
// their last error.
func printInputs(w io.Writer, st *gateway.Status, now time.Time) {
	if s := st.Syslog; s != nil {
		var ls []string
		var received, parseErrs, drops uint64
		for _, l := range s.Listeners {
			ls = append(ls, l.Transport+" "+l.Address)
			received += l.Received
			parseErrs += l.ParseErrors
			drops += l.SocketDrops
		}
		fmt.Fprintf(w, "source   %s: %s; %d messages, %d unparsed, %d emitted, %d queued, %d of %d connections",
			s.Name, strings.Join(ls, ", "), received, parseErrs, s.Emitted, s.Queued, s.ConnectionsOpen, s.MaxConnections)
		if s.RateLimited+drops+s.Lost > 0 {
			fmt.Fprintf(w, "; dropped %d over the rate limit, %d by the socket buffer, %d lost", s.RateLimited, drops, s.Lost)
		}
		fmt.Fprintln(w)
		if s.LastError != "" {
			fmt.Fprintf(w, "         last error: %s\n", s.LastError)
		}
	}
	if a := st.Audit; a != nil {
		file := a.File
		if file == "" {
			file = a.Path
		}
		fmt.Fprintf(w, "source   %s: %s %s, offset %d of %d; %d events, %d pending, %d unparsed",
			a.Name, a.State, file, a.Offset, a.Size, a.Events, a.Pending, a.ParseErrors)
		if a.Errors > 0 {
			fmt.Fprintf(w, ", %d errors (last: %s)", a.Errors, a.LastError)
		}
		fmt.Fprintln(w)
	}
	if f := st.Integrity; f != nil {
		fmt.Fprintf(w, "source   integrity: %d paths, %d in the baseline, %d watched directories; %d changes", len(f.Paths), f.Files, f.Watches, f.Changes)
		if !f.LastScan.IsZero() {
			fmt.Fprintf(w, "; last scan %s ago (%dms)", since(now, f.LastScan), f.LastScanMillis)
		}
		if f.Errors > 0 {
			fmt.Fprintf(w, ", %d errors (last: %s)", f.Errors, f.LastError)
		}
		fmt.Fprintln(w)
	}
}

func percent(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// printSpoolDisk shows the spool's file system: free space, reserve and
// ballast, and, loudly, intake held for a full disk, acknowledgements kept
// in memory, and damaged records quarantined.
func printSpoolDisk(w io.Writer, sp spool.Stats, now time.Time) {
	d := sp.Disk
	if d.Free >= 0 {
		fmt.Fprintf(w, "         disk: %s free, %s kept in reserve, ballast %s; the backlog can reach %s",
			bytesIEC(d.Free), bytesIEC(d.Reserve), bytesIEC(d.Ballast), bytesIEC(d.Budget))
		if d.Budget < sp.MaxBytes {
			fmt.Fprintf(w, " (the disk holds less than max_bytes %s)", bytesIEC(sp.MaxBytes))
		}
		fmt.Fprintln(w)
	}
	if d.Held != "" {
		fmt.Fprintf(w, "         INTAKE HELD for %s: %s; sources wait, critical records still go in\n", since(now, d.HeldSince), d.Held)
	}
	if d.AcksInMemory {
		fmt.Fprintln(w, "         acknowledgements kept in memory: the disk is too full to write them")
	}
	if sp.Quarantined > 0 {
		fmt.Fprintf(w, "         %d damaged records quarantined since start, not delivered (see the .quarantine file beside the spool)\n", sp.Quarantined)
	}
}

// lossLine names records the spool had to give up or hold back, by class.
func lossLine(sp spool.Stats) string {
	var parts []string
	for c, cs := range sp.Classes {
		if cs.Evicted+cs.Expired+cs.Refused == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %d evicted, %d expired, %d waited for room", spool.Class(c), cs.Evicted, cs.Expired, cs.Refused))
	}
	return strings.Join(parts, "; ")
}

func since(now, t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	d := now.Sub(t)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
