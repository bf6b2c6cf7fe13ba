package event

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"unsafe"

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
			require.LessOrEqual(t, len(b), in.MaxEncodedLen())
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

// version1 is the version 1 encoding of a version 2 record: the same
// bytes without the CRC trailer.
func version1(b []byte) []byte {
	out := append([]byte(nil), b[:len(b)-crcLen]...)
	out[0] = 1
	return out
}

func TestDecodeRejects(t *testing.T) {
	good, err := func() ([]byte, error) { e := sample(); return e.MarshalBinary() }()
	require.NoError(t, err)
	old := version1(good) // the structural checks, without a CRC to stop them first
	cases := map[string]struct {
		in   []byte
		want string
	}{
		"empty":          {nil, "empty record"},
		"future version": {append([]byte{3}, good[1:]...), "unsupported encoding version 3"},
		"header short":   {old[:5], "truncated"},
		"bad enum":       {append([]byte{1, 200}, old[2:]...), "out-of-range enum"},
		"truncated":      {old[:len(old)-3], "decode"},
		"trailing":       {append(append([]byte{}, old...), 0), "trailing"},
		"huge string":    {[]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "string of"},
		"huge fields":    {[]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x03}, "field count"},
		"v2 too short":   {[]byte{2, 0, 0}, "checksum"},
		"v2 truncated":   {good[:len(good)-1], "checksum mismatch"},
		"v2 trailing":    {append(append([]byte{}, good...), 0), "checksum mismatch"},
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

// TestChecksumCatchesDamage: every single-bit flip anywhere in a version 2
// record, and 16 bytes overwritten in its middle (the spool fault that
// reached a collector as data), is refused with ErrChecksum.
func TestChecksumCatchesDamage(t *testing.T) {
	e := sample()
	good, err := e.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, byte(Version), good[0])
	for i := range good {
		for bit := range 8 {
			b := append([]byte(nil), good...)
			b[i] ^= 1 << bit
			var out Event
			err := out.UnmarshalBinary(b)
			if i == 0 {
				require.Error(t, err, "byte 0 bit %d", bit) // another version, or damage
				continue
			}
			require.ErrorIs(t, err, ErrChecksum, "byte %d bit %d", i, bit)
		}
	}
	b := append([]byte(nil), good...)
	copy(b[len(b)/2:], "sixteen bytes!!!")
	var out Event
	require.ErrorIs(t, out.UnmarshalBinary(b), ErrChecksum)
}

// TestDecodesVersion1: records spooled before the CRC existed still
// decode at the collector.
func TestDecodesVersion1(t *testing.T) {
	in := sample()
	b, err := in.MarshalBinary()
	require.NoError(t, err)
	var out Event
	require.NoError(t, out.UnmarshalBinary(version1(b)))
	require.Equal(t, in, out)
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

// TestUnmarshalBinaryAfter: a record decoded after another takes the
// strings equal to the other's at the same place from it, and is decoded
// exactly as alone whatever the other holds.
func TestUnmarshalBinaryAfter(t *testing.T) {
	base := sample()
	other := sample()
	other.Source, other.Fields[0].Key = "modbus:/dev/ttyS2:1", "pressure_bar"
	fewer := sample()
	fewer.Fields = fewer.Fields[:1]
	retyped := sample()
	for i, f := range retyped.Fields {
		retyped.Fields[i] = Str(f.Key, "x")
	}
	for _, c := range []struct {
		name   string
		prev   *Event
		shared []string // the strings taken from prev
	}{
		{"none", nil, nil},
		{"the same record", &base, []string{"gateway", "source", "host", "message", "keys"}},
		{"another source and key", &other, []string{"gateway", "host", "message"}},
		{"fewer fields", &fewer, []string{"gateway", "source", "host", "message"}},
		{"values of another type", &retyped, []string{"gateway", "source", "host", "message", "keys"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			enc, err := base.MarshalBinary()
			require.NoError(t, err)
			var alone, got Event
			require.NoError(t, alone.UnmarshalBinary(enc))
			require.NoError(t, got.UnmarshalBinaryAfter(enc, c.prev))
			require.Equal(t, alone, got)
			same := func(a, b string) bool { return len(a) > 0 && unsafe.StringData(a) == unsafe.StringData(b) }
			var shared []string
			if c.prev != nil {
				for _, f := range []struct {
					name string
					a, b string
				}{{"gateway", got.Gateway, c.prev.Gateway}, {"source", got.Source, c.prev.Source}, {"host", got.Host, c.prev.Host}, {"message", got.Message, c.prev.Message}} {
					if same(f.a, f.b) {
						shared = append(shared, f.name)
					}
				}
				if len(c.prev.Fields) == len(got.Fields) {
					keys := true
					for i := range got.Fields {
						keys = keys && same(got.Fields[i].Key, c.prev.Fields[i].Key)
					}
					if keys {
						shared = append(shared, "keys")
					}
				}
			}
			require.Equal(t, c.shared, shared)
		})
	}
}

func FuzzDecode(f *testing.F) {
	e := sample()
	b, _ := e.MarshalBinary()
	f.Add(b)
	f.Add(version1(b))
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
		if len(out) > e.MaxEncodedLen() {
			t.Fatalf("encoded %d bytes, more than MaxEncodedLen %d", len(out), e.MaxEncodedLen())
		}
		var e2 Event
		if err := e2.UnmarshalBinary(out); err != nil {
			t.Fatalf("decode of re-encoded record: %v", err)
		}
		// Decoded after another record, or after itself, it is the same.
		s := sample()
		for _, prev := range []*Event{&s, &e2} {
			var e3 Event
			if err := e3.UnmarshalBinaryAfter(in, prev); err != nil {
				t.Fatalf("decode after %q: %v", prev.Message, err)
			}
			if !reflect.DeepEqual(e, e3) {
				t.Fatalf("decode after %q:\n got %+v\nwant %+v", prev.Message, e3, e)
			}
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
