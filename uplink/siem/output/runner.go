package output

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink/siem"
)

// Target is where an output delivers.
type Target interface {
	// Deliver returns nil once the target holds every record of the batch
	// as far as it can say (each target documents its guarantee), or has
	// put those it refuses for good in its dead-letter file. An error
	// means the batch is sent again, whole, after a back-off: the target
	// dedupes by the records' ids where it can.
	Deliver(ctx context.Context, batch []*event.Event) error
	Close() error
}

// Source is what a runner reads: the spool through its Gate view.
type Source interface {
	Read(cursor uint64, max, maxBytes int) ([]spool.Record, error)
	Ack(upTo uint64) error
	Appended() <-chan struct{}
	Mark() uint64
}

// Batching bounds one batch and paces retries.
type Batching struct {
	MaxRecords int
	MaxBytes   int // of spooled (encoded) record bytes
	Flush      time.Duration
	RetryMin   time.Duration
	RetryMax   time.Duration
}

// Runner delivers one output's records.
type Runner struct {
	name      string
	target    Target
	src       Source
	b         Batching
	log       *slog.Logger
	now       func() time.Time
	decodeRec func(rec spool.Record, e *event.Event) error

	mu sync.Mutex
	st Status
}

// Status is a runner's figures, for status output and metrics.
type Status struct {
	Name            string    `json:"name"`
	Mark            uint64    `json:"mark"`
	Delivered       uint64    `json:"delivered"`
	Batches         uint64    `json:"batches"`
	Failures        uint64    `json:"failures"`
	Undecodable     uint64    `json:"undecodable"`
	LastError       string    `json:"last_error,omitempty"`
	LastErrorAt     time.Time `json:"last_error_at,omitzero"`
	LastDeliveredAt time.Time `json:"last_delivered_at,omitzero"`
}

// NewRunner builds a runner delivering src's records to target.
func NewRunner(name string, target Target, src Source, b Batching, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.Default()
	}
	return &Runner{name: name, target: target, src: src, b: b, log: log, now: time.Now, st: Status{Name: name},
		decodeRec: func(rec spool.Record, e *event.Event) error {
			if err := e.UnmarshalBinary(rec.Data); err != nil {
				return err
			}
			e.Seq = rec.Seq
			// The record's leaf in the gateway's Merkle log rides with it
			// to the SIEM, which can then recompute the log and check the
			// seals (themselves records, forwarded like any).
			leaf := merkle.RecordLeaf(rec.Seq, rec.Data)
			e.Fields = append(e.Fields, event.Str(siem.LeafField, hex.EncodeToString(leaf[:])))
			return nil
		}}
}

// SetDecode replaces how a spooled record becomes an event (the
// gateway's: the record's bytes, its spool sequence). A collector's
// forward spool keeps the gateway's own sequence in front
// (uplink/collector.DecodeForwarded). Call it before Run.
func (r *Runner) SetDecode(f func(rec spool.Record, e *event.Event) error) { r.decodeRec = f }

// Status returns a snapshot.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.Mark = r.src.Mark()
	return st
}

// Run delivers until ctx is done, then closes the target.
func (r *Runner) Run(ctx context.Context) error {
	defer r.target.Close()
	cursor := r.src.Mark() + 1
	for {
		wake := r.src.Appended()
		recs, err := r.src.Read(cursor, r.b.MaxRecords, r.b.MaxBytes)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("output %s: read spool at %d: %w", r.name, cursor, err)
		}
		recs = leadingRun(recs)
		if len(recs) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
				continue
			}
		}
		if !r.full(recs) {
			if due := recs[0].Appended.Add(r.b.Flush); r.now().Before(due) {
				t := time.NewTimer(due.Sub(r.now()))
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-wake:
				case <-t.C:
				}
				t.Stop()
				continue
			}
		}
		evs := r.decode(recs)
		if !r.deliver(ctx, evs) {
			return nil
		}
		last := recs[len(recs)-1].Seq
		if err := r.src.Ack(last); err != nil {
			return fmt.Errorf("output %s: ack spool up to %d: %w", r.name, last, err)
		}
		cursor = last + 1
	}
}

// leadingRun is the records up to the first gap (evicted or expired
// records), so a batch's sequences are consecutive.
func leadingRun(recs []spool.Record) []spool.Record {
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq != recs[i-1].Seq+1 {
			return recs[:i]
		}
	}
	return recs
}

func (r *Runner) full(recs []spool.Record) bool {
	if len(recs) >= r.b.MaxRecords {
		return true
	}
	n := 0
	for _, rec := range recs {
		n += len(rec.Data)
	}
	return r.b.MaxBytes > 0 && n+n/len(recs) > r.b.MaxBytes
}

// decode turns spooled records into events; one that does not decode
// goes as an alert carrying its bytes.
func (r *Runner) decode(recs []spool.Record) []*event.Event {
	evs := make([]event.Event, len(recs))
	out := make([]*event.Event, len(recs))
	bad := 0
	for i, rec := range recs {
		e := &evs[i]
		if err := r.decodeRec(rec, e); err != nil {
			bad++
			*e = event.Event{Seq: rec.Seq, Time: rec.Appended.UnixNano(), Quality: event.Quality{Source: event.TimeSystem, ErrorBound: -1},
				Source: "weir:output", Kind: event.KindAlert, Severity: event.SevError, Priority: event.PriorityCritical,
				Message: fmt.Sprintf("spooled record %d does not decode: %v", rec.Seq, err),
				Fields:  []event.Field{event.Str("raw_base64", base64.StdEncoding.EncodeToString(rec.Data))}}
		}
		out[i] = e
	}
	if bad > 0 {
		r.mu.Lock()
		r.st.Undecodable += uint64(bad)
		r.mu.Unlock()
		r.log.Error("spooled records do not decode; delivered as alerts with their bytes", "output", r.name, "records", bad)
	}
	return out
}

// deliver sends the batch until the target takes it; false when ctx
// ended first.
func (r *Runner) deliver(ctx context.Context, evs []*event.Event) bool {
	backoff := r.b.RetryMin
	for attempt := 1; ; attempt++ {
		err := r.target.Deliver(ctx, evs)
		if err == nil {
			r.mu.Lock()
			r.st.Delivered += uint64(len(evs))
			r.st.Batches++
			r.st.LastDeliveredAt = r.now()
			r.mu.Unlock()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.mu.Lock()
		r.st.Failures++
		r.st.LastError, r.st.LastErrorAt = err.Error(), r.now()
		r.mu.Unlock()
		level := slog.LevelWarn
		if attempt > 1 {
			level = slog.LevelDebug
		}
		r.log.Log(ctx, level, "output batch not delivered; retrying", "output", r.name, "first", evs[0].Seq,
			"last", evs[len(evs)-1].Seq, "attempt", attempt, "retry_in", backoff, "err", err)
		// Jitter keeps a fleet of gateways from retrying in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(2*backoff, r.b.RetryMax)
	}
}

// ErrClosed is returned by a target used after Close.
var ErrClosed = errors.New("output: closed")
