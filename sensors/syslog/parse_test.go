package syslog

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

// parseCase is one line of testdata/messages.json: a message captured from
// a real sender (origin says which) or taken from the RFCs, and the record
// it must give.
type parseCase struct {
	Name   string `json:"name"`
	Origin string `json:"origin"`
	Now    string `json:"now"` // default 2026-11-23T15:00:00Z
	Raw    string `json:"raw"`
	Want   struct {
		Format     string            `json:"format"`
		Facility   uint64            `json:"facility"`
		Severity   uint8             `json:"severity"`
		NoPRI      bool              `json:"no_pri"`
		Observed   string            `json:"observed"`
		Host       string            `json:"host"`
		AppName    string            `json:"app_name"`
		ProcID     string            `json:"procid"`
		MsgID      string            `json:"msgid"`
		Message    string            `json:"message"`
		SD         map[string]string `json:"sd"`
		ParseError string            `json:"parse_error"` // a substring
	} `json:"want"`
}

func loadCases(t testing.TB) []parseCase {
	b, err := os.ReadFile("testdata/messages.json")
	require.NoError(t, err)
	var cs []parseCase
	require.NoError(t, json.Unmarshal(b, &cs))
	require.NotEmpty(t, cs)
	return cs
}

func fieldMap(fs []event.Field) map[string]event.Value {
	m := make(map[string]event.Value, len(fs))
	for _, f := range fs {
		m[f.Key] = f.Value
	}
	return m
}

func TestParseRealWorld(t *testing.T) {
	for _, c := range loadCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			now := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
			if c.Now != "" {
				var err error
				now, err = time.Parse(time.RFC3339, c.Now)
				require.NoError(t, err)
			}
			p := Parser{Source: "syslog", Loc: time.UTC}
			ev, _ := p.Parse([]byte(c.Raw), now, nil)
			f := fieldMap(ev.Fields)
			w := c.Want

			assert.Equal(t, "syslog", ev.Source)
			assert.Equal(t, event.KindLog, ev.Kind)
			assert.Equal(t, w.Format, f[keyFormat].Str, "format")
			assert.Equal(t, w.Facility, f[keyFacility].Num, "facility")
			assert.Equal(t, event.Severity(w.Severity), ev.Severity, "severity")
			assert.Equal(t, w.Message, ev.Message, "message")
			assert.Equal(t, w.Host, ev.Host, "host")
			assert.Equal(t, w.AppName, f[keyAppName].Str, "app_name")
			assert.Equal(t, w.ProcID, f[keyProcID].Str, "procid")
			assert.Equal(t, w.MsgID, f[keyMsgID].Str, "msgid")
			assert.Equal(t, w.NoPRI, f[keyNoPRI].Bool(), "no_pri")
			if w.Observed == "" {
				assert.Zero(t, ev.Observed, "observed")
			} else {
				want, err := time.Parse(time.RFC3339Nano, w.Observed)
				require.NoError(t, err)
				assert.Equal(t, want.UTC().Format(time.RFC3339Nano), time.Unix(0, ev.Observed).UTC().Format(time.RFC3339Nano), "observed")
			}
			sd := map[string]string{}
			for _, fl := range ev.Fields {
				if strings.HasPrefix(fl.Key, "sd.") {
					sd[fl.Key] = fl.Value.Str
				}
			}
			if w.SD == nil {
				w.SD = map[string]string{}
			}
			assert.Equal(t, w.SD, sd, "structured data")
			if w.ParseError == "" {
				assert.NotContains(t, f, keyParseError)
			} else {
				assert.Contains(t, f[keyParseError].Str, w.ParseError)
			}
			// Every record must encode within the event limits.
			_, err := ev.MarshalBinary()
			require.NoError(t, err)
		})
	}
}

// TestParseMalformedKeepsBytes: whatever fails to parse is kept byte for
// byte, invalid UTF-8 included, with the error naming the part.
func TestParseMalformedKeepsBytes(t *testing.T) {
	cases := []struct {
		name, raw, err string
	}{
		{"invalid utf8 in hostname", "<13>1 2026-01-02T03:04:05Z h\xff a p m - x", "rfc5424: hostname: byte 0xff"},
		{"nul in app-name", "<13>1 - h a\x00b p m - x", "rfc5424: app-name: byte 0x00"},
		{"version only", "<13>1 ", "rfc5424: timestamp: empty"},
		{"sd not closed by space", "<13>1 - h a p m [x a=\"1\"]body", "want a space"},
		{"sd value unterminated", "<13>1 - h a p m [x a=\"1]", "no closing '\"'"},
		{"sd param without quote", "<13>1 - h a p m [x a=1]", "no '=\"'"},
		{"sd id too long", "<13>1 - h a p m [" + strings.Repeat("i", 33) + "]", "more than 32"},
		{"msgid too long", "<13>1 - h a p " + strings.Repeat("m", 33) + " -", "msgid: 33 characters"},
		{"timestamp year out of range", "<13>1 9999-01-01T00:00:00Z h a p m -", "outside 1678-2261"},
		{"timestamp feb 30", "<13>1 2026-02-30T00:00:00Z h a p m -", "does not exist"},
		{"timestamp no offset", "<13>1 2026-02-03T00:00:00 h a p m -", "offset"},
		{"pri letters", "<ab>x", "pri: no digits"},
		{"pri four digits", "<1234>x", "more than 3 digits"},
		{"binary after bad pri", "<\xff\xfe\x00>\x80", "pri: no digits"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p Parser
			ev, _ := p.Parse([]byte(c.raw), time.Now(), &Meta{Peer: "192.0.2.7:514", PeerIP: "192.0.2.7", Transport: "udp"})
			f := fieldMap(ev.Fields)
			assert.Equal(t, c.raw, ev.Message, "raw bytes kept")
			assert.Equal(t, "raw", f[keyFormat].Str)
			assert.Contains(t, f[keyParseError].Str, c.err)
			assert.Equal(t, "192.0.2.7", ev.Host, "host falls back to the peer")
			assert.Equal(t, "192.0.2.7:514", f[keyPeer].Str)
			var back event.Event
			b, err := ev.MarshalBinary()
			require.NoError(t, err)
			require.NoError(t, back.UnmarshalBinary(b))
			assert.Equal(t, c.raw, back.Message, "bytes survive the encoding")
		})
	}
}

// TestParseSDBounded: structured data with more parameters than a record
// should carry is cut at maxSDFields and flagged, and the record still
// encodes.
func TestParseSDBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("<13>1 - h a p m [" + strings.Repeat("x", 32))
	for range 5000 {
		b.WriteString(` p="v"`)
	}
	b.WriteString("] tail")
	var p Parser
	ev, _ := p.Parse([]byte(b.String()), time.Now(), nil)
	f := fieldMap(ev.Fields)
	require.Equal(t, "rfc5424", f[keyFormat].Str, f[keyParseError].Str)
	assert.True(t, f[keySDTruncated].Bool())
	assert.Equal(t, "tail", ev.Message)
	assert.LessOrEqual(t, len(ev.Fields), maxSDFields+6)
	_, err := ev.MarshalBinary()
	require.NoError(t, err)
}

func TestParse3164YearInference(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	cases := []struct {
		now, ts, want string
	}{
		{"2026-06-15T12:00:00Z", "Jun 15 14:00:00", "2026-06-15T12:00:00Z"}, // CEST, +02:00
		{"2027-01-01T00:10:00Z", "Dec 31 23:59:00", "2026-12-31T22:59:00Z"},
		{"2026-12-31T22:59:30Z", "Jan  1 00:00:10", "2026-12-31T23:00:10Z"},
		{"2028-03-01T00:00:00Z", "Feb 29 12:00:00", "2028-02-29T11:00:00Z"},
		{"2027-03-01T00:00:00Z", "Feb 29 12:00:00", "2028-02-29T11:00:00Z"}, // 2027 has none; 2028 is closer than 2026 (none either)
	}
	for _, c := range cases {
		now, _ := time.Parse(time.RFC3339, c.now)
		var m Message
		require.NoError(t, Parse3164("<13>"+c.ts+" h t: x", now, loc, &m))
		assert.Equal(t, c.want, time.Unix(0, m.Time).UTC().Format(time.RFC3339), "%s at %s", c.ts, c.now)
	}
}

func TestParseMeta(t *testing.T) {
	var p Parser
	meta := Meta{Peer: "[::1]:40000", PeerIP: "::1", Transport: "tls", TLSPeer: "CN=plc7", Truncated: true, OriginalBytes: 70000}
	ev, _ := p.Parse([]byte("<13>Nov 23 14:40:00 h t: x"), time.Now(), &meta)
	f := fieldMap(ev.Fields)
	assert.Equal(t, "h", ev.Host, "the message's own hostname wins")
	assert.Equal(t, "tls", f[keyTransport].Str)
	assert.Equal(t, "CN=plc7", f[keyTLSPeer].Str)
	assert.True(t, f[keyTruncated].Bool())
	assert.Equal(t, uint64(70000), f[keyOriginalBytes].Num)
}
