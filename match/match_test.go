package match

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

func f64(v float64) *float64 { return &v }
func yes(v bool) *bool       { return &v }

var (
	sshFail = event.Event{Source: "syslog", Kind: event.KindLog, Severity: event.SevNotice, Priority: event.PriorityNormal,
		Host: "plc-7", Message: "sshd[411]: Failed password for root from 10.0.0.9 port 50022 ssh2",
		Fields: []event.Field{event.Str("app", "sshd"), event.Int("pid", 411)}}
	crc = event.Event{Source: "modbus:rs485", Kind: event.KindTelemetry, Severity: event.SevWarning,
		Fields: []event.Field{event.Str("device", "meter"), event.Str("bus", "rs485"), event.Uint("unit", 5),
			event.Str("verdict", "crc_error"), event.Bool("recovered_by_retry", true)}}
	link = event.Event{Source: "weir:uplink", Kind: event.KindTelemetry, Severity: event.SevInfo,
		Fields: []event.Field{event.Str("endpoint", "c1:7443"), event.Float("loss_1m", 0.25), event.Str("ratio", "0.5")}}
	tamper = event.Event{Source: "weir:board", Kind: event.KindAlert, Severity: event.SevCritical, Priority: event.PriorityCritical,
		Fields: []event.Field{event.Str("state", "open")}}
)

func TestMatch(t *testing.T) {
	cases := []struct {
		name string
		spec Spec
		ev   event.Event
		want bool
	}{
		{"empty spec matches all", Spec{}, sshFail, true},
		{"kind", Spec{Kind: []string{"audit", "log"}}, sshFail, true},
		{"kind other", Spec{Kind: []string{"audit"}}, sshFail, false},
		{"source exact", Spec{Source: []string{"syslog"}}, sshFail, true},
		{"source exact is not a prefix", Spec{Source: []string{"sys"}}, sshFail, false},
		{"source prefix", Spec{SourcePrefix: []string{"modbus:"}}, crc, true},
		{"source prefix other", Spec{SourcePrefix: []string{"modbus:"}}, sshFail, false},
		{"severity exact", Spec{Severity: []string{"warning"}}, crc, true},
		{"severity at least: more severe", Spec{SeverityAtLeast: "err"}, tamper, true},
		{"severity at least: equal", Spec{SeverityAtLeast: "warning"}, crc, true},
		{"severity at least: less severe", Spec{SeverityAtLeast: "err"}, crc, false},
		{"severity by number", Spec{SeverityAtLeast: "4"}, crc, true},
		{"priority", Spec{Priority: []string{"critical"}}, tamper, true},
		{"priority other", Spec{Priority: []string{"critical"}}, crc, false},
		{"host", Spec{Host: &Text{Prefix: "plc-"}}, sshFail, true},
		{"message contains any", Spec{Message: &Text{Contains: []string{"Invalid user", "Failed password"}}}, sshFail, true},
		{"message contains none", Spec{Message: &Text{Contains: []string{"Invalid user"}}}, sshFail, false},
		{"message regex", Spec{Message: &Text{Regex: `from \d+\.\d+\.\d+\.\d+`}}, sshFail, true},
		{"message regex anchored", Spec{Message: &Text{Regex: `^Failed`}}, sshFail, false},
		{"field equals", Spec{Fields: []Field{{Key: "verdict", Equals: "crc_error"}}}, crc, true},
		{"field in", Spec{Fields: []Field{{Key: "verdict", In: []string{"short_frame", "crc_error"}}}}, crc, true},
		{"field prefix", Spec{Fields: []Field{{Key: "verdict", Prefix: "crc"}}}, crc, true},
		{"field regex", Spec{Fields: []Field{{Key: "verdict", Regex: `_error$`}}}, crc, true},
		{"field missing", Spec{Fields: []Field{{Key: "nope", Equals: "x"}}}, crc, false},
		{"field exists", Spec{Fields: []Field{{Key: "bus"}}}, crc, true},
		{"field exists false", Spec{Fields: []Field{{Key: "nope", Exists: yes(false)}}}, crc, true},
		{"field exists false but present", Spec{Fields: []Field{{Key: "bus", Exists: yes(false)}}}, crc, false},
		{"uint equals number", Spec{Fields: []Field{{Key: "unit", Equals: "5"}}}, crc, true},
		{"uint equals 5.0", Spec{Fields: []Field{{Key: "unit", Equals: "5.0"}}}, crc, true},
		{"int prefix as text", Spec{Fields: []Field{{Key: "pid", Prefix: "41"}}}, sshFail, true},
		{"int regex as text", Spec{Fields: []Field{{Key: "pid", Regex: `^4\d\d$`}}}, sshFail, true},
		{"bool equals", Spec{Fields: []Field{{Key: "recovered_by_retry", Equals: "true"}}}, crc, true},
		{"bool is not a number", Spec{Fields: []Field{{Key: "recovered_by_retry", AtLeast: f64(0)}}}, crc, false},
		{"float above", Spec{Fields: []Field{{Key: "loss_1m", Above: f64(0.2)}}}, link, true},
		{"float above, bound equal", Spec{Fields: []Field{{Key: "loss_1m", Above: f64(0.25)}}}, link, false},
		{"float at least, bound equal", Spec{Fields: []Field{{Key: "loss_1m", AtLeast: f64(0.25)}}}, link, true},
		{"float between", Spec{Fields: []Field{{Key: "loss_1m", Above: f64(0.2), Below: f64(0.3)}}}, link, true},
		{"float at most", Spec{Fields: []Field{{Key: "loss_1m", AtMost: f64(0.2)}}}, link, false},
		{"text read as a number", Spec{Fields: []Field{{Key: "ratio", Above: f64(0.4)}}}, link, true},
		{"text not a number", Spec{Fields: []Field{{Key: "endpoint", Above: f64(0)}}}, link, false},
		{"float equals text", Spec{Fields: []Field{{Key: "loss_1m", Equals: "0.25"}}}, link, true},
		{"all", Spec{All: []Spec{{Kind: []string{"telemetry"}}, {SourcePrefix: []string{"modbus:"}}}}, crc, true},
		{"all one fails", Spec{All: []Spec{{Kind: []string{"telemetry"}}, {SourcePrefix: []string{"weir:"}}}}, crc, false},
		{"any", Spec{Any: []Spec{{Kind: []string{"audit"}}, {Source: []string{"syslog"}}}}, sshFail, true},
		{"any none", Spec{Any: []Spec{{Kind: []string{"audit"}}, {Source: []string{"weir"}}}}, sshFail, false},
		{"not", Spec{Not: &Spec{Fields: []Field{{Key: "verdict", Equals: "timeout"}}}}, crc, true},
		{"not matching", Spec{Not: &Spec{Kind: []string{"telemetry"}}}, crc, false},
		{"nested", Spec{Kind: []string{"telemetry"}, Any: []Spec{
			{Fields: []Field{{Key: "loss_1m", Above: f64(0.2)}}},
			{Not: &Spec{SourcePrefix: []string{"weir:"}}},
		}}, link, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Compile(c.spec)
			require.NoError(t, err)
			require.Equal(t, c.want, m.Match(&c.ev))
			if c.want {
				require.NotZero(t, m.Kinds()&(1<<c.ev.Kind), "Kinds must include a kind that matches")
			}
		})
	}
}

func TestNilMatcherMatchesAll(t *testing.T) {
	var m *Matcher
	require.True(t, m.Match(&crc))
	require.Equal(t, ^uint32(0), m.Kinds())
}

func TestKinds(t *testing.T) {
	cases := []struct {
		spec Spec
		want uint32
	}{
		{Spec{}, ^uint32(0)},
		{Spec{Kind: []string{"log", "audit"}}, 1<<event.KindLog | 1<<event.KindAudit},
		{Spec{Kind: []string{"log", "audit"}, All: []Spec{{Kind: []string{"audit"}}}}, 1 << event.KindAudit},
		{Spec{Any: []Spec{{Kind: []string{"log"}}, {Kind: []string{"alert"}}}}, 1<<event.KindLog | 1<<event.KindAlert},
		{Spec{Any: []Spec{{Kind: []string{"log"}}, {}}}, ^uint32(0)},
		{Spec{Kind: []string{"log"}, Not: &Spec{Kind: []string{"log"}}}, 1 << event.KindLog},
	}
	for _, c := range cases {
		m, err := Compile(c.spec)
		require.NoError(t, err)
		require.Equal(t, c.want, m.Kinds(), "%+v", c.spec)
	}
}

func TestCompileErrorsNameTheKey(t *testing.T) {
	bad := Spec{
		Kind:            []string{"log", "bogus"},
		SourcePrefix:    []string{""},
		SeverityAtLeast: "loud",
		Priority:        []string{"urgent"},
		Message:         &Text{Regex: "(unclosed", Contains: []string{""}},
		Fields:          []Field{{Equals: "x"}, {Key: "v", Above: f64(3), Below: f64(2)}, {Key: "w", Exists: yes(false), Equals: "x"}},
		Any:             []Spec{{Not: &Spec{Severity: []string{"meh"}}}},
	}
	_, err := Compile(bad)
	require.Error(t, err)
	for _, want := range []string{
		`kind[1]: "bogus" is not a record kind (log, reading, audit, integrity, alert, telemetry)`,
		"source_prefix[0]: empty prefix",
		`severity_at_least: "loud" is not a severity`,
		`priority[0]: "urgent" is not a priority`,
		"message.regex: missing closing ): `(unclosed`",
		"message.contains[0]: empty text",
		"fields[0].key: no field named",
		"fields[1]: the bounds exclude every value",
		"fields[2].exists: false, with conditions on the value, matches nothing",
		`any[0].not.severity[0]: "meh" is not a severity`,
	} {
		require.Contains(t, err.Error(), want)
	}
	_, err = Compile(Spec{Severity: []string{"debug"}, SeverityAtLeast: "err"})
	require.ErrorContains(t, err, "severity_at_least: err excludes every severity listed")
}

func TestNestingIsBounded(t *testing.T) {
	s := Spec{}
	for range maxNesting + 2 {
		s = Spec{Not: &s}
	}
	_, err := Compile(s)
	require.ErrorContains(t, err, "nested more than 16 levels deep")
}

// TestHostileRecords: invalid UTF-8, a huge field and a pattern that
// backtracks exponentially in a PCRE engine are matched like any other,
// in time linear in the input.
func TestHostileRecords(t *testing.T) {
	m, err := Compile(Spec{Message: &Text{Regex: `^(a+)+$`}, Fields: []Field{{Key: "blob", Contains: []string{"\xff\xfe"}}}})
	require.NoError(t, err)
	huge := strings.Repeat("a", 1<<20) + "!"
	ev := event.Event{Message: huge, Fields: []event.Field{event.Bytes("blob", []byte("x\xff\xfey"))}}
	require.False(t, m.Match(&ev), "RE2 answers at once: no match")
	ev.Message = "aaaa"
	require.True(t, m.Match(&ev))
	ev.Message = "\xc3\x28 aaaa"
	require.False(t, m.Match(&ev))

	inv, err := Compile(Spec{Message: &Text{Contains: []string{"\xc3\x28"}}})
	require.NoError(t, err)
	require.True(t, inv.Match(&ev), "invalid UTF-8 is compared as bytes")
}

// TestMatchAllocatesNothing: a matcher on every record's path must not
// make garbage, matching or not, whatever the field's type.
func TestMatchAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are not counted under the race detector (see race_test.go); make unit counts them without it")
	}
	m, err := Compile(Spec{Kind: []string{"log", "telemetry"}, Any: []Spec{
		{Message: &Text{Contains: []string{"Failed password"}, Regex: `port \d+`}},
		{Fields: []Field{{Key: "loss_1m", Above: f64(0.2), Regex: `^0\.2`}}},
		{Fields: []Field{{Key: "unit", In: []string{"7", "abc"}, Prefix: "5"}}},
		{Fields: []Field{{Key: "ratio", AtLeast: f64(0.9)}, {Key: "endpoint", Above: f64(1)}}},
	}})
	require.NoError(t, err)
	for _, ev := range []event.Event{sshFail, crc, link, tamper} {
		ev := ev
		allocs := testing.AllocsPerRun(200, func() { m.Match(&ev) })
		require.Zero(t, allocs, "%s", ev.Source)
	}
}

func BenchmarkMatch(b *testing.B) {
	m, err := Compile(Spec{Kind: []string{"log", "audit"}, Message: &Text{Contains: []string{"authentication failure", "Failed password", "Invalid user"}}})
	require.NoError(b, err)
	miss := event.Event{Source: "app", Kind: event.KindLog, Message: "2024-05-01T10:00:00Z INFO pump 3 started: flow 12.5 m3/h, pressure 4.1 bar, valve V-12 open"}
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.Match(&miss)
		}
	})
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.Match(&sshFail)
		}
	})
}
