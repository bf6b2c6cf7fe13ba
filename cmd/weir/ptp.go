package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/ptp"
)

func newPTPCmd(g *globals) *cobra.Command {
	return newShowCmd(g, "ptp", "Show the running gateway's clock: mode, state, grandmaster, offset, error bound",
		gateway.FetchPTP, func(w io.Writer, st *ptp.Status) { printPTP(w, st, time.Now()) })
}

// printPTP prints st in the spirit of pmc: one "name value" per line.
func printPTP(w io.Writer, st *ptp.Status, now time.Time) {
	row := func(k, v string) { printf(w, "%-20s %s\n", k, v) }
	row("mode", string(st.Mode))
	row("state", st.State)
	row("source", st.Source)
	if st.PortState != "" {
		row("port_state", st.PortState)
	}
	gm := "none"
	if st.Grandmaster != "" {
		gm = st.Grandmaster
	}
	if st.Mode != ptp.ModeSystem {
		row("grandmaster", fmt.Sprintf("%s (present %t)", gm, st.GrandmasterPresent))
		row("offset", time.Duration(st.OffsetNS).String())
		row("path_delay", time.Duration(st.PathDelayNS).String())
	}
	if st.PHC != "" {
		row("phc", st.PHC)
	}
	if st.UTCOffsetKnown {
		row("utc_offset", fmt.Sprintf("%ds (valid %t, ptp timescale %t)", st.UTCOffset, st.UTCOffsetValid, st.PTPTimescale))
		if st.TimeSource != "" {
			row("time_source", fmt.Sprintf("%s (time traceable %t)", st.TimeSource, st.TimeTraceable))
		}
	}
	if st.Mode == ptp.ModeBuiltin {
		row("correction", time.Duration(st.CorrectionNS).String())
		row("frequency", fmt.Sprintf("%+.1f ppb", st.FrequencyPPB))
		row("servo", st.Servo)
		row("timestamping", st.Timestamping)
		if len(st.Messages) > 0 {
			keys := slices.Sorted(maps.Keys(st.Messages))
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = fmt.Sprintf("%s=%d", k, st.Messages[k])
			}
			row("messages", strings.Join(parts, " "))
		}
	}
	bound := "unknown"
	if st.ErrorBoundNS >= 0 {
		bound = time.Duration(st.ErrorBoundNS).String()
	}
	row("error_bound", bound)
	since := "never"
	if !st.LastSync.IsZero() {
		since = now.Sub(st.LastSync).Round(time.Millisecond).String() + " ago"
	}
	row("last_sync", since)
	if st.Error != "" {
		row("error", st.Error)
	}
}
