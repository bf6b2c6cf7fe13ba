package rules

import (
	"strconv"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
)

// alerts makes the records of fs. Called under the engine's lock, once
// the sequences they name are known.
func (e *Engine) alerts(fs []firing) []event.Event {
	if len(fs) == 0 {
		return nil
	}
	out := make([]event.Event, 0, len(fs))
	for _, f := range fs {
		fields := []event.Field{
			event.Str("level", f.level.String()), event.Uint("level_value", uint64(f.level)),
			event.Str("type", f.typ),
		}
		if f.rule != "" {
			fields = append(fields, event.Str("rule", f.rule))
		}
		if f.group != "" {
			fields = append(fields, event.Str("group", f.group))
		}
		if f.count == float64(uint64(f.count)) {
			fields = append(fields, event.Uint("count", uint64(f.count)))
		} else {
			fields = append(fields, event.Float("count", f.count))
		}
		if f.window > 0 {
			fields = append(fields, event.Float("window_seconds", f.window.Seconds()))
		}
		if f.stage > 0 {
			fields = append(fields, event.Uint("escalation", uint64(f.stage)))
		}
		if s := f.first.seq(); s != 0 {
			fields = append(fields, event.Uint("first_seq", s))
		}
		if s := f.last.seq(); s != 0 {
			fields = append(fields, event.Uint("last_seq", s))
		}
		if f.firstT != 0 {
			fields = append(fields, event.Str("first_time", time.Unix(0, f.firstT).UTC().Format(time.RFC3339Nano)))
		}
		if f.lastT != 0 {
			fields = append(fields, event.Str("last_time", time.Unix(0, f.lastT).UTC().Format(time.RFC3339Nano)))
		}
		if f.corrID != "" {
			fields = append(fields, event.Str("correlation_id", f.corrID), event.Str("pattern", f.typ))
			var seqs []string
			for _, r := range f.related {
				if s := r.seq(); s != 0 {
					seqs = append(seqs, strconv.FormatUint(s, 10))
				}
			}
			if len(seqs) > 0 {
				fields = append(fields, event.Str("related_seqs", strings.Join(seqs, ",")))
			}
			if f.moreRelated > 0 {
				fields = append(fields, event.Uint("related_more", uint64(f.moreRelated)))
			}
		}
		if len(f.keys) > 0 {
			fields = append(fields, event.Str("devices", strings.Join(f.keys, ",")))
		}
		if f.description != "" {
			fields = append(fields, event.Str("description", f.description))
		}
		out = append(out, event.Event{Source: AlertSource, Kind: event.KindAlert, Severity: f.level.severity(),
			Priority: event.PriorityCritical, Message: f.message, Fields: fields})
	}
	return out
}
