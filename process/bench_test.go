package process

import (
	"testing"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

// The records of a typical site: syslog lines and Modbus readings.
func benchRecords() []event.Event {
	evs := make([]event.Event, 64)
	for i := range evs {
		if i%2 == 0 {
			evs[i] = event.Event{Source: "syslog", Kind: event.KindLog, Severity: event.SevInfo, Host: "plc-gw",
				Message: "sshd[811]: Accepted publickey for ops from 10.1.2.3 port 52144 ssh2",
				Fields:  []event.Field{event.Str("app", "sshd"), event.Str("facility", "auth")}}
		} else {
			evs[i] = event.Event{Source: "modbus:pt1", Kind: event.KindReading, Severity: event.SevInfo,
				Time: int64(i) * int64(time.Second), Fields: []event.Field{event.Str("device", "pt1"), event.Uint("unit", 7),
					event.Float("level", 101.5), event.Float("flow", 12.25)}}
		}
	}
	return evs
}

// noMatch is a step of each kind whose match or pattern no benchmark
// record meets: the cost a record pays for a rule that is not about it.
var noMatch = map[string]Step{
	"drop":        {Drop: &FilterConfig{Match: match.Spec{Source: []string{"audit"}, Message: &match.Text{Contains: []string{"denied"}}}}},
	"keep":        {Keep: &FilterConfig{Match: match.Spec{Severity: []string{"debug", "info", "notice", "warning", "err"}}}},
	"sample":      {Sample: &SampleConfig{Every: 10, Match: match.Spec{Source: []string{"ntp"}}}},
	"redact":      {Redact: &RedactConfig{Regex: `password=(\S+)`, Match: match.Spec{Source: []string{"app"}}}},
	"redact_scan": {Redact: &RedactConfig{Regex: `password=(\S+)`}},
	"parse":       {Parse: &ParseConfig{Format: "kv", Match: match.Spec{Source: []string{"app"}}}},
	"rename":      {Rename: &RenameConfig{Fields: []RenamePair{{From: "usr", To: "user"}}}},
	"drop_fields": {DropFields: &DropFieldsConfig{Fields: []string{"raw_hex"}}},
	"truncate":    {Truncate: &TruncateConfig{Field: "message", MaxBytes: 4096}},
	"deadband":    {Deadband: &DeadbandConfig{Percent: 1, Heartbeat: time.Minute, Match: match.Spec{Source: []string{"modbus:other"}}}},
}

func benchChain(b *testing.B, steps ...Step) {
	c, err := Compile(steps)
	if err != nil {
		b.Fatal(err)
	}
	src := benchRecords()
	evs := make([]event.Event, len(src))
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		copy(evs, src)
		n += len(c.Apply(evs, nil))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/record")
	_ = n
}

// BenchmarkNoMatch is each processor on records it is not about.
func BenchmarkNoMatch(b *testing.B) {
	for name, s := range noMatch {
		b.Run(name, func(b *testing.B) { benchChain(b, s) })
	}
}

// BenchmarkTypicalChainNoMatch is a chain of every kind, none of whose
// rules a record meets: the target is under 1 µs and no allocation.
func BenchmarkTypicalChainNoMatch(b *testing.B) {
	var steps []Step
	for _, k := range []string{"drop", "keep", "sample", "redact", "parse", "rename", "drop_fields", "truncate", "deadband"} {
		steps = append(steps, noMatch[k])
	}
	benchChain(b, steps...)
}

// BenchmarkWorking is each processor doing its job on every record it
// is given.
func BenchmarkWorking(b *testing.B) {
	for name, s := range map[string]Step{
		"drop_half":   {Drop: &FilterConfig{Match: match.Spec{Source: []string{"syslog"}}}},
		"sample_1in4": {Sample: &SampleConfig{Every: 4}},
		"redact_mask": {Redact: &RedactConfig{Regex: `from (\S+)`}},
		"redact_hmac": {Redact: &RedactConfig{Regex: `from (\S+)`, With: "hmac", HMACKey: "0123456789abcdef"}},
		"parse_kv":    {Parse: &ParseConfig{Format: "kv"}},
		"dissect":     {Parse: &ParseConfig{Format: "dissect", Pattern: "%{proc}: %{msg}"}},
		"add_fields":  {AddFields: &AddFieldsConfig{Fields: map[string]string{"site": "plant-3", "zone": "b"}}},
		"deadband":    {Deadband: &DeadbandConfig{Percent: 1, Heartbeat: time.Hour}},
	} {
		b.Run(name, func(b *testing.B) { benchChain(b, s) })
	}
}
