package event

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func sample() Event {
	return Event{
		Gateway:  "gw-01",
		Time:     1_763_000_000_123_456_789,
		Quality:  Quality{Source: TimePTP, State: ClockLocked, ErrorBound: 250},
		Observed: 1_763_000_000_000_000_000,
		Source:   "modbus:/dev/ttyS1:7",
		Kind:     KindReading,
		Severity: SevInfo,
		Priority: PriorityCritical,
		Host:     "pump-station-3",
		Message:  "flow reading",
		Checksum: ChecksumOK,
		Fields: []Field{
			Float("flow_m3h", 12.5),
			Int("level_mm", -40),
			Uint("counter", math.MaxUint64),
			Bool("alarm", true),
			Str("unit", "m3/h"),
			Bytes("raw", []byte{0x07, 0x03, 0x02, 0xff}),
		},
	}
}

func TestRoundTrip(t *testing.T) {
	cases := map[string]Event{
		"full":      sample(),
		"zero":      {},
		"unknown":   {Quality: Quality{Source: TimeSystem, State: ClockFreerun, ErrorBound: -1}},
		"non-utf8":  {Message: "bad \xff\xfe bytes", Kind: KindLog},
		"long line": {Message: strings.Repeat("x", 1<<20)},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := in.MarshalBinary()
			require.NoError(t, err)
			var out Event
			out.Seq = 99
			require.NoError(t, out.UnmarshalBinary(b))
			require.Equal(t, uint64(99), out.Seq, "decode must leave Seq alone")
			out.Seq = in.Seq
			if len(in.Fields) == 0 {
				require.Empty(t, out.Fields)
				out.Fields = in.Fields
			}
			require.Equal(t, in, out)
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := func() ([]byte, error) { e := sample(); return e.MarshalBinary() }()
	require.NoError(t, err)
	cases := map[string]struct {
		in   []byte
		want string
	}{
		"empty":          {nil, "empty record"},
		"future version": {append([]byte{2}, good[1:]...), "unsupported encoding version 2"},
		"header short":   {good[:5], "truncated"},
		"bad enum":       {append([]byte{1, 200}, good[2:]...), "out-of-range enum"},
		"truncated":      {good[:len(good)-3], "decode"},
		"trailing":       {append(append([]byte{}, good...), 0), "trailing"},
		"huge string":    {[]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "string of"},
		"huge fields":    {[]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x03}, "field count"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var e Event
			err := e.UnmarshalBinary(c.in)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func TestJSON(t *testing.T) {
	e := sample()
	e.Seq = 42
	e.Message = "caf\xe9"
	e.Fields = append(e.Fields, Str("path", "/tmp/\xfex"), Str("plain", "ok"))
	b, err := json.Marshal(&e)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, float64(42), m["seq"])
	require.Equal(t, "reading", m["kind"])
	require.Equal(t, "critical", m["priority"])
	require.Equal(t, "ok", m["checksum"])
	require.Equal(t, "Y2Fm6Q==", m["message_base64"])
	q := m["time_quality"].(map[string]any)
	require.Equal(t, "ptp", q["source"])
	require.Equal(t, "locked", q["state"])
	require.Equal(t, float64(250), q["error_bound_ns"])
	f := m["fields"].(map[string]any)
	require.Equal(t, 12.5, f["flow_m3h"])
	require.Equal(t, "070302ff", f["raw"])
	require.Equal(t, "L3RtcC/+eA==", f["path_base64"], "invalid UTF-8 in a field keeps its bytes")
	require.NotContains(t, f, "plain_base64")
	require.Equal(t, "2025-11-13T02:13:20.123456789Z", m["time"])

	e.Quality.ErrorBound = -1
	b, err = json.Marshal(&e)
	require.NoError(t, err)
	require.Contains(t, string(b), `"error_bound_ns":null`)
}

func TestParsePriority(t *testing.T) {
	for _, p := range []Priority{PriorityNormal, PriorityCritical, PriorityBulk} {
		got, err := ParsePriority(p.String())
		require.NoError(t, err)
		require.Equal(t, p, got)
	}
	_, err := ParsePriority("urgent")
	require.ErrorContains(t, err, `"urgent"`)
}

func FuzzDecode(f *testing.F) {
	e := sample()
	b, _ := e.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var e Event
		if err := e.UnmarshalBinary(in); err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes: one encoding per record.
		out, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var e2 Event
		if err := e2.UnmarshalBinary(out); err != nil {
			t.Fatalf("decode of re-encoded record: %v", err)
		}
		if _, err := json.Marshal(&e2); err != nil {
			t.Fatalf("json: %v", err)
		}
	})
}

func BenchmarkEncodeDecode(b *testing.B) {
	e := Event{
		Gateway: "gw-01", Time: 1_763_000_000_123_456_789, Source: "file:/var/log/app.log",
		Quality: Quality{Source: TimeSystem, State: ClockFreerun, ErrorBound: -1},
		Host:    "pump-station-3", Message: strings.Repeat("m", 160),
		Fields: []Field{Uint("offset", 123456)},
	}
	buf := make([]byte, 0, 512)
	var out Event
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = e.AppendBinary(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		if err := out.UnmarshalBinary(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
