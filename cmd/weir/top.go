package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/ptp"
)

func newTopCmd(g *globals) *cobra.Command {
	var (
		socket   string
		interval time.Duration
		stopIn   time.Duration
		once     bool
		titles   []string
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "One 80-column screen, refreshed: records, sources, link, spool, clock, sensors",
		Long: "Shows the running gateway on one screen of 80 columns, redrawn every --interval until Ctrl-C: " +
			"records stored and acknowledged (with rates), each source, the uplink (state, RTT, loss, last ack), " +
			"the spool, the clock (state, error bound and why) and every Modbus device's values and frame-error rate. " +
			"When the output is not a terminal, each refresh is printed after the last.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 100*time.Millisecond {
				return asUsage(cmd, fmt.Errorf("--interval %s: want 100ms or more", interval))
			}
			if stopIn < 0 {
				return asUsage(cmd, fmt.Errorf("--for %s: want 0 (until interrupted) or more", stopIn))
			}
			socket, err := g.socket(cmd, socket)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if stopIn > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, stopIn)
				defer cancel()
			}
			out := cmd.OutOrStdout()
			tty := isTerminal(out)
			var prev *topView
			for {
				v := fetchTop(ctx, socket)
				var frame bytes.Buffer
				renderTop(&frame, v, prev, titles, socket)
				switch {
				case tty && prev == nil:
					printf(out, "\x1b[H\x1b[2J")
					fallthrough
				case tty:
					// Home, each line over the last frame's, the rest
					// erased: no flicker of a cleared screen. The frame's
					// text is escaped already (emit).
					printf(out, "\x1b[H")
					for _, l := range strings.Split(strings.TrimSuffix(frame.String(), "\n"), "\n") {
						printf(out, "%s\x1b[K\n", l)
					}
					printf(out, "\x1b[J")
				case prev != nil:
					printf(out, "\n")
					fallthrough
				default:
					_ = writeText(out, frame.String())
				}
				if once {
					return nil
				}
				if v.err == nil {
					prev = v
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "admin socket (default: from the configuration)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between refreshes")
	cmd.Flags().DurationVar(&stopIn, "for", 0, "stop after this long (0: at Ctrl-C)")
	cmd.Flags().BoolVar(&once, "once", false, "print one screen and exit")
	cmd.Flags().StringArrayVar(&titles, "title", nil, "a line shown above the view (repeat for more)")
	return cmd
}

// isTerminal says w is a terminal (a character device), where top redraws
// in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// topView is one refresh: the daemon's views, fetched together.
type topView struct {
	at      time.Time
	status  *gateway.Status
	link    *gateway.Link
	clock   *ptp.Status
	sensors *gateway.Sensors
	err     error // the daemon did not answer
}

func fetchTop(ctx context.Context, socket string) *topView {
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	v := &topView{at: time.Now()}
	if v.status, v.err = gateway.FetchStatus(qctx, socket); v.err != nil {
		return v
	}
	// The others are optional: a view that fails is left out.
	v.link, _ = gateway.FetchLink(qctx, socket)
	v.clock, _ = gateway.FetchPTP(qctx, socket)
	v.sensors, _ = gateway.FetchSensors(qctx, socket)
	return v
}

// renderTop writes one screen; every line fits screenWidth.
func renderTop(w io.Writer, v, prev *topView, titles []string, socket string) {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	// more adds items joined by sep, wrapped under the label's column.
	more := func(label, sep string, items []string) {
		var b bytes.Buffer
		wrapped(&b, "         ", sep, items)
		for i, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
			if i == 0 && label != "" {
				l = fmt.Sprintf("%-8s %s", label, strings.TrimPrefix(l, "         "))
			}
			lines = append(lines, l)
		}
	}
	for _, t := range titles {
		add("%s", t)
	}
	if v.err != nil {
		add("weir top  %s", v.at.UTC().Format("15:04:05 MST"))
		more("daemon", " ", strings.Fields(fmt.Sprintf("not answering on %s: %v", socket, v.err)))
		more("", " ", strings.Fields("is `weir run` running with this configuration? Trying again."))
		emit(w, lines)
		return
	}
	st := v.status
	head := fmt.Sprintf("weir top  %s  (weir %s, up %s)", st.Gateway, st.Version, since(v.at, st.Started))
	clock := v.at.UTC().Format("15:04:05 MST")
	add("%s%*s", head, max(1, screenWidth-utf8.RuneCountInString(head)), clock)

	// Records: stored by the sources, acknowledged by the collector.
	rate := func(cur, old uint64) string {
		if prev == nil || prev.status == nil || cur < old {
			return ""
		}
		dt := v.at.Sub(prev.at).Seconds()
		if dt <= 0 {
			return ""
		}
		return fmt.Sprintf(" (%.0f/s)", float64(cur-old)/dt)
	}
	var oldApp, oldAck uint64
	if prev != nil && prev.status != nil {
		oldApp, oldAck = prev.status.Appended, prev.status.Uplink.RecordsAcked
	}
	more("records", ", ", []string{
		fmt.Sprintf("%d stored%s", st.Appended, rate(st.Appended, oldApp)),
		fmt.Sprintf("%d acked by the collector%s", st.Uplink.RecordsAcked, rate(st.Uplink.RecordsAcked, oldAck)),
	})
	var srcs []string
	for _, s := range st.Sources {
		item := fmt.Sprintf("%s %d lines", s.Name, s.Lines)
		if s.Errors > 0 {
			item += fmt.Sprintf(" (%d errors)", s.Errors)
		}
		srcs = append(srcs, item)
	}
	if s := v.sensors; s != nil {
		for _, b := range s.Modbus.Buses {
			for _, d := range b.Devices {
				srcs = append(srcs, fmt.Sprintf("modbus %s %d polls", d.Name, d.Counters.Polls))
			}
		}
		for _, l := range s.Lines {
			srcs = append(srcs, fmt.Sprintf("%s %d lines", l.Name, l.Stats.Lines))
		}
	}
	if st.Syslog != nil {
		srcs = append(srcs, fmt.Sprintf("%s %d emitted", st.Syslog.Name, st.Syslog.Emitted))
	}
	if st.Audit != nil {
		srcs = append(srcs, fmt.Sprintf("%s %d events", st.Audit.Name, st.Audit.Events))
	}
	if st.Integrity != nil {
		srcs = append(srcs, fmt.Sprintf("integrity %d changes", st.Integrity.Changes))
	}
	if len(srcs) > 0 {
		more("sources", ", ", srcs)
	}

	// The link.
	u := st.Uplink
	if u.State == "disabled" {
		more("link", " ", strings.Fields("disabled: no endpoint configured; records stay spooled"))
	} else {
		first := fmt.Sprintf("%s %s", u.State, u.Endpoint)
		if u.State == "connected" && !u.ConnectedAt.IsZero() {
			first += " for " + since(v.at, u.ConnectedAt)
		}
		items := []string{first}
		if l := v.link; l != nil {
			for _, e := range l.Uplink.Endpoints {
				if e.Active || len(l.Uplink.Endpoints) == 1 {
					items = append(items, "rtt "+msStr(e.SRTTMillis), "loss "+lossStr(e.Loss1m, e.Loss15m)+" (1m/15m)")
				}
			}
		}
		ack := "no ack yet"
		if !u.LastAckAt.IsZero() {
			ack = "last ack " + since(v.at, u.LastAckAt) + " ago"
		}
		items = append(items, ack)
		more("link", ", ", items)
		if u.LastError != "" {
			more("", " ", strings.Fields(fmt.Sprintf("last error (%s): %s", u.LastReason, u.LastError)))
		}
		if u.CertWarning != "" {
			more("", " ", strings.Fields("WARNING: "+u.CertWarning))
		}
	}

	// The spool.
	sp := st.Spool
	items := []string{fmt.Sprintf("backlog %d records (%s, %.1f%% of %s)", sp.Records, bytesIEC(sp.Bytes), percent(sp.Used, sp.MaxBytes), bytesIEC(sp.MaxBytes))}
	if !sp.Oldest.IsZero() {
		items = append(items, "oldest "+since(v.at, sp.Oldest))
	}
	items = append(items, bytesIEC(sp.DiskBytes)+" on disk")
	more("spool", ", ", items)
	if lost := lossLine(sp); lost != "" {
		more("", " ", strings.Fields(lost))
	}

	// The clock.
	if c := v.clock; c != nil {
		items, why := clockItems(c, v.at)
		more("clock", ", ", items)
		if why != "" {
			more("", " ", strings.Fields(why))
		}
		if c.Error != "" {
			more("", " ", strings.Fields("error: "+c.Error))
		}
	}

	// The sensors.
	if s := v.sensors; s != nil {
		for _, b := range s.Modbus.Buses {
			more("modbus", ", ", []string{
				fmt.Sprintf("%s %s (%s)", b.Name, b.State, b.Type),
				fmt.Sprintf("%d requests", b.Counters.Attempts),
				fmt.Sprintf("%d frame errors", b.Counters.FrameErrors()),
				fmt.Sprintf("frame-error rate %s (1m/15m)", ferStr(b.FrameErrorRate1m, b.FrameErrorRate15m)),
			})
			if b.Error != "" {
				more("", " ", strings.Fields("error: "+b.Error))
			}
			for _, d := range b.Devices {
				last := "never polled"
				if !d.LastPoll.IsZero() {
					last = "polled " + since(s.At, d.LastPoll) + " ago"
				}
				items := []string{fmt.Sprintf("%s unit %d %s", d.Name, d.Unit, d.State), last}
				if d.RoundTrip != "" {
					items = append(items, "rtt "+shortDuration(d.RoundTrip))
				}
				items = append(items, fmt.Sprintf("%d failed", d.Counters.PollsFailed))
				more("", ", ", items)
				if len(d.Values) > 0 {
					var b bytes.Buffer
					wrapped(&b, "           ", "  ", valueItems(d.Values))
					lines = append(lines, strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")...)
				}
			}
		}
	}
	emit(w, lines)
}

// clockItems says the clock's state and error bound, and why it is free
// running when that is by configuration.
func clockItems(c *ptp.Status, now time.Time) (items []string, why string) {
	bound := "bound unknown"
	if c.ErrorBoundNS >= 0 {
		bound = "error bound ±" + time.Duration(c.ErrorBoundNS).String()
	}
	items = []string{c.State, bound}
	switch {
	case c.Mode == ptp.ModeSystem:
		why = "clock.mode is system: Weir does not synchronise the clock (builtin or linuxptp would), so records say freerun with an unknown bound"
	default:
		items = append(items, "mode "+string(c.Mode))
		if c.Grandmaster != "" {
			items = append(items, "grandmaster "+c.Grandmaster)
		} else {
			items = append(items, "no grandmaster heard")
		}
		if !c.LastSync.IsZero() {
			items = append(items, fmt.Sprintf("offset %s", time.Duration(c.OffsetNS)),
				fmt.Sprintf("path delay %s", time.Duration(c.PathDelayNS)), "last sync "+since(now, c.LastSync)+" ago")
		}
	}
	return items, why
}

// emit writes the lines, each cut to screenWidth.
func emit(w io.Writer, lines []string) {
	for _, l := range lines {
		if utf8.RuneCountInString(l) > screenWidth {
			l = string([]rune(l)[:screenWidth-1]) + "…"
		}
		printf(w, "%s\n", l)
	}
}
