package siem

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// caseRecord is a golden case's input: a record in a form JSON can hold,
// invalid UTF-8 included (as hex).
type caseRecord struct {
	Gateway  string `json:"gateway"`
	Seq      uint64 `json:"seq"`
	Time     string `json:"time"`
	Observed string `json:"observed"`
	Quality  struct {
		Source     string `json:"source"`
		State      string `json:"state"`
		ErrorBound *int64 `json:"error_bound_ns"`
	} `json:"quality"`
	Source        string `json:"source"`
	Kind          string `json:"kind"`
	Severity      string `json:"severity"`
	Priority      string `json:"priority"`
	Host          string `json:"host"`
	Message       string `json:"message"`
	MessageHex    string `json:"message_hex"`
	MessageRepeat *struct {
		Text  string `json:"text"`
		Count int    `json:"count"`
	} `json:"message_repeat"`
	Checksum string `json:"checksum"`
	Fields   []struct {
		Key    string   `json:"key"`
		Str    *string  `json:"str"`
		StrHex *string  `json:"str_hex"`
		Int    *int64   `json:"int"`
		Uint   *uint64  `json:"uint"`
		Float  *float64 `json:"float"`
		Bool   *bool    `json:"bool"`
		Bytes  *string  `json:"bytes_hex"`
	} `json:"fields"`
	Encoding map[string]string `json:"encoding"`
}

func index[T ~uint8](names []string, name string) T {
	for i, n := range names {
		if n == name {
			return T(i)
		}
	}
	panic("unknown name " + name)
}

func (c *caseRecord) event(t *testing.T) *event.Event {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, c.Time)
	require.NoError(t, err)
	e := &event.Event{Gateway: c.Gateway, Seq: c.Seq, Time: ts.UnixNano(), Source: c.Source, Host: c.Host, Message: c.Message,
		Quality: event.Quality{ErrorBound: -1}}
	if c.Observed != "" {
		o, err := time.Parse(time.RFC3339Nano, c.Observed)
		require.NoError(t, err)
		e.Observed = o.UnixNano()
	}
	if c.Quality.ErrorBound != nil {
		e.Quality.ErrorBound = *c.Quality.ErrorBound
	}
	e.Quality.Source = index[event.TimeSource]([]string{"unknown", "system", "ptp"}, c.Quality.Source)
	e.Quality.State = index[event.ClockState]([]string{"unknown", "freerun", "holdover", "locked"}, c.Quality.State)
	e.Kind = index[event.Kind]([]string{"log", "reading", "audit", "integrity", "alert", "telemetry"}, c.Kind)
	e.Severity = index[event.Severity]([]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}, c.Severity)
	e.Priority = index[event.Priority]([]string{"normal", "critical", "bulk"}, c.Priority)
	if c.Checksum != "" {
		e.Checksum = index[event.Checksum]([]string{"none", "ok", "bad"}, c.Checksum)
	}
	if c.MessageHex != "" {
		b, err := hex.DecodeString(c.MessageHex)
		require.NoError(t, err)
		e.Message = string(b)
	}
	if r := c.MessageRepeat; r != nil {
		e.Message = strings.Repeat(r.Text, r.Count)
	}
	for _, f := range c.Fields {
		switch {
		case f.Str != nil:
			e.Fields = append(e.Fields, event.Str(f.Key, *f.Str))
		case f.StrHex != nil:
			b, err := hex.DecodeString(*f.StrHex)
			require.NoError(t, err)
			e.Fields = append(e.Fields, event.Str(f.Key, string(b)))
		case f.Int != nil:
			e.Fields = append(e.Fields, event.Int(f.Key, *f.Int))
		case f.Uint != nil:
			e.Fields = append(e.Fields, event.Uint(f.Key, *f.Uint))
		case f.Float != nil:
			e.Fields = append(e.Fields, event.Float(f.Key, *f.Float))
		case f.Bool != nil:
			e.Fields = append(e.Fields, event.Bool(f.Key, *f.Bool))
		case f.Bytes != nil:
			b, err := hex.DecodeString(*f.Bytes)
			require.NoError(t, err)
			e.Fields = append(e.Fields, event.Bytes(f.Key, b))
		}
	}
	return e
}

func (c *caseRecord) encoding() EncodingConfig {
	cfg := DefaultEncodingConfig()
	for k, v := range c.Encoding {
		switch k {
		case "leef_delimiter":
			cfg.LEEFDelimiter = v
		case "vendor":
			cfg.Vendor = v
		case "product":
			cfg.Product = v
		}
	}
	return cfg
}

// golden is the file a format's output is kept in: one message and a
// line end; RFC 5424 framed with its octet count, as it goes on the wire.
var golden = map[Format]string{FormatCEF: "cef.golden", FormatLEEF: "leef.golden", FormatRFC5424: "rfc5424.golden", FormatECS: "ecs.golden"}

// TestGolden pins each format's output for hostile records (testdata/
// golden/<case>/record.json): line ends, '|', '=', '\', ']', quotes,
// non-ASCII, invalid UTF-8, control characters, 64 KiB messages. Each
// output must also read back through the format's strict parser to the
// record's fields (Verify). go test -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, "record.json"))
			require.NoError(t, err)
			var c caseRecord
			d := json.NewDecoder(bytes.NewReader(raw))
			d.DisallowUnknownFields()
			require.NoError(t, d.Decode(&c))
			e := c.event(t)
			cfg := c.encoding()
			require.NoError(t, cfg.Validate())
			for _, f := range Formats {
				enc, err := New(f, cfg)
				require.NoError(t, err)
				msg := enc.Append(nil, e)
				require.NoError(t, Verify(f, cfg, e, msg), "%s does not read back", f)
				out := append(bytes.Clone(msg), '\n')
				if f == FormatRFC5424 {
					out = append(AppendFrame(nil, msg), '\n')
				}
				path := filepath.Join(dir, golden[f])
				if *update {
					require.NoError(t, os.WriteFile(path, out, 0o644))
					continue
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "run go test -run TestGolden -update")
				if !bytes.Equal(out, want) {
					t.Errorf("%s differs from %s:\n got %q\nwant %q", f, path, clip(string(out)), clip(string(want)))
				}
			}
		})
	}
}
