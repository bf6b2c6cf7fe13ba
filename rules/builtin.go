package rules

import (
	"time"

	"github.com/weirgw/weir/match"
)

// Builtin is the rule set a gateway starts with, fitted to an OT site: few
// people log in, devices answer on a fixed schedule, and the link and the
// clock are the site's lifelines. Each rule says why in its description.
// The records they look at are those Weir's own inputs make; a rule of the
// configuration with one of these names replaces it.
func Builtin() []RuleConfig {
	f := func(v float64) *float64 { return &v }
	frameErrors := []string{"crc_error", "short_frame", "overlong_frame", "wrong_unit", "wrong_function", "frame_error"}
	rs := []RuleConfig{
		{
			Name: "auth_failures", Type: TypeCount, Level: LevelPage, Count: 10, Window: 5 * time.Minute,
			Cooldown: 10 * time.Minute, Escalation: 2, Correlate: true,
			Description: "Ten failed logins in five minutes (audit, syslog, tailed logs, the serial console): on a site where few people log in that is a password being guessed, not fat fingers.",
			Match: match.Spec{Any: []match.Spec{
				{Kind: []string{"audit"}, Fields: []match.Field{
					{Key: "types", Regex: `(^|,)(USER_AUTH|USER_LOGIN|USER_ERR|GRP_AUTH|USER_CHAUTHTOK)(,|$)`},
					{Key: "success", Equals: "false"}}},
				{Kind: []string{"audit"}, Source: []string{"weir:console"}, Fields: []match.Field{
					{Key: "action", In: []string{"login_failed", "login_refused"}}}},
				{Kind: []string{"log"}, Message: &match.Text{Contains: []string{
					"authentication failure", "Failed password", "Invalid user", "FAILED LOGIN", "Failed publickey"}}},
			}},
		},
		{
			Name: "authz_failures", Type: TypeCount, Level: LevelNotify, Count: 5, Window: 5 * time.Minute,
			Escalation: 2, Correlate: true,
			Description: "Five denials in five minutes: someone logged in is trying what they may not (SELinux denials, accounts refused, sudo refusals); worth a look, not a page.",
			Match: match.Spec{Any: []match.Spec{
				{Kind: []string{"audit"}, Fields: []match.Field{{Key: "avc", Prefix: "denied"}}},
				{Kind: []string{"audit"}, Fields: []match.Field{
					{Key: "types", Regex: `(^|,)USER_ACCT(,|$)`}, {Key: "success", Equals: "false"}}},
				{Kind: []string{"audit"}, Fields: []match.Field{{Key: "exit", In: []string{"-13", "-1"}}}},
				{Kind: []string{"log"}, Message: &match.Text{Contains: []string{
					"NOT in sudoers", "command not allowed", "not allowed to execute", "user NOT authorized"}}},
			}},
		},
		{
			Name: "tamper", Type: TypeCount, Level: LevelCritical, Count: 1, Window: time.Minute,
			Cooldown: time.Minute, Correlate: true,
			Description: "The enclosure was opened: on an unmanned site either a visit someone should know of, or an intrusion. Critical at the first opening.",
			Match: match.Spec{Source: []string{"weir:board"}, Kind: []string{"alert"},
				Fields: []match.Field{{Key: "state", Equals: "open"}}},
		},
		{
			Name: "integrity_self", Type: TypeCount, Level: LevelCritical, Count: 1, Window: time.Minute,
			Cooldown: time.Minute, Correlate: true,
			Description: "Weir's own binary, configuration or keys changed: an update is announced beforehand; anything else is someone taking over the gateway. Critical at the first change.",
			Match: match.Spec{Kind: []string{"integrity"},
				Not: &match.Spec{Fields: []match.Field{{Key: "change", Equals: "baseline"}}},
				Any: []match.Spec{
					{SeverityAtLeast: "crit"}, // the integrity input's verdict on Weir's own binary and configuration
					{Fields: []match.Field{{Key: "path", Prefix: "/etc/weir/"}}},
				}},
		},
		{
			Name: "modbus_frame_errors", Type: TypeRate, Level: LevelNotify, Window: 5 * time.Minute,
			Cooldown: 30 * time.Minute, GroupBy: []string{"bus"}, Correlate: true,
			Description: "Over 1 % of a bus's frames damaged for five minutes: readings are lost to retries, and the cause is nearly always EMI (a drive nearby, an unshielded run, a missing terminator, a ground loop).",
			Match: match.Spec{Kind: []string{"telemetry"}, SourcePrefix: []string{"modbus:"},
				Fields: []match.Field{{Key: "attempts"}, {Key: "crc_errors"}}},
			Rate: RateConfig{Errors: []string{"crc_errors", "short_frames", "overlong_frames", "other_frame_errors"},
				Total: []string{"attempts"}, Above: 0.01, MinTotal: 100},
		},
		{
			Name: "modbus_frame_error", Type: TypeCount, Level: LevelNone, Count: 1, Window: 5 * time.Minute, Escalation: 2, Correlate: true,
			Description: "Each damaged frame, as an event type and no alert of its own (modbus_frame_errors judges a bus): damaged frames from several devices at once point to one cause such as EMI, which the distributed pattern reports.",
			Match: match.Spec{Kind: []string{"telemetry"}, SourcePrefix: []string{"modbus:"},
				Fields: []match.Field{{Key: "verdict", In: frameErrors}}},
		},
		{
			Name: "modbus_device_unreachable", Type: TypeAbsent, Level: LevelNotify, For: 5 * time.Minute,
			Cooldown: time.Hour, GroupBy: []string{"device"}, Correlate: true,
			Description: "No reading from a Modbus device for five minutes (a device polled less often than that needs this rule replaced): its values have gone stale; a cable, a power supply or the device itself.",
			Match:       match.Spec{Kind: []string{"reading"}, SourcePrefix: []string{"modbus:"}, Fields: []match.Field{{Key: "device"}}},
		},
		{
			Name: "uplink_loss", Type: TypeSustained, Level: LevelNotify, For: 10 * time.Minute,
			Cooldown: time.Hour, GroupBy: []string{"endpoint"}, Correlate: true,
			Description: "Over 20 % of the link's segments lost for ten minutes: the backlog grows and records arrive late; the radio, the fibre or the carrier needs a look.",
			Match:       match.Spec{Source: []string{"weir:uplink"}, Kind: []string{"telemetry"}},
			When:        match.Spec{Fields: []match.Field{{Key: "loss_1m", Above: f(0.2)}}},
		},
		{
			Name: "ptp_holdover", Type: TypeSustained, Level: LevelNotify, For: 15 * time.Minute,
			Cooldown: time.Hour, Correlate: true,
			Description: "The PTP clock in holdover for fifteen minutes: record times drift with the local oscillator, and the order of events across devices can no longer be trusted.",
			Match: match.Spec{Source: []string{"weir:clock"}, Kind: []string{"telemetry"},
				Not: &match.Spec{Fields: []match.Field{{Key: "mode", Equals: "system"}}}},
			When: match.Spec{Fields: []match.Field{{Key: "to", Equals: "holdover"}}},
		},
		{
			Name: "ptp_freerun", Type: TypeSustained, Level: LevelNotify, Cooldown: time.Hour, Correlate: true,
			Description: "The PTP clock gave up holdover and runs free: record times are no longer traceable to the grandmaster.",
			Match: match.Spec{Source: []string{"weir:clock"}, Kind: []string{"telemetry"},
				Not: &match.Spec{Fields: []match.Field{{Key: "mode", Equals: "system"}}}},
			When: match.Spec{Fields: []match.Field{{Key: "to", Equals: "freerun"}}},
		},
		{
			Name: "spool_pressure", Type: TypeSustained, Level: LevelPage, Cooldown: time.Hour, Correlate: true,
			Description: "The spool over 80 % full, or its intake held for a full disk: bulk sources soon wait and critical records evict others; the link must come back or room be made before data is lost.",
			Match: match.Spec{Source: []string{"weir:spool"}, Any: []match.Spec{
				{Kind: []string{"telemetry"}},
				{Kind: []string{"alert"}, Message: &match.Text{Prefix: "spool: intake "}},
			}},
			When: match.Spec{Any: []match.Spec{
				{Fields: []match.Field{{Key: "fill", AtLeast: f(0.8)}}},
				{Fields: []match.Field{{Key: "intake_held", Equals: "true"}}},
				{Message: &match.Text{Prefix: "spool: intake held"}},
			}},
		},
		{
			Name: "syslog_drops", Type: TypeCount, Level: LevelNotify, Count: 50, Window: time.Minute,
			Cooldown: 10 * time.Minute, Weight: "dropped_rate_limit", Escalation: 2, Correlate: true,
			Description: "Fifty syslog messages dropped over a sender's rate limit within a minute: a flood (a device misconfigured, or a scan) or a limit set too low; either way messages are lost.",
			Match: match.Spec{Kind: []string{"log"}, Fields: []match.Field{
				{Key: "format", Equals: "drop_report"}, {Key: "dropped_rate_limit"}}},
		},
	}
	// What a type does not use keeps the defaults of a configured rule, so
	// that the example (ExampleYAML) reads back as exactly these rules.
	d := DefaultRule()
	for i := range rs {
		r := &rs[i]
		if r.Type != TypeCount && r.Type != TypeRate {
			r.Window = d.Window
		}
		if r.Type != TypeCount {
			r.Count, r.Escalation = d.Count, d.Escalation
		}
	}
	return rs
}
