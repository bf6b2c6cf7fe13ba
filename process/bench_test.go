package process

import (
	"fmt"
	"math/rand/v2"
	"strings"
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

// siteHour is the sample workload whose bytes BenchmarkWorkloadBytes
// reports: one hour of a small site. Four analog values of a Modbus
// sensor polled every second (a slow drift of 2 % an hour with ±0.1 %
// noise), and 5 syslog lines a second of which 60 % are debug and cron
// chatter, and a tenth carry a password.
func siteHour() []event.Event {
	r := rand.New(rand.NewPCG(1, 2))
	var evs []event.Event
	base := int64(1_780_000_000) * int64(time.Second)
	for s := 0; s < 3600; s++ {
		t := base + int64(s)*int64(time.Second)
		f := []event.Field{event.Str("device", "pt1"), event.Str("bus", "plc"), event.Uint("unit", 1),
			event.Int("uncertainty_ns", 250_000), event.Float("round_trip_us", 480+r.Float64()*40),
			event.Uint("attempts", 1), event.Uint("requests", 1)}
		for i, name := range []string{"level", "flow", "pressure", "temperature"} {
			v := float64(10*(i+1)) * (1 + 0.02*float64(s)/3600) * (1 + 0.001*(r.Float64()*2-1))
			f = append(f, event.Float(name, v))
		}
		evs = append(evs, event.Event{Gateway: "gw-site-7", Host: "gw-site-7", Time: t, Source: "modbus:pt1",
			Kind: event.KindReading, Severity: event.SevInfo, Message: "pt1", Fields: f, Checksum: event.ChecksumOK})
		for j := 0; j < 5; j++ {
			var msg string
			sev := event.SevInfo
			switch k := r.IntN(10); {
			case k < 4:
				msg, sev = fmt.Sprintf("modbusd[311]: poll cycle %d done in %d us", s*5+j, 400+r.IntN(200)), event.SevDebug
			case k < 6:
				msg = fmt.Sprintf("CRON[%d]: (root) CMD (/usr/lib/site/rotate.sh)", 1000+r.IntN(9000))
			case k < 7:
				msg = fmt.Sprintf("vpnd[90]: session for op%d from 10.0.%d.%d password=%08x", r.IntN(20), r.IntN(255), r.IntN(255), r.Uint32())
			default:
				msg = fmt.Sprintf("sshd[%d]: Accepted publickey for ops from 10.1.2.%d port %d ssh2", 1000+r.IntN(9000), r.IntN(255), 40000+r.IntN(20000))
			}
			evs = append(evs, event.Event{Gateway: "gw-site-7", Host: "plc-gw", Time: t + int64(j)*int64(200*time.Millisecond),
				Source: "syslog", Kind: event.KindLog, Severity: sev, Message: msg,
				Fields: []event.Field{event.Str("app", strings.SplitN(msg, "[", 2)[0]), event.Uint("facility", 3)}})
		}
	}
	return evs
}

// siteChain is the chain of the sample workload: debug and cron dropped,
// passwords redacted, the readings through a 1 % deadband with a 60 s
// heartbeat.
var siteChain = []Step{
	{Drop: &FilterConfig{Match: match.Spec{Any: []match.Spec{{Severity: []string{"debug"}}, {Message: &match.Text{Prefix: "CRON["}}}}}},
	{Redact: &RedactConfig{Regex: `password=(\S+)`}},
	{Deadband: &DeadbandConfig{Percent: 1, Heartbeat: time.Minute}},
}

func wireBytes(evs []event.Event) int {
	var buf []byte
	n := 0
	for i := range evs {
		buf, _ = evs[i].AppendBinary(buf[:0])
		n += len(buf)
	}
	return n
}

// BenchmarkWorkloadBytes runs the sample hour through siteChain and
// reports the encoded record bytes spooled and sent without and with it
// (before the uplink's own compression), and the cost per record.
func BenchmarkWorkloadBytes(b *testing.B) {
	src := siteHour()
	in := wireBytes(src)
	evs := make([]event.Event, len(src))
	var out int
	var kept int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c, err := Compile(siteChain)
		if err != nil {
			b.Fatal(err)
		}
		copy(evs, src)
		k := c.Apply(evs, nil)
		kept = len(k)
		b.StopTimer()
		out = wireBytes(k)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/record")
	b.ReportMetric(float64(len(src)), "records-in")
	b.ReportMetric(float64(kept), "records-out")
	b.ReportMetric(float64(in), "bytes-in")
	b.ReportMetric(float64(out), "bytes-out")
	b.ReportMetric(100*(1-float64(out)/float64(in)), "%saved")
}
