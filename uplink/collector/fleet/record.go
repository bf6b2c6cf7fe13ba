package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/weirgw/weir/event"
)

// sinkLine is a record as the sinks write it (event.Event.MarshalJSON), or
// the line of a record kept raw.
type sinkLine struct {
	Seq         uint64          `json:"seq"`
	Gateway     string          `json:"gateway"`
	TimeNs      int64           `json:"time_ns"`
	Quality     sinkQuality     `json:"time_quality"`
	Source      string          `json:"source"`
	Kind        string          `json:"kind"`
	Severity    string          `json:"severity"`
	Priority    string          `json:"priority"`
	Host        string          `json:"host"`
	Message     string          `json:"message"`
	Fields      json.RawMessage `json:"fields"`
	DecodeError *string         `json:"decode_error"`
}

type sinkQuality struct {
	Source     string `json:"source"`
	State      string `json:"state"`
	ErrorBound *int64 `json:"error_bound_ns"`
}

// MaxLine is the longest sink line taken; a longer one is skipped.
const MaxLine = 16 << 20

// ParseRecord reads one line of a JSONL sink (or one JetStream message)
// back into a record: its gateway and the event, Seq set. A record the
// collector kept raw comes back with its sequence only, as undecodable.
// Fields are typed as JSON has them: integers as Int, other numbers as
// Float, strings, booleans; the store reads numbers whatever their type.
func ParseRecord(line []byte) (string, event.Event, error) {
	var l sinkLine
	line = bytes.TrimSpace(line)
	if len(line) > MaxLine {
		return "", event.Event{}, fmt.Errorf("fleet: record of %d bytes, more than %d", len(line), MaxLine)
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return "", event.Event{}, fmt.Errorf("fleet: record: %w", err)
	}
	if l.Gateway == "" {
		return "", event.Event{}, errors.New("fleet: record: no gateway")
	}
	ev := event.Event{Seq: l.Seq, Gateway: l.Gateway}
	if l.DecodeError != nil {
		ev.Kind = kindUndecodable
		return l.Gateway, ev, nil
	}
	if l.TimeNs == 0 {
		return "", event.Event{}, fmt.Errorf("fleet: record %s:%d: no time_ns", clip(l.Gateway, 80), l.Seq)
	}
	ev.Time, ev.Source, ev.Host, ev.Message = l.TimeNs, l.Source, l.Host, l.Message
	var ok bool
	if ev.Kind, ok = parseKind(l.Kind); !ok {
		return "", event.Event{}, fmt.Errorf("fleet: record %s:%d: unknown kind %q", clip(l.Gateway, 80), l.Seq, clip(l.Kind, 40))
	}
	ev.Severity = parseSeverity(l.Severity)
	if p, err := event.ParsePriority(l.Priority); err == nil {
		ev.Priority = p
	}
	ev.Quality = event.Quality{Source: parseTimeSource(l.Quality.Source), State: parseClockState(l.Quality.State), ErrorBound: -1}
	if l.Quality.ErrorBound != nil {
		ev.Quality.ErrorBound = *l.Quality.ErrorBound
	}
	if len(l.Fields) > 0 && !bytes.Equal(l.Fields, []byte("null")) {
		fields, err := parseFields(l.Fields)
		if err != nil {
			return "", event.Event{}, fmt.Errorf("fleet: record %s:%d: fields: %w", clip(l.Gateway, 80), l.Seq, err)
		}
		ev.Fields = fields
	}
	return l.Gateway, ev, nil
}

func parseFields(raw json.RawMessage) ([]event.Field, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fields := make([]event.Field, 0, len(keys))
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			if strings.HasSuffix(k, "_base64") {
				if _, twin := m[strings.TrimSuffix(k, "_base64")]; twin {
					continue // the exact bytes of a field beside it
				}
			}
			fields = append(fields, event.Str(k, v))
		case bool:
			fields = append(fields, event.Bool(k, v))
		case json.Number:
			if i, err := v.Int64(); err == nil {
				fields = append(fields, event.Int(k, i))
			} else if f, err := v.Float64(); err == nil && !math.IsInf(f, 0) {
				fields = append(fields, event.Float(k, f))
			}
		}
	}
	return fields, nil
}

func parseKind(s string) (event.Kind, bool) {
	for k := event.Kind(0); k < 32; k++ {
		if k.String() == s {
			return k, true
		}
	}
	return 0, false
}

func parseSeverity(s string) event.Severity {
	for v := event.Severity(0); v < 8; v++ {
		if v.String() == s {
			return v
		}
	}
	return event.SevInfo
}

func parseTimeSource(s string) event.TimeSource {
	for v := event.TimeSource(0); v < 8; v++ {
		if v.String() == s {
			return v
		}
	}
	return event.TimeUnknown
}

func parseClockState(s string) event.ClockState {
	for v := event.ClockState(0); v < 8; v++ {
		if v.String() == s {
			return v
		}
	}
	return event.ClockUnknown
}

// observeParsed takes parsed records into the store at now (a rebuild:
// the records' own times stand for when they were written).
func (s *Store) observeParsed(gateway string, evs []*event.Event) {
	var at int64
	for _, ev := range evs {
		if ev.Time > at && ev.Time <= s.opt.Now().Add(maxSkew).UnixNano() {
			at = ev.Time
		}
	}
	s.observeLocked(gateway, at, evs, true)
}
