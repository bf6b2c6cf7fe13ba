package event

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// jsonEvent is the stable JSON shape of a record, as written by JSONL sinks
// and printed by diagnostics. Keys are snake_case and never renamed.
type jsonEvent struct {
	Seq        uint64         `json:"seq"`
	Gateway    string         `json:"gateway"`
	Time       string         `json:"time"`
	TimeNs     int64          `json:"time_ns"`
	Quality    jsonQuality    `json:"time_quality"`
	Observed   string         `json:"observed,omitempty"`
	Source     string         `json:"source"`
	Kind       string         `json:"kind"`
	Severity   string         `json:"severity"`
	Priority   string         `json:"priority"`
	Host       string         `json:"host,omitempty"`
	Message    string         `json:"message"`
	MessageB64 string         `json:"message_base64,omitempty"`
	Fields     map[string]any `json:"fields,omitempty"`
	Checksum   string         `json:"checksum,omitempty"`
}

type jsonQuality struct {
	Source     string `json:"source"`
	State      string `json:"state"`
	ErrorBound *int64 `json:"error_bound_ns"` // null: unknown
}

// marshalReference renders e through encoding/json: the definition of
// the sink format that AppendJSON is held to. A message that is not valid
// UTF-8 is also given whole in message_base64, since JSON strings cannot
// carry arbitrary bytes and a SOC must see exactly what the device wrote.
func marshalReference(e *Event) ([]byte, error) {
	j := jsonEvent{
		Seq:      e.Seq,
		Gateway:  e.Gateway,
		Time:     time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano),
		TimeNs:   e.Time,
		Quality:  jsonQuality{Source: e.Quality.Source.String(), State: e.Quality.State.String()},
		Source:   e.Source,
		Kind:     e.Kind.String(),
		Severity: e.Severity.String(),
		Priority: e.Priority.String(),
		Host:     e.Host,
		Message:  e.Message,
	}
	if e.Quality.ErrorBound >= 0 {
		eb := e.Quality.ErrorBound
		j.Quality.ErrorBound = &eb
	}
	if e.Observed != 0 {
		j.Observed = time.Unix(0, e.Observed).UTC().Format(time.RFC3339Nano)
	}
	if !utf8.ValidString(e.Message) {
		j.MessageB64 = base64.StdEncoding.EncodeToString([]byte(e.Message))
	}
	if e.Checksum != ChecksumNone {
		j.Checksum = e.Checksum.String()
	}
	if len(e.Fields) > 0 {
		j.Fields = make(map[string]any, len(e.Fields))
		for _, f := range e.Fields {
			j.Fields[f.Key] = jsonValue(f.Value)
			// As for the message: JSON turns invalid UTF-8 into U+FFFD,
			// so the exact bytes (a hex-decoded audit path, a syslog SD
			// value) ride beside it in base64.
			if f.Value.Type == TypeString && !utf8.ValidString(f.Value.Str) {
				j.Fields[f.Key+"_base64"] = base64.StdEncoding.EncodeToString([]byte(f.Value.Str))
			}
		}
	}
	return json.Marshal(&j)
}

func jsonValue(v Value) any {
	switch v.Type {
	case TypeString:
		return v.Str
	case TypeInt:
		return v.Int()
	case TypeUint:
		return v.Num
	case TypeFloat:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return v.String() // JSON has no NaN or Inf
		}
		return f
	case TypeBool:
		return v.Bool()
	}
	return v.String()
}

// jsonCases are the shapes AppendJSON must render as the reference does:
// every escape, every value type, the optional keys, and the map's
// ordering and collisions.
func jsonCases() map[string]Event {
	full := sample()
	full.Seq = 42
	return map[string]Event{
		"full":  full,
		"zero":  {},
		"clock": {Quality: Quality{Source: TimeSystem, State: ClockFreerun, ErrorBound: -1}},
		"escapes": {Message: "a\"b\\c\x00\x01\x1f\b\f\n\r\t<tag> & \u2028\u2029 é 😀 \x7f",
			Gateway: "<gw>", Host: "h&h", Source: "file:/var/log/\"x\""},
		"not utf-8": {Message: "caf\xe9 \xff\xfe \xed\xa0\x80 \xf0\x9f", Fields: []Field{Str("path", "/tmp/\xfex"), Str("ok", "fine")}},
		"floats": {Fields: []Field{Float("zero", 0), Float("negzero", math.Copysign(0, -1)), Float("tiny", 1e-7),
			Float("small", 0.000001), Float("big", 1e21), Float("below", 999999999999999999999.0), Float("pi", math.Pi),
			Float("neg", -2.5e-10), Float("nan", math.NaN()), Float("inf", math.Inf(-1)), Float("max", math.MaxFloat64),
			Float("min", math.SmallestNonzeroFloat64)}},
		"ints": {Fields: []Field{Int("min", math.MinInt64), Int("max", math.MaxInt64), Uint("umax", math.MaxUint64), Bool("f", false), Bool("t", true)}},
		"collisions": {Fields: []Field{Str("b", "first"), Str("a", "x"), Str("b", "second"),
			Str("p", "\xff"), Str("p_base64", "named"), Str("q_base64", "named first"), Str("q", "\xfe"), Bytes("raw", []byte{0, 1})}},
		"many fields": {Fields: func() []Field {
			var fs []Field
			for i := range 40 {
				fs = append(fs, Int(string(rune('z'-i%26))+string(rune('a'+i%7)), int64(i)))
			}
			return fs
		}()},
		"times": {Time: -1, Observed: math.MaxInt64, Checksum: ChecksumBad},
	}
}

func TestAppendJSONMatchesReference(t *testing.T) {
	for name, e := range jsonCases() {
		t.Run(name, func(t *testing.T) {
			want, err := marshalReference(&e)
			require.NoError(t, err)
			require.Equal(t, string(want), string(e.AppendJSON(nil)))
			got, err := json.Marshal(&e)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got), "json.Marshal of an *Event")
			require.True(t, json.Valid(got))
		})
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, e := range jsonCases() {
		b, err := e.MarshalBinary()
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var e Event
		if err := e.UnmarshalBinary(in); err != nil {
			return
		}
		want, err := marshalReference(&e)
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		if got := e.AppendJSON([]byte("prefix")); string(got[6:]) != string(want) {
			t.Fatalf("AppendJSON:\n got %s\nwant %s", got[6:], want)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	e := sample()
	e.Fields = nil
	e.Message = "wbL123 T1765000000000000000 sshd[812]: Accepted publickey for operator from 10.1.2.3 port 52144 ssh2 RSA SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG pump"
	buf := make([]byte, 0, 1024)
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = e.AppendJSON(buf[:0])
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = marshalReference(&e)
		}
	})
}
