package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

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

func ferStr(a, b float64) string { return fmt.Sprintf("%.2f%%/%.2f%%", 100*a, 100*b) }

func countersCols(c poll.Counters) string {
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d", c.Attempts, c.CRCErrors, c.ShortFrames, c.OverlongFrames,
		c.OtherFrames, c.Timeouts, c.Exceptions, c.Retries)
}

func valuesLine(vs []poll.Value) string {
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		s := v.Name + "=" + v.Text
		if v.Unit != "" {
			s += " " + v.Unit
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "  ")
}

func printSensors(w io.Writer, s *gateway.Sensors) {
	if len(s.Modbus.Buses) == 0 && len(s.Lines) == 0 {
		printf(w, "no sensors configured (inputs.modbus, inputs.lines)\n")
		return
	}
	if len(s.Modbus.Buses) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		printf(tw, "BUS\tTYPE\tLINE\tSTATE\tATTEMPTS\tCRC\tSHORT\tLONG\tOTHER\tTIMEOUT\tEXC\tRETRY\tFER 1m/15m\tDIAG SUPPRESSED\n")
		for _, b := range s.Modbus.Buses {
			printf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", b.Name, b.Type, b.Line, b.State, countersCols(b.Counters),
				ferStr(b.FrameErrorRate1m, b.FrameErrorRate15m), b.DiagnosticsSuppressed)
		}
		tw.Flush()
		for _, b := range s.Modbus.Buses {
			if b.Error != "" {
				printf(w, "  %s: %s\n", b.Name, b.Error)
			}
		}
		printf(w, "\n")
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		printf(tw, "DEVICE\tBUS\tUNIT\tSTATE\tLAST POLL\tRTT\tPOLLS\tFAILED\tATTEMPTS\tCRC\tSHORT\tLONG\tOTHER\tTIMEOUT\tEXC\tRETRY\tFER 1m/15m\n")
		for _, b := range s.Modbus.Buses {
			for _, d := range b.Devices {
				last := "never"
				if !d.LastPoll.IsZero() {
					last = since(s.At, d.LastPoll) + " ago"
				}
				state := d.State
				if d.Backoff != "" {
					state += " (next in " + d.Backoff + ")"
				}
				rtt := d.RoundTrip
				if rtt == "" {
					rtt = "-"
				}
				printf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", d.Name, b.Name, d.Unit, state, last, rtt,
					d.Counters.Polls, d.Counters.PollsFailed, countersCols(d.Counters), ferStr(d.FrameErrorRate1m, d.FrameErrorRate15m))
			}
		}
		tw.Flush()
		for _, b := range s.Modbus.Buses {
			for _, d := range b.Devices {
				if len(d.Values) > 0 {
					printf(w, "  %s: %s\n", d.Name, valuesLine(d.Values))
				}
				if d.LastError != "" {
					printf(w, "  %s: last error (%s): %s\n", d.Name, d.LastVerdict, d.LastError)
				}
			}
		}
	}
	if len(s.Lines) > 0 {
		if len(s.Modbus.Buses) > 0 {
			printf(w, "\n")
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		printf(tw, "LINE SENSOR\tDEVICE\tOPEN\tLINES\tOK\tNONE\tMISMATCH\tMISSING\tMALFORMED\tLAST LINE\n")
		for _, l := range s.Lines {
			last := "never"
			if l.Stats.LastLine != 0 {
				last = since(s.At, time.Unix(0, l.Stats.LastLine)) + " ago"
			}
			st := l.Stats
			printf(tw, "%s\t%s\t%t\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", l.Name, l.Device, st.Open, st.Lines, st.OK, st.None,
				st.Mismatches, st.Missing, st.Malformed, last)
		}
		tw.Flush()
	}
}
