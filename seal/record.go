package seal

import (
	"encoding/hex"
	"fmt"

	"github.com/weirgw/weir/event"
)

// Source is the source name of seal records.
const Source = "weir:seal"

// Field is the record field that carries the seal's bytes; the other
// fields repeat some of it for people and are not trusted.
const Field = "seal"

// Event is the critical record that carries a seal.
func Event(h *Head, sealBytes []byte) event.Event {
	return event.Event{
		Time:     h.Time,
		Quality:  h.Quality,
		Source:   Source,
		Kind:     event.KindTelemetry,
		Severity: event.SevNotice,
		Priority: event.PriorityCritical,
		Message:  message(h),
		Fields: []event.Field{
			event.Bytes(Field, sealBytes),
			event.Uint("epoch", h.Epoch),
			event.Uint("first", h.First),
			event.Uint("size", h.Size),
			event.Str("root", hex.EncodeToString(h.Root[:])),
			event.Uint("evicted", uint64(len(h.Evicted))),
		},
	}
}

// FromEvent returns the seal bytes a record carries, if it is a seal
// record.
func FromEvent(e *event.Event) ([]byte, bool) {
	if e.Source != Source {
		return nil, false
	}
	for _, f := range e.Fields {
		if f.Key == Field && f.Value.Type == event.TypeBytes {
			return []byte(f.Value.Str), true
		}
	}
	return nil, false
}

// message says what the seal states, and on a log's or a chain's first
// seal why it begins (a new spool, a key provisioned again), so that
// whoever reads the records sees a new log begin where it does.
func message(h *Head) string {
	m := fmt.Sprintf("seal of epoch %d: %d records from %d, root %s, %d evictions declared",
		h.Epoch, h.Size, h.First, hex.EncodeToString(h.Root[:8]), len(h.Evicted))
	if h.Began != "" {
		m += "; a new log begins: " + h.Began
	}
	return m
}
