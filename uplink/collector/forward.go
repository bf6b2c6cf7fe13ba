package collector

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink/siem"
)

// ForwardSpool is what Forward needs of a spool.
type ForwardSpool interface {
	Append(ctx context.Context, entries []spool.Entry, cps []spool.Checkpoint) (uint64, error)
}

// Forward is a sink that keeps what it writes in a spool too, for SIEM
// outputs to forward (uplink/siem/output runs them off it, each with its
// own mark). It spools the entries its inner sink does not hold yet, and
// only then writes them there: the gateway is acknowledged once both
// hold them, so a record the collector acknowledged is always forwarded.
// A failure between the two makes the gateway resend, and the resent
// records are spooled again: forwarding is at-least-once, and the
// outputs' targets dedupe by the record's id gateway:sequence where they
// can (Elasticsearch's _id).
type Forward struct {
	Sink
	sp      ForwardSpool
	timeout time.Duration
}

// NewForward wraps inner; a full spool makes Write wait up to timeout,
// then fail (the gateway resends later).
func NewForward(inner Sink, sp ForwardSpool, timeout time.Duration) *Forward {
	return &Forward{Sink: inner, sp: sp, timeout: timeout}
}

// AppendForwarded encodes one record for the forward spool: its
// gateway's sequence (uvarint), then the record (event.Event.AppendBinary).
func AppendForwarded(b []byte, e *event.Event) ([]byte, error) {
	b = binary.AppendUvarint(b, e.Seq)
	return e.AppendBinary(b)
}

// DecodeForwarded reads what AppendForwarded wrote.
func DecodeForwarded(b []byte, e *event.Event) error {
	seq, n := binary.Uvarint(b)
	if n <= 0 {
		return errors.New("collector: forwarded record: no sequence")
	}
	if err := e.UnmarshalBinary(b[n:]); err != nil {
		return err
	}
	e.Seq = seq
	return nil
}

// Write spools the entries the inner sink does not hold, then writes them.
func (f *Forward) Write(gateway string, entries []Entry) (WriteResult, error) {
	var batch []spool.Entry
	var size int
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := f.sp.Append(ctx, batch, nil)
		batch, size = batch[:0], 0
		return err
	}
	for i := range entries {
		e := &entries[i]
		if f.Holds(gateway, e.Seq) {
			continue
		}
		ev := e.Event
		if ev == nil {
			ev = &event.Event{Seq: e.Seq, Gateway: gateway, Time: time.Now().UnixNano(), Source: "weir-collector",
				Kind: event.KindAlert, Severity: event.SevError, Priority: event.PriorityCritical,
				Message: fmt.Sprintf("record %d of %s does not decode: %v", e.Seq, gateway, e.DecodeErr),
				Quality: event.Quality{Source: event.TimeSystem, ErrorBound: -1},
				Fields:  []event.Field{event.Bytes("raw", e.Raw)}}
		}
		if e.Record != nil {
			// The leaf rides to the SIEM (siem.LeafField); the forward
			// spool's own bytes are not the gateway's.
			c := *ev
			c.Fields = append(slices.Clone(ev.Fields), event.Str(siem.LeafField, hex.EncodeToString(e.Leaf[:])))
			ev = &c
		}
		b, err := AppendForwarded(nil, ev)
		if err != nil {
			return WriteResult{}, fmt.Errorf("collector: forward %s:%d: %w", gateway, e.Seq, err)
		}
		if len(batch) > 0 && (len(batch) >= spool.MaxAppendRecords || size+len(b) > spool.MaxAppendBytes) {
			if err := flush(); err != nil {
				return WriteResult{}, fmt.Errorf("collector: forward spool: %w", err)
			}
		}
		batch = append(batch, spool.Entry{Class: spool.ClassNormal, Data: b})
		size += len(b)
	}
	if err := flush(); err != nil {
		return WriteResult{}, fmt.Errorf("collector: forward spool: %w", err)
	}
	return f.Sink.Write(gateway, entries)
}
