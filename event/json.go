package event

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"time"
	"unicode/utf8"
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

// MarshalJSON renders e in the sink format. A message that is not valid
// UTF-8 is also given whole in message_base64, since JSON strings cannot
// carry arbitrary bytes and a SOC must see exactly what the device wrote.
func (e *Event) MarshalJSON() ([]byte, error) {
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
			j.Fields[f.Key] = f.Value.jsonValue()
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

func (v Value) jsonValue() any {
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
