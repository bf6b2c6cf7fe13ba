package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/sensors/audit"
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
	printf(w, "gateway  %s  (weir %s, up %s, data %s)\n", st.Gateway, st.Version, since(now, st.Started), st.DataDir)
	printConfig(w, st.Config, now)
	for _, s := range st.Sources {
		printf(w, "source   %s: %d files, %d lines", s.Name, len(s.Files), s.Lines)
		if s.Errors > 0 {
			printf(w, ", %d errors (last: %s)", s.Errors, s.LastError)
		}
		printf(w, "\n")
		for _, f := range s.Files {
			printf(w, "           %s  offset %d of %d, %d lines\n", f.Path, f.Offset, f.Size, f.Lines)
		}
	}
	printInputs(w, st, now)
	printProcessors(w, st.Processors)
	sp := st.Spool
	oldest := ""
	if !sp.Oldest.IsZero() {
		oldest = ", oldest " + since(now, sp.Oldest)
	}
	printf(w, "spool    backlog %d records (%s, %.0f%% of max)%s; acked up to %d, next %d; %s on disk\n",
		sp.Records, bytesIEC(sp.Bytes), percent(sp.Used, sp.MaxBytes), oldest, sp.AckedUpTo, sp.NextSeq, bytesIEC(sp.DiskBytes))
	if lost := lossLine(sp); lost != "" {
		printf(w, "         %s\n", lost)
	}
	printSpoolDisk(w, sp, now)
	if sl := st.Seal; sl != nil {
		printf(w, "seal     epoch %d next", sl.Epoch)
		if sl.LastSeq != 0 {
			printf(w, "; last seal record %d over %d records from %d, root %.16s", sl.LastSeq, sl.Size, sl.LogFirst, sl.Root)
		}
		printf(w, "; %d made since start", sl.Made)
		if sl.Failed > 0 {
			printf(w, ", %d FAILED (see the log)", sl.Failed)
		}
		printf(w, "\n")
	}
	printBoard(w, st, now)
	if l := alertsLine(st.Alerts); l != "" {
		printf(w, "alerts   %s\n", l)
	}
	u := st.Uplink
	if u.State == "disabled" {
		printf(w, "uplink   disabled: no endpoint configured; records stay spooled\n")
		return
	}
	printf(w, "uplink   %s %s", u.State, u.Endpoint)
	if u.State == "connected" && !u.ConnectedAt.IsZero() {
		printf(w, " for %s", since(now, u.ConnectedAt))
	}
	printf(w, "; sent %d, acked %d; last ack %d", u.RecordsSent, u.RecordsAcked, u.LastAckSeq)
	if !u.LastAckAt.IsZero() {
		printf(w, " %s ago", since(now, u.LastAckAt))
	}
	printf(w, "\n")
	if u.LastError != "" {
		printf(w, "         last error (%s): %s\n", u.LastReason, u.LastError)
	}
	if u.CertWarning != "" {
		printf(w, "         WARNING: %s\n", u.CertWarning)
	}
	if len(u.Endpoints) > 1 || (len(u.Endpoints) == 1 && u.Endpoints[0].HandshakeFailures > 0) {
		printf(w, "         `weir link` shows each endpoint's RTT, loss, handshakes and outages\n")
	}
}

// printConfig shows the configuration in force and the last reload's
// outcome; a reload that did not apply everything is shouted.
func printConfig(w io.Writer, c gateway.ConfigStatus, now time.Time) {
	if c.Generation == 0 {
		return // a gateway from before reloads
	}
	printf(w, "config   generation %d from %s, %s ago\n", c.Generation, c.Source, since(now, c.Since))
	if f := c.Fleet; f != nil && f.Enabled {
		printf(w, "fleet    %s", fleetLine(f))
		if l := f.Last; l != nil && !l.At.IsZero() {
			printf(w, " (%s ago)", since(now, l.At))
		}
		printf(w, "\n")
	}
	r := c.LastReload
	if r == nil {
		return
	}
	result := r.Result
	if result != gateway.ReloadOK && result != gateway.ReloadUnchanged {
		result = strings.ToUpper(result)
	}
	printf(w, "         last reload %s ago (%s): %s", since(now, r.At), r.Source, result)
	if len(r.Changed) > 0 {
		printf(w, "; %s", strings.Join(r.Changed, ", "))
	}
	printf(w, "\n")
	if r.Error != "" {
		printf(w, "         %s\n", r.Error)
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
		printf(w, "source   %s: %s; %d messages, %d unparsed, %d emitted, %d queued, %d of %d connections",
			s.Name, strings.Join(ls, ", "), received, parseErrs, s.Emitted, s.Queued, s.ConnectionsOpen, s.MaxConnections)
		if s.RateLimited+drops+s.Lost > 0 {
			printf(w, "; dropped %d over the rate limit, %d by the socket buffer, %d lost", s.RateLimited, drops, s.Lost)
		}
		printf(w, "\n")
		if s.LastError != "" {
			printf(w, "         last error: %s\n", s.LastError)
		}
	}
	if a := st.Audit; a != nil {
		if a.Source == audit.SourceNetlink {
			n := a.Netlink
			printf(w, "source   %s: %s netlink %s, daemon pid %d, backlog %d of %d; %d events, %d pending, %d unparsed; kernel lost %d, %d dropped",
				a.Name, a.State, cmp.Or(n.Mode, "(not open)"), n.DaemonPID, n.Backlog, n.BacklogLimit, a.Events, a.Pending, a.ParseErrors, n.KernelLost, n.Dropped)
		} else {
			printf(w, "source   %s: %s %s, offset %d of %d; %d events, %d pending, %d unparsed",
				a.Name, a.State, cmp.Or(a.File, a.Path), a.Offset, a.Size, a.Events, a.Pending, a.ParseErrors)
		}
		if a.Errors > 0 {
			printf(w, ", %d errors (last: %s)", a.Errors, a.LastError)
		}
		printf(w, "\n")
	}
	if f := st.Integrity; f != nil {
		printf(w, "source   integrity: %d paths, %d in the baseline, %d watched directories; %d changes", len(f.Paths), f.Files, f.Watches, f.Changes)
		if !f.LastScan.IsZero() {
			printf(w, "; last scan %s ago (%dms)", since(now, f.LastScan), f.LastScanMillis)
		}
		if f.Errors > 0 {
			printf(w, ", %d errors (last: %s)", f.Errors, f.LastError)
		}
		printf(w, "\n")
	}
}

// printProcessors shows each processor chain, a line each: every step's
// type and what it took in, let out, dropped and changed since the chain
// was last loaded.
func printProcessors(w io.Writer, chains []gateway.ProcessorChainStatus) {
	for _, c := range chains {
		var steps []string
		for _, s := range c.Steps {
			x := fmt.Sprintf("%s %d in, %d out", s.Type, s.In, s.Out)
			if s.Dropped > 0 {
				x += fmt.Sprintf(", %d dropped", s.Dropped)
			}
			if s.Changed > 0 {
				x += fmt.Sprintf(", %d changed", s.Changed)
			}
			steps = append(steps, x)
		}
		printf(w, "process  %s: %s\n", c.Chain, strings.Join(steps, "; "))
	}
}

// printBoard shows the board's LEDs, tamper switch and driver-enable pin,
// and the health check that decides the watchdog's kicks.
func printBoard(w io.Writer, st *gateway.Status, now time.Time) {
	if b := st.Board; b != nil {
		var leds []string
		for _, l := range b.LEDs {
			s := l.Name + " " + l.Pattern.String()
			if (l.Pattern == board.Slow || l.Pattern == board.Fast) && l.Reason != "" {
				s += " (" + l.Reason + ")"
			}
			leds = append(leds, s)
		}
		printf(w, "board    %s: %s\n", b.Profile, strings.Join(leds, ", "))
		if t := b.Tamper; t != nil {
			state := "closed"
			if t.Open {
				state = "OPEN"
			}
			printf(w, "         tamper %s %s since %s ago; %d openings, %d closings\n", t.Pin, state, since(now, t.Since), t.Openings, t.Closings)
		}
		if d := b.RS485; d != nil {
			printf(w, "         rs485 driver enable %s for %s; %d frames sent\n", d.Pin, d.Device, d.Transmits)
		}
	}
	h := st.Health
	if h.Checked.IsZero() {
		return
	}
	verdict := "ok"
	if !h.OK {
		verdict = "NOT OK for " + since(now, h.Since) + ": " + strings.Join(h.Problems, "; ")
	}
	printf(w, "health   %s (checked every %s)\n", verdict, h.Interval)
	if h.Holding != "" {
		printf(w, "         holding: %s\n", h.Holding)
	}
	kicked := "kicked"
	if !h.OK {
		kicked = "NOT kicked"
	}
	switch wd := h.Watchdog; {
	case wd != nil:
		timeout := wd.Timeout
		if timeout == "" {
			timeout = "its own timeout"
		}
		printf(w, "         watchdog %s (%s): %s, last kick %s ago\n", wd.Device, timeout, kicked, since(now, wd.LastKick))
	case h.WatchdogNote != "":
		printf(w, "         watchdog: none (%s)\n", h.WatchdogNote)
	}
	if h.Systemd {
		printf(w, "         systemd watchdog: %s\n", kicked)
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
		printf(w, "         disk: %s free, %s kept in reserve, ballast %s; the backlog can reach %s",
			bytesIEC(d.Free), bytesIEC(d.Reserve), bytesIEC(d.Ballast), bytesIEC(d.Budget))
		if d.Budget < sp.MaxBytes {
			printf(w, " (the disk holds less than max_bytes %s)", bytesIEC(sp.MaxBytes))
		}
		printf(w, "\n")
	}
	if d.Held != "" {
		printf(w, "         INTAKE HELD for %s: %s; sources wait, critical records still go in\n", since(now, d.HeldSince), d.Held)
	}
	if d.AcksInMemory {
		printf(w, "         acknowledgements kept in memory: the disk is too full to write them\n")
	}
	if sp.Quarantined > 0 {
		printf(w, "         %d damaged records quarantined since start, not delivered (see the .quarantine file beside the spool)\n", sp.Quarantined)
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
