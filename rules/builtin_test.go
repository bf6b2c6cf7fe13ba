package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

// TestBuiltinRules: each built-in rule takes the records Weir's inputs
// make for what it watches (field names as the inputs write them; the
// gateway's tests feed it the gateway's own records), and not ordinary
// ones.
func TestBuiltinRules(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	for _, r := range Builtin() {
		require.NoError(t, r.Validate(), r.Name)
		require.NotEmpty(t, r.Description, r.Name)
	}
	sshd := logRec("plc-7", "sshd[411]: Failed password for root from 10.0.0.9 port 50022 ssh2")
	auditAuth := event.Event{Source: "audit", Kind: event.KindAudit, Severity: event.SevWarning,
		Fields: []event.Field{event.Str("types", "USER_AUTH"), event.Str("res", "failed"), event.Bool("success", false)}}
	auditOK := auditAuth
	auditOK.Fields = []event.Field{event.Str("types", "USER_AUTH"), event.Bool("success", true)}
	console := event.Event{Source: "weir:console", Kind: event.KindAudit, Fields: []event.Field{event.Str("action", "login_failed")}}
	avc := event.Event{Source: "audit", Kind: event.KindAudit, Fields: []event.Field{event.Str("avc", "denied { read }")}}
	sudo := logRec("gw", "sudo: alice : user NOT in sudoers ; TTY=pts/0 ; COMMAND=/bin/sh")
	tamper := event.Event{Source: "weir:board", Kind: event.KindAlert, Severity: event.SevCritical,
		Fields: []event.Field{event.Str("state", "open")}}
	tamperClosed := tamper
	tamperClosed.Fields = []event.Field{event.Str("state", "closed")}
	selfChange := event.Event{Source: "integrity", Kind: event.KindIntegrity, Severity: event.SevCritical,
		Fields: []event.Field{event.Str("path", "/usr/bin/weir"), event.Str("change", "modified")}}
	keyChange := event.Event{Source: "integrity", Kind: event.KindIntegrity, Severity: event.SevWarning,
		Fields: []event.Field{event.Str("path", "/etc/weir/gateway-key.pem"), event.Str("change", "modified")}}
	otherChange := keyChange
	otherChange.Fields = []event.Field{event.Str("path", "/etc/hosts"), event.Str("change", "modified")}
	baseline := event.Event{Source: "integrity", Kind: event.KindIntegrity, Severity: event.SevNotice,
		Fields: []event.Field{event.Str("change", "baseline")}}
	busTel := *busTelemetry("rs485", 1000, 3)
	busTel.Fields = append(busTel.Fields, event.Uint("overlong_frames", 0), event.Uint("other_frame_errors", 0))
	diag := frameError("rs485", "meter")
	read := *reading("meter")
	uplink := event.Event{Source: "weir:uplink", Kind: event.KindTelemetry, Fields: []event.Field{event.Str("endpoint", "c:7443"), event.Float("loss_1m", 0.3)}}
	clock := *clockRec("holdover")
	spool := event.Event{Source: "weir:spool", Kind: event.KindTelemetry, Fields: []event.Field{event.Float("fill", 0.85), event.Bool("intake_held", false)}}
	held := event.Event{Source: "weir:spool", Kind: event.KindAlert, Message: "spool: intake held: disk full"}
	quarantine := event.Event{Source: "weir:spool", Kind: event.KindAlert, Message: "spool: 3 damaged records quarantined"}
	drops := event.Event{Source: "syslog", Kind: event.KindLog, Severity: event.SevWarning,
		Fields: []event.Field{event.Uint("dropped_rate_limit", 120), event.Str("format", "drop_report")}}
	ordinary := logRec("gw", "2025-06-01 pump 3 started: flow 12.5 m3/h")

	takes := map[string][]event.Event{
		"auth_failures":             {sshd, auditAuth, console},
		"authz_failures":            {avc, sudo},
		"tamper":                    {tamper},
		"integrity_self":            {selfChange, keyChange},
		"modbus_frame_errors":       {busTel},
		"modbus_frame_error":        {diag},
		"modbus_device_unreachable": {read},
		"uplink_loss":               {uplink},
		"ptp_holdover":              {clock},
		"ptp_freerun":               {clock},
		"spool_pressure":            {spool, held},
		"syslog_drops":              {drops},
	}
	leaves := map[string][]event.Event{
		"auth_failures":  {auditOK, ordinary, sudo},
		"tamper":         {tamperClosed},
		"integrity_self": {otherChange, baseline},
		"spool_pressure": {quarantine},
	}
	for _, r := range Builtin() {
		c, err := compileRule(r)
		require.NoError(t, err)
		want, ok := takes[r.Name]
		require.True(t, ok, "no sample for %s", r.Name)
		for _, ev := range want {
			require.True(t, c.m.Match(&ev), "%s should take %s %v", r.Name, ev.Source, ev.Fields)
		}
		for _, ev := range append(leaves[r.Name], ordinary, read, diag) {
			if ev.Source == read.Source && r.Name == "modbus_device_unreachable" || ev.Source == diag.Source && r.Name == "modbus_frame_error" {
				continue
			}
			require.False(t, c.m.Match(&ev), "%s should leave %s %q %v", r.Name, ev.Source, ev.Message, ev.Fields)
		}
	}
	// The spool's and the clock's conditions.
	sp, _ := compileRule(findRule("spool_pressure"))
	require.True(t, sp.when.Match(&spool))
	require.True(t, sp.when.Match(&held))
	low := spool
	low.Fields = []event.Field{event.Float("fill", 0.5), event.Bool("intake_held", false)}
	require.False(t, sp.when.Match(&low))
	system := *clockRec("freerun")
	system.Fields[1] = event.Str("mode", "system")
	fr, _ := compileRule(findRule("ptp_freerun"))
	require.False(t, fr.m.Match(&system), "a system clock is always free-running: not news")
}

func findRule(name string) RuleConfig {
	for _, r := range Builtin() {
		if r.Name == name {
			return r
		}
	}
	return RuleConfig{}
}

// TestBuiltinAuthFailures end to end on the engine: the tenth failure in
// five minutes pages, the twentieth after the cooldown escalates.
func TestBuiltinAuthFailures(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Correlation.Distributed.Enabled = false // one host: no pattern
	h := newHarness(t, cfg)
	sshd := logRec("gw", "sshd[411]: Failed password for root from 10.0.0.9 port 50022 ssh2")
	for i := range 9 {
		require.Empty(t, h.emit(float64(i*10), sshd))
	}
	require.Equal(t, []string{"PAGE"}, levels(h.emit(95, sshd)))
	for i := range 19 {
		require.Empty(t, h.emit(700+float64(i), sshd), "%d", i)
	}
	require.Equal(t, []string{"ESCALATE"}, levels(h.emit(720, sshd)))
	st := h.e.Status()
	for _, r := range st.Rules {
		if r.Name == "auth_failures" {
			require.Equal(t, StateFiring, r.State)
			require.Equal(t, uint64(2), r.Alerts)
			require.Equal(t, LevelEscalate, r.LastAlert.Level)
		}
	}
	require.Equal(t, uint64(1), st.Stats.Alerts["PAGE"])
	require.Equal(t, uint64(1), st.Stats.Alerts["ESCALATE"])
	h.now = at(720 + 300)
	for _, r := range h.e.Status().Rules {
		if r.Name == "auth_failures" {
			require.Equal(t, StateCooling, r.State)
		}
	}
	h.now = at(720 + 601)
	for _, r := range h.e.Status().Rules {
		if r.Name == "auth_failures" {
			require.Equal(t, StateQuiet, r.State)
		}
	}
	_ = time.Second
}
