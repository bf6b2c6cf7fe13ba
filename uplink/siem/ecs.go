package siem

import (
	"strconv"

	"github.com/weirgw/weir/event"
)

// ECS encodes a record as one JSON object with Elastic Common Schema
// names (@timestamp, event.*, host.name, log.*, observer.*, source.ip)
// and Weir's own under weir.*: the time quality with its error bound, the
// checksum verdict, the gateway's sequence, the typed fields, and the
// exact message in base64 when it is not clean UTF-8.
type ECS struct{ cfg EncodingConfig }

// Format is FormatECS.
func (*ECS) Format() Format { return FormatECS }

// Append appends e as one JSON object (no line end).
func (j *ECS) Append(b []byte, e *event.Event) []byte {
	c := ClassOf(e)
	ci := c.info()
	b = append(b, `{"@timestamp":"`...)
	b = appendRFC3339(b, e.Time, 9)
	b = append(b, `","message":`...)
	b = appendJSONString(b, e.Message)
	b = append(b, `,"event":{"id":"`...)
	b = appendDedupeID(b, e)
	b = append(b, `","kind":"`...)
	b = append(b, ci.ecsKind...)
	b = append(b, `","category":["`...)
	b = append(b, ci.ecsCat...)
	b = append(b, `"],"type":["`...)
	b = append(b, ci.ecsType...)
	b = append(b, `"],"severity":`...)
	b = strconv.AppendInt(b, int64(sev(e)), 10)
	b = append(b, `,"sequence":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"module":"weir","dataset":"weir.`...)
	b = append(b, ci.name...)
	b = append(b, `","provider":`...)
	b = appendJSONString(b, e.Source)
	b = append(b, `},"log":{"level":"`...)
	b = append(b, e.Severity.String()...)
	b = append(b, `","syslog":{"severity":{"code":`...)
	b = strconv.AppendInt(b, int64(sev(e)), 10)
	b = append(b, `,"name":"`...)
	b = append(b, e.Severity.String()...)
	b = append(b, `"},"facility":{"code":`...)
	b = strconv.AppendInt(b, int64(facility(e, j.cfg.Facility)), 10)
	b = append(b, `}}`...)
	if p := filePath(e); p != "" {
		b = append(b, `,"file":{"path":`...)
		b = appendJSONString(b, p)
		b = append(b, '}')
	}
	b = append(b, '}')
	if e.Host != "" {
		b = append(b, `,"host":{"name":`...)
		b = appendJSONString(b, e.Host)
		b = append(b, '}')
	}
	if ip, ok := peerIP(e); ok {
		b = append(b, `,"source":{"ip":"`...)
		b = ip.AppendTo(b)
		b = append(b, `"}`...)
	}
	b = append(b, `,"observer":{"name":"`...)
	b = append(b, e.Gateway...)
	b = append(b, `","type":"gateway","vendor":`...)
	b = appendJSONString(b, j.cfg.Vendor)
	b = append(b, `,"product":`...)
	b = appendJSONString(b, j.cfg.Product)
	b = append(b, `,"version":`...)
	b = appendJSONString(b, j.cfg.Version)
	b = append(b, `},"weir":{"gateway":"`...)
	b = append(b, e.Gateway...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"source":`...)
	b = appendJSONString(b, e.Source)
	b = append(b, `,"kind":"`...)
	b = append(b, e.Kind.String()...)
	b = append(b, `","class":"`...)
	b = append(b, ci.name...)
	b = append(b, `","priority":"`...)
	b = append(b, e.Priority.String()...)
	b = append(b, `","time_quality":{"source":"`...)
	b = append(b, e.Quality.Source.String()...)
	b = append(b, `","state":"`...)
	b = append(b, e.Quality.State.String()...)
	b = append(b, `","error_bound_ns":`...)
	if e.Quality.ErrorBound >= 0 {
		b = strconv.AppendInt(b, e.Quality.ErrorBound, 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `},"checksum":"`...)
	b = append(b, e.Checksum.String()...)
	b = append(b, '"')
	if e.Observed != 0 {
		b = append(b, `,"observed":"`...)
		b = appendRFC3339(b, e.Observed, 9)
		b = append(b, '"')
	}
	if len(e.Fields) > 0 {
		b = append(b, `,"fields":`...)
		b = appendFieldsJSON(b, e.Fields)
	}
	if !clean(e.Message) {
		b = append(b, `,"message_base64":"`...)
		b = appendBase64(b, e.Message)
		b = append(b, '"')
	}
	return append(b, `}}`...)
}
