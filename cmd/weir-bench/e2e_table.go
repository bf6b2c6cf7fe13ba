package main

import (
	"fmt"
	"slices"
	"strings"
)

// table is the run's Markdown table: one column per system, then Weir's
// ratios to each peer.
func table(res []result, o e2eOptions, env string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "End to end, %d-byte lines, %d files; fixed rates %v for %s each; flat out: %d lines x %d runs; backlog %d lines. %s.\n\n",
		tailLineSize, o.files, o.rates, o.rateFor, o.flatOut, o.runs, o.backlog, env)
	head := []string{"figure"}
	for _, r := range res {
		head = append(head, r.System)
	}
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" --- |", len(head)))
	row := func(name string, f func(r result) string) {
		cells := []string{name}
		for _, r := range res {
			c := "–"
			if r.Err == "" || len(r.FlatOut) > 0 {
				c = f(r)
			}
			cells = append(cells, c)
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
	}
	for i, rate := range o.rates {
		row(fmt.Sprintf("%d lines/s: records/s, p50 / p99 ms", rate), func(r result) string {
			if i >= len(r.Rates) {
				return "–"
			}
			x := r.Rates[i]
			return fmt.Sprintf("%.0f, %.0f / %.0f", x.Achieved, x.P50, x.P99)
		})
	}
	row("flat out records/s, min / **median** / max", func(r result) string {
		if len(r.FlatOut) == 0 {
			return "–"
		}
		v := slices.Sorted(slices.Values(r.FlatOut))
		return fmt.Sprintf("%.0f / **%.0f** / %.0f", v[0], v[len(v)/2], v[len(v)-1])
	})
	row("flat out latency p50 / p99, ms", func(r result) string { return fmt.Sprintf("%.0f / %.0f", r.FlatP50, r.FlatP99) })
	row("sender CPU s per million records", func(r result) string { return fmt.Sprintf("%.2f", r.CPUPerM) })
	row("receiver CPU s per million records", func(r result) string { return fmt.Sprintf("%.2f", r.RecvCPUPerM) })
	row("bytes on the wire per record (IP packets to the receiver)", func(r result) string { return fmt.Sprintf("%.0f", r.WirePerRec) })
	row("fsync/s sender, receiver (flat out)", func(r result) string { return fmt.Sprintf("%.0f, %.0f", r.FsyncSender, r.FsyncRecv) })
	row("backlog drain after the receiver returns, s (records/s)", func(r result) string {
		if r.DrainSeconds == 0 {
			return "–"
		}
		if r.Err != "" {
			return fmt.Sprintf("%.1f to the last line that came", r.DrainSeconds)
		}
		return fmt.Sprintf("%.1f (%.0f)", r.DrainSeconds, r.DrainRate)
	})
	row("peak RSS sender (anonymous), MiB", func(r result) string {
		return fmt.Sprintf("%.1f (%.1f)", float64(r.SenderRSS)/(1<<20), float64(r.SenderAnon)/(1<<20))
	})
	row("peak RSS receiver, MiB", func(r result) string { return fmt.Sprintf("%.1f", float64(r.RecvRSS)/(1<<20)) })
	row("written / delivered / missing (30 s after the last arrival) / duplicated", func(r result) string {
		return fmt.Sprintf("%d / %d / %d / %d", r.Written, r.Delivered, r.Missing, r.Duplicated)
	})
	if notes := slices.ContainsFunc(res, func(r result) bool { return r.Err != "" || r.Scaled != "" }); notes {
		b.WriteString("\n")
		for _, r := range res {
			if r.Scaled != "" {
				fmt.Fprintf(&b, "- %s: %s\n", r.System, r.Scaled)
			}
			if r.Err != "" {
				fmt.Fprintf(&b, "- %s: %s\n", r.System, r.Err)
			}
		}
	}
	// Weir's ratios to each peer: above 1 is Weir ahead on throughput,
	// below 1 ahead on CPU, memory and drain time.
	var weir *result
	for i := range res {
		if res[i].System == "weir" && len(res[i].FlatOut) > 0 {
			weir = &res[i]
		}
	}
	if weir == nil {
		return b.String()
	}
	var peers []result
	for _, r := range res {
		if !strings.HasPrefix(r.System, "weir") && len(r.FlatOut) > 0 {
			peers = append(peers, r)
		}
	}
	if len(peers) == 0 {
		return b.String()
	}
	b.WriteString("\nWeir / peer (records/s: above 1 is Weir ahead; CPU, RSS, latency and drain time: below 1 is Weir ahead)\n\n")
	fmt.Fprintf(&b, "| ratio |")
	for _, p := range peers {
		fmt.Fprintf(&b, " weir / %s |", p.System)
	}
	fmt.Fprintf(&b, "\n|%s\n", strings.Repeat(" --- |", len(peers)+1))
	ratio := func(name string, f func(r result) float64) {
		fmt.Fprintf(&b, "| %s |", name)
		for _, p := range peers {
			if f(p) == 0 {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(&b, " %.2f |", f(*weir)/f(p))
		}
		b.WriteString("\n")
	}
	med := func(r result) float64 {
		v := slices.Sorted(slices.Values(r.FlatOut))
		return v[len(v)/2]
	}
	ratio("flat out records/s (median)", med)
	for i, rate := range o.rates {
		ratio(fmt.Sprintf("p99 latency at %d lines/s", rate), func(r result) float64 {
			if i >= len(r.Rates) {
				return 0
			}
			return r.Rates[i].P99
		})
	}
	ratio("sender CPU per record", func(r result) float64 { return r.CPUPerM })
	ratio("sender + receiver CPU per record", func(r result) float64 { return r.CPUPerM + r.RecvCPUPerM })
	ratio("bytes on the wire per record", func(r result) float64 { return r.WirePerRec })
	ratio("backlog drain time", func(r result) float64 { return r.DrainSeconds })
	ratio("peak RSS sender", func(r result) float64 { return float64(r.SenderRSS) })
	return b.String()
}
