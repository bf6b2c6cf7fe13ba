package collector

import (
	"context"
	"errors"
	"fmt"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
	"github.com/weirgw/weir/uplink"
)

// batchError is a batch refused for breaking a bound: answered with an
// Error frame of code, counted under reason, nothing of it written.
type batchError struct {
	code   uplink.ErrorCode
	reason string
	err    error
}

func (e *batchError) Error() string { return e.err.Error() }
func (e *batchError) Unwrap() error { return e.err }

func refused(code uplink.ErrorCode, reason string, format string, a ...any) *batchError {
	return &batchError{code: code, reason: reason, err: fmt.Errorf(format, a...)}
}

// batcher turns one session's Data messages into sink entries within the
// limits agreed in its Welcome. It keeps nothing sized by a batch between
// batches: an idle session holds no payload or event buffers.
type batcher struct {
	srv     *Server
	id      string
	maxRecs int
	bound   int // the most a payload may decode to
}

func newBatcher(s *Server, id string, maxRecs, maxBytes int) *batcher {
	return &batcher{srv: s, id: id, maxRecs: maxRecs, bound: uplink.PayloadBound(maxRecs, maxBytes)}
}

func (b *batcher) close() {}

// accept checks a batch against every bound before anything is sized by
// it, decompresses it within the budget, drops what the sink holds already
// (a resent batch, or one overlapping the mark), and writes the rest
// durably.
func (b *batcher) accept(ctx context.Context, d *uplink.Data) error {
	s := b.srv
	if d.Count > uint64(b.maxRecs) {
		return refused(uplink.ErrLimit, "count", "%d records, more than the %d agreed", d.Count, b.maxRecs)
	}
	payload := d.Payload
	switch d.Codec {
	case uplink.CodecNone:
		if len(payload) > b.bound {
			return refused(uplink.ErrLimit, "size", "%d-byte payload, more than the %d agreed", len(payload), b.bound)
		}
	case uplink.CodecZstd:
		// The decoder may use up to its bound whatever the payload says,
		// so that much is taken from the budget for the decode.
		dec, err := s.decoders.get()
		if err != nil {
			return err
		}
		defer s.decoders.put(dec)
		if err := s.budget.acquire(ctx, s.decoders.bound, s.cfg.BudgetWait); err != nil {
			return err
		}
		defer s.budget.release(s.decoders.bound)
		out, err := dec.Decompress(d.Codec, payload, nil)
		switch {
		case errors.Is(err, uplink.ErrTooLarge) || (err == nil && len(out) > b.bound):
			return refused(uplink.ErrLimit, "size", "zstd payload of %d bytes decodes to more than the %d agreed", len(payload), b.bound)
		case err != nil:
			return refused(uplink.ErrPayload, "decompress", "%w", err)
		}
		payload = out
	default:
		return refused(uplink.ErrPayload, "codec", "unknown codec %d", d.Codec)
	}
	// Each record takes at least its length byte and MinRecord bytes: a
	// count beyond what the payload can hold is a lie, refused before
	// anything is sized by it.
	if d.Count > uint64(len(payload)/(1+uplink.MinRecord)) {
		return refused(uplink.ErrPayload, "count", "%d records announced in %d bytes (each takes at least %d)",
			d.Count, len(payload), 1+uplink.MinRecord)
	}
	// Split once to check the whole payload, so nothing is written from a
	// batch that breaks a bound further on.
	if err := uplink.SplitRecords(payload, d.Count, func(uint64, []byte) error { return nil }); err != nil {
		return refused(uplink.ErrPayload, "split", "%w", err)
	}
	var (
		entries     = make([]Entry, 0, d.Count)
		evs         = make([]event.Event, d.Count)
		undecodable int
	)
	err := uplink.SplitRecords(payload, d.Count, func(i uint64, rec []byte) error {
		seq := d.First + i
		if s.sink.Holds(b.id, seq) {
			return nil // a resent record the sink holds already: ack, don't write
		}
		e := &evs[i]
		if err := e.UnmarshalBinary(rec); err != nil {
			undecodable++
			raw := append([]byte(nil), rec...)
			entries = append(entries, Entry{Seq: seq, Raw: raw, DecodeErr: err, Record: raw, Leaf: merkle.RecordLeaf(seq, rec)})
			return nil
		}
		e.Seq = seq
		e.Gateway = b.id // the certificate, not the payload, says who sent it
		entries = append(entries, Entry{Seq: seq, Event: e, Record: rec, Leaf: merkle.RecordLeaf(seq, rec)})
		return nil
	})
	if err != nil {
		return refused(uplink.ErrPayload, "split", "%w", err)
	}
	res, err := s.sink.Write(b.id, entries)
	if err != nil {
		return err
	}
	if s.seals != nil {
		for _, f := range s.seals.Observe(b.id, entries) {
			s.log.Error("tamper-evident log fails", "gateway", f.Gateway, "epoch", f.Epoch, "seq", f.Seq, "upto", f.Upto, "reason", f.Reason)
			if err := s.sink.Alert(failureEvent(f)); err != nil {
				s.log.Error("critical record not stored", "gateway", b.id, "err", err)
			}
		}
	}
	m := s.metrics
	m.records.WithLabelValues(b.id).Add(float64(res.Written))
	m.duplicates.WithLabelValues(b.id).Add(float64(d.Count - uint64(res.Written)))
	if undecodable > 0 {
		m.undecodable.WithLabelValues(b.id).Add(float64(undecodable))
	}
	if res.Forgotten > 0 {
		m.rangesForgotten.WithLabelValues(b.id).Add(float64(res.Forgotten))
		s.rlog.warn("ranges", "dedupe state of a gateway over its range cap: highest ranges forgotten (a resend of them would be written again)",
			"gateway", b.id, "forgotten", res.Forgotten)
	}
	return nil
}

// decoders is a small free list of zstd decoders shared by the sessions:
// a decoder keeps buffers as large as the largest frame it decoded, so
// one per session would hold that much per idle session.
type decoders struct {
	bound int
	free  chan *uplink.Decompressor
}

func newDecoders(bound, keep int) *decoders {
	return &decoders{bound: bound, free: make(chan *uplink.Decompressor, keep)}
}

func (d *decoders) get() (*uplink.Decompressor, error) {
	select {
	case dec := <-d.free:
		return dec, nil
	default:
		return uplink.NewDecompressor(d.bound)
	}
}

func (d *decoders) put(dec *uplink.Decompressor) {
	select {
	case d.free <- dec:
	default:
		dec.Close()
	}
}
