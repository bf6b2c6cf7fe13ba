package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/sensors/modbus/poll"
)

func newSensorsCmd(g *globals) *cobra.Command {
	cmd := newShowCmd(g, "sensors", "Show each Modbus bus and device (last poll, values, error counters, frame-error rate) and each line sensor",
		gateway.FetchSensors, printSensors)
	cmd.AddCommand(newSensorsReadCmd(g))
	return cmd
}

// screenWidth is what the diagnostics fit: a serial console's 80 columns.
const screenWidth = 80

func ferStr(a, b float64) string { return fmt.Sprintf("%.2f%%/%.2f%%", 100*a, 100*b) }

// errorsLine spells out a bus's or device's error counters.
func errorsLine(c poll.Counters) string {
	return fmt.Sprintf("frame errors %d (crc %d, short %d, long %d, other %d); timeouts %d, exceptions %d, retries %d",
		c.FrameErrors(), c.CRCErrors, c.ShortFrames, c.OverlongFrames, c.OtherFrames, c.Timeouts, c.Exceptions, c.Retries)
}

func valueItems(vs []poll.Value) []string {
	items := make([]string, 0, len(vs))
	for _, v := range vs {
		s := v.Name + "=" + v.Text
		if v.Unit != "" {
			s += " " + v.Unit
		}
		items = append(items, s)
	}
	return items
}

// wrapped prints items separated by sep, starting each line with indent
// and breaking lines before screenWidth (an item longer than a line gets
// one of its own).
func wrapped(w io.Writer, indent, sep string, items []string) {
	line := indent
	for _, it := range items {
		if line != indent && utf8.RuneCountInString(line+sep+it) > screenWidth {
			printf(w, "%s\n", line+strings.TrimRight(sep, " "))
			line = indent
		}
		if line != indent {
			line += sep
		}
		line += it
	}
	if line != indent {
		printf(w, "%s\n", line)
	}
}

// shortDuration rounds a Go duration string for a table ("3.163683ms"
// becomes "3.2ms").
func shortDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s
	}
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// printSensors prints each bus, then its devices as a table and their
// values, within 80 columns for names of ordinary length; the counters a
// table cannot hold go on lines of their own.
func printSensors(w io.Writer, s *gateway.Sensors) {
	if len(s.Modbus.Buses) == 0 && len(s.Lines) == 0 {
		printf(w, "no sensors configured (inputs.modbus, inputs.lines)\n")
		return
	}
	for i, b := range s.Modbus.Buses {
		if i > 0 {
			printf(w, "\n")
		}
		printf(w, "bus %s (%s %s): %s\n", b.Name, b.Type, b.Line, b.State)
		if b.Error != "" {
			printf(w, "    error: %s\n", b.Error)
		}
		wrapped(w, "    ", ", ", []string{
			fmt.Sprintf("%d requests", b.Counters.Attempts),
			fmt.Sprintf("frame-error rate %s (1m/15m)", ferStr(b.FrameErrorRate1m, b.FrameErrorRate15m)),
			fmt.Sprintf("%d diagnostics suppressed", b.DiagnosticsSuppressed),
		})
		wrapped(w, "    ", " ", strings.Fields(errorsLine(b.Counters)))
		if len(b.Devices) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		printf(tw, "  DEVICE\tUNIT\tSTATE\tLAST POLL\tRTT\tPOLLS\tFAILED\tFER 1m/15m\n")
		for _, d := range b.Devices {
			last := "never"
			if !d.LastPoll.IsZero() {
				last = since(s.At, d.LastPoll) + " ago"
			}
			rtt := "-"
			if d.RoundTrip != "" {
				rtt = shortDuration(d.RoundTrip)
			}
			c := d.Counters
			printf(tw, "  %s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\n", d.Name, d.Unit, d.State, last, rtt,
				c.Polls, c.PollsFailed, ferStr(d.FrameErrorRate1m, d.FrameErrorRate15m))
		}
		tw.Flush()
		for _, d := range b.Devices {
			if d.Backoff != "" {
				printf(w, "    %s: backed off, next poll in %s\n", d.Name, d.Backoff)
			}
			if len(d.Values) > 0 {
				wrapped(w, "    ", "  ", append([]string{d.Name + ":"}, valueItems(d.Values)...))
			}
			if c := d.Counters; c.FrameErrors()+c.Timeouts+c.Exceptions+c.Retries > 0 {
				wrapped(w, "    ", " ", strings.Fields(d.Name+": "+errorsLine(c)))
			}
			if d.LastError != "" {
				wrapped(w, "    ", " ", strings.Fields(fmt.Sprintf("%s: last error (%s): %s", d.Name, d.LastVerdict, d.LastError)))
			}
		}
	}
	for i, l := range s.Lines {
		if i > 0 || len(s.Modbus.Buses) > 0 {
			printf(w, "\n")
		}
		state := "closed"
		if l.Stats.Open {
			state = "open"
		}
		last := "never"
		if l.Stats.LastLine != 0 {
			last = since(s.At, time.Unix(0, l.Stats.LastLine)) + " ago"
		}
		st := l.Stats
		printf(w, "line sensor %s (%s): %s\n", l.Name, l.Device, state)
		wrapped(w, "    ", ", ", []string{
			fmt.Sprintf("%d lines", st.Lines), fmt.Sprintf("%d checksum ok", st.OK), fmt.Sprintf("%d without", st.None),
			fmt.Sprintf("%d mismatched", st.Mismatches), fmt.Sprintf("%d missing", st.Missing),
			fmt.Sprintf("%d malformed", st.Malformed), "last line " + last,
		})
	}
}
