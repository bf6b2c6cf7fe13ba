package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/rules"
)

func TestPrintAlerts(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	st := &rules.Status{Enabled: true, At: now,
		Stats: rules.Stats{Evaluated: 1200, Matched: 14, Alerts: map[string]uint64{"PAGE": 1, "NOTIFY": 2},
			Correlations: map[string]uint64{"distributed": 1}, HeldByCooldown: 3},
		Rules: []rules.RuleStatus{
			{Name: "auth_failures", Type: "count", Level: rules.LevelPage, State: rules.StateCooling, Matched: 12, Now: "2/20 within 5m",
				Alerts: 1, LastAlert: &rules.AlertInfo{At: now.Add(-7 * time.Minute), Level: rules.LevelPage, Message: "PAGE auth_failures: 10 records within 5m"}},
			{Name: "modbus_device_unreachable", Type: "absent", Level: rules.LevelNotify, State: rules.StateFiring, Matched: 2,
				Now: "silent 6m of 5m (meter)", FiringGroups: []string{"meter"}},
		},
		Patterns: []rules.PatternStatus{
			{Pattern: "distributed", Enabled: true, Level: rules.LevelNotify, State: rules.StateFiring, Open: 1, Detected: 1,
				Last: &rules.AlertInfo{At: now.Add(-time.Minute), Level: rules.LevelNotify, Message: "NOTIFY distributed: modbus_frame_error from 3 devices", CorrelationID: "distributed:modbus_frame_error:1748779140"}},
			{Pattern: "escalating", Level: rules.LevelPage},
		}}
	var b bytes.Buffer
	printAlerts(&b, st, now)
	out := b.String()
	for _, want := range []string{
		"1200 records evaluated, 14 matches; alerts raised: NOTIFY 2, PAGE 1",
		"auth_failures",
		"cooling down",
		"2/20 within 5m",
		"PAGE 7m0s ago",
		"firing (meter)",
		"distributed",
		"1 open",
		"escalating",
		"  auth_failures: PAGE auth_failures: 10 records within 5m",
		"[distributed:modbus_frame_error:1748779140]",
		"3 alerts held by a cooldown",
	} {
		require.Contains(t, out, want)
	}
	b.Reset()
	printAlerts(&b, &rules.Status{}, now)
	require.Contains(t, b.String(), "rules are off")
	require.Equal(t, "2 rules, 1 firing; raised NOTIFY 2, PAGE 1; 1 correlations (`weir alerts` shows each rule)", alertsLine(*st))
}
