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
	p, err := b.prepare(ctx, d)
	if err != nil {
		return err
	}
	defer p.release()
	return b.commit(p)
}

// prepared is a batch checked, decompressed and decoded, not yet written:
// what the session decodes while the batch before it is written and
// fsynced. It holds budget and its buffers until release.
type prepared struct {
	first, count uint64
	payload      []byte // the records, decompressed; owned until release
	entries      []Entry
	bufs         *batchBufs
	release      func()
}

// batchBufs are what a batch is decoded into: its payload, events and
// entries, a few hundred kilobytes for a full batch. They go back to the
// Server's pool when the batch is written, for the next batch of any
// session: allocating them for every batch cost a fifth of the batch
// path's time in allocation and zeroing (BenchmarkAccept). Nothing
// outlives Write that points into them (Entry.Record's contract; the
// sinks and the seal check copy what they keep), and the pool is emptied
// by the garbage collector, so idle sessions hold nothing.
type batchBufs struct {
	payload []byte
	evs     []event.Event
	entries []Entry
}

func (s *Server) getBufs() *batchBufs {
	if b, ok := s.bufs.Get().(*batchBufs); ok {
		return b
	}
	return &batchBufs{}
}

// prepare does everything to a batch that does not depend on what the
// sink holds: the bounds, decompression and decoding. The payload it
// keeps is its own (d's may be a frame buffer the next read reuses), and
// its size stays taken from the budget until release.
func (b *batcher) prepare(ctx context.Context, d *uplink.Data) (*prepared, error) {
	s := b.srv
	if d.Count > uint64(b.maxRecs) {
		return nil, refused(uplink.ErrLimit, "count", "%d records, more than the %d agreed", d.Count, b.maxRecs)
	}
	var held int
	bufs := s.getBufs()
	switch d.Codec {
	case uplink.CodecNone:
		if len(d.Payload) > b.bound {
			return nil, refused(uplink.ErrLimit, "size", "%d-byte payload, more than the %d agreed", len(d.Payload), b.bound)
		}
		if err := s.budget.acquire(ctx, len(d.Payload), s.cfg.BudgetWait); err != nil {
			return nil, err
		}
		bufs.payload, held = append(bufs.payload[:0], d.Payload...), len(d.Payload)
	case uplink.CodecZstd:
		// The decoder may use up to its bound whatever the payload says,
		// so that much is taken from the budget for the decode, and kept
		// while the batch waits to be written.
		dec, err := s.decoders.get()
		if err != nil {
			return nil, err
		}
		defer s.decoders.put(dec)
		if err := s.budget.acquire(ctx, s.decoders.bound, s.cfg.BudgetWait); err != nil {
			return nil, err
		}
		held = s.decoders.bound
		out, err := dec.Decompress(d.Codec, d.Payload, bufs.payload[:0])
		switch {
		case errors.Is(err, uplink.ErrTooLarge) || (err == nil && len(out) > b.bound):
			s.budget.release(held)
			return nil, refused(uplink.ErrLimit, "size", "zstd payload of %d bytes decodes to more than the %d agreed", len(d.Payload), b.bound)
		case err != nil:
			s.budget.release(held)
			return nil, refused(uplink.ErrPayload, "decompress", "%w", err)
		}
		bufs.payload = out
	default:
		return nil, refused(uplink.ErrPayload, "codec", "unknown codec %d", d.Codec)
	}
	p := &prepared{first: d.First, count: d.Count, payload: bufs.payload, bufs: bufs}
	p.release = func() {
		s.budget.release(held)
		p.payload, p.entries, p.bufs = nil, nil, nil
		s.bufs.Put(bufs)
	}
	if err := b.decode(p); err != nil {
		p.release()
		return nil, err
	}
	return p, nil
}

// decode splits and decodes p's records into entries, every one of them:
// commit drops those the sink holds when it writes.
func (b *batcher) decode(p *prepared) error {
	// Each record takes at least its length byte and MinRecord bytes: a
	// count beyond what the payload can hold is a lie, refused before
	// anything is sized by it.
	if p.count > uint64(len(p.payload)/(1+uplink.MinRecord)) {
		return refused(uplink.ErrPayload, "count", "%d records announced in %d bytes (each takes at least %d)",
			p.count, len(p.payload), 1+uplink.MinRecord)
	}
	// The whole batch is decoded before any of it is written (commit), so
	// one that breaks a bound further on writes nothing.
	bufs := p.bufs
	if uint64(cap(bufs.entries)) < p.count {
		bufs.entries = make([]Entry, 0, p.count)
	}
	if uint64(cap(bufs.evs)) < p.count {
		bufs.evs = make([]event.Event, p.count)
	}
	p.entries = bufs.entries[:0]
	evs := bufs.evs[:p.count]
	var prev *event.Event // the last record decoded, whose strings the next may share
	err := uplink.SplitRecords(p.payload, p.count, func(i uint64, rec []byte) error {
		seq := p.first + i
		e := &evs[i]
		*e = event.Event{Fields: e.Fields[:0]} // the field slice is reused, nothing else
		if err := e.UnmarshalBinaryAfter(rec, prev); err != nil {
			raw := append([]byte(nil), rec...)
			p.entries = append(p.entries, Entry{Seq: seq, Raw: raw, DecodeErr: err, Record: raw, Leaf: merkle.RecordLeaf(seq, rec)})
			return nil
		}
		e.Seq = seq
		prev = e
		e.Gateway = b.id // the certificate, not the payload, says who sent it
		p.entries = append(p.entries, Entry{Seq: seq, Event: e, Record: rec, Leaf: merkle.RecordLeaf(seq, rec)})
		return nil
	})
	if err != nil {
		return refused(uplink.ErrPayload, "split", "%w", err)
	}
	return nil
}

// commit writes what of p the sink does not hold yet, durably, and feeds
// the seal check. Batches of a session are committed one at a time, in
// order, so each sees what the one before it wrote.
func (b *batcher) commit(p *prepared) error {
	s := b.srv
	entries, undecodable := p.entries[:0], 0
	for _, e := range p.entries {
		if s.sink.Holds(b.id, e.Seq) {
			continue // a resent record the sink holds already: ack, don't write
		}
		if e.DecodeErr != nil {
			undecodable++
		}
		entries = append(entries, e)
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
	m.duplicates.WithLabelValues(b.id).Add(float64(p.count - uint64(res.Written)))
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
