package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/rules"
)

func newAlertsCmd(g *globals) *cobra.Command {
	return newShowCmd(g, "alerts", "Show the edge rules and correlation patterns: state (quiet, firing, cooling down), counts, last alert",
		gateway.FetchAlerts, func(w io.Writer, st *rules.Status) { printAlerts(w, st, time.Now()) })
}

// printAlerts shows each rule and pattern, one line each, then the last
// alerts' messages.
func printAlerts(w io.Writer, st *rules.Status, now time.Time) {
	if !st.Enabled {
		printf(w, "rules are off (rules.enabled: false): no record is evaluated\n")
		return
	}
	var raised []string
	for _, l := range rules.Levels() {
		if n := st.Stats.Alerts[l.String()]; n > 0 {
			raised = append(raised, fmt.Sprintf("%s %d", l, n))
		}
	}
	if len(raised) == 0 {
		raised = []string{"none"}
	}
	printf(w, "%d records evaluated, %d matches; alerts raised: %s\n", st.Stats.Evaluated, st.Stats.Matched, strings.Join(raised, ", "))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	printf(tw, "RULE\tTYPE\tLEVEL\tSTATE\tMATCHED\tNOW\tALERTS\tLAST ALERT\n")
	for _, r := range st.Rules {
		state := stateWord(r.State)
		if len(r.FiringGroups) > 0 {
			state += " (" + strings.Join(r.FiringGroups, ", ") + ")"
		}
		printf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", r.Name, r.Type, r.Level, state, r.Matched, r.Now, r.Alerts, lastAlert(r.LastAlert, now))
	}
	for _, p := range st.Patterns {
		if !p.Enabled {
			printf(tw, "%s\tcorrelation\t%s\toff\t\t\t\t\n", p.Pattern, p.Level)
			continue
		}
		printf(tw, "%s\tcorrelation\t%s\t%s\t\t%d open\t%d\t%s\n", p.Pattern, p.Level, stateWord(p.State), p.Open, p.Detected, lastAlert(p.Last, now))
	}
	tw.Flush()
	for _, r := range st.Rules {
		if r.LastAlert != nil {
			printf(w, "  %s: %s\n", r.Name, r.LastAlert.Message)
		}
	}
	for _, p := range st.Patterns {
		if p.Last != nil {
			printf(w, "  %s: %s [%s]\n", p.Pattern, p.Last.Message, p.Last.CorrelationID)
		}
	}
	if st.Stats.HeldByCooldown+st.Stats.Late+st.Stats.GroupsForgotten > 0 {
		printf(w, "%d alerts held by a cooldown, %d records too late for their window, %d groups forgotten\n",
			st.Stats.HeldByCooldown, st.Stats.Late, st.Stats.GroupsForgotten)
	}
}

func stateWord(s string) string {
	if s == rules.StateCooling {
		return "cooling down"
	}
	return s
}

func lastAlert(a *rules.AlertInfo, now time.Time) string {
	if a == nil {
		return "-"
	}
	return fmt.Sprintf("%s %s ago", a.Level, since(now, a.At))
}

// alertsLine is weir status's summary of the rules.
func alertsLine(st rules.Status) string {
	if !st.Enabled {
		return ""
	}
	firing := 0
	for _, r := range st.Rules {
		if r.State == rules.StateFiring {
			firing++
		}
	}
	var raised []string
	for _, l := range rules.Levels() {
		if n := st.Stats.Alerts[l.String()]; n > 0 {
			raised = append(raised, fmt.Sprintf("%s %d", l, n))
		}
	}
	var corr uint64
	for _, n := range st.Stats.Correlations {
		corr += n
	}
	s := fmt.Sprintf("%d rules, %d firing; ", len(st.Rules), firing)
	if len(raised) == 0 {
		s += "no alert raised"
	} else {
		s += "raised " + strings.Join(raised, ", ")
	}
	return s + fmt.Sprintf("; %d correlations (`weir alerts` shows each rule)", corr)
}
