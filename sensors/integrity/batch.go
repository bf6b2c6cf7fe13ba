package integrity

import (
	"context"
	"fmt"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// Batch limits. One Emit is one spool transaction: at most
// spool.MaxAppendRecords records plus checkpoints and spool.MaxAppendBytes
// of record data, and checkpoints take room in the same Badger transaction
// (about 307 KiB for the small profile), so a batch stops well short.
const (
	maxBatchItems = spool.MaxAppendRecords - 24
	maxBatchBytes = 128 << 10
	// gatewayAdds is what the gateway adds to a record before it encodes
	// it: the longest gateway id and host it allows, and a time.
	gatewayAdds = 64 + 253 + 16
	// checkpointOverhead is a checkpoint's cost beyond its source and
	// position: Badger's key prefix and entry metadata.
	checkpointOverhead = 32
)

// batch gathers records and entries for one Emit.
type batch struct {
	evs     []event.Event
	cps     []spool.Checkpoint
	bytes   int
	changes int // change records in evs
	delta   int // paths the baseline gains (or loses, negative)
	scratch []byte
}

// add puts records and checkpoints that must commit together into the
// batch, emitting what it held first if they do not fit. changes is the
// number of change records among evs; delta the paths they add to the
// baseline.
func (r *runner) add(ctx context.Context, evs []event.Event, cps []spool.Checkpoint, changes, delta int) error {
	b := &r.batch
	size := 0
	for i := range evs {
		var err error
		b.scratch, err = evs[i].AppendBinary(b.scratch[:0])
		if err != nil {
			return fmt.Errorf("integrity: encode record of %s: %w", evs[i].Source, err)
		}
		size += len(b.scratch) + gatewayAdds
	}
	for _, cp := range cps {
		size += len(cp.Source) + len(cp.Position) + checkpointOverhead
	}
	items := len(evs) + len(cps)
	if len(b.evs)+len(b.cps)+items > maxBatchItems || b.bytes+size > maxBatchBytes {
		if err := r.flush(ctx); err != nil {
			return err
		}
	}
	b.evs = append(b.evs, evs...)
	b.cps = append(b.cps, cps...)
	b.bytes += size
	b.changes += changes
	b.delta += delta
	return nil
}

// flush emits the batch. If the sink fails, the batch is dropped: its
// changes are not in the baseline either, so the next scan finds them
// again.
func (r *runner) flush(ctx context.Context) error {
	b := &r.batch
	if len(b.evs) == 0 && len(b.cps) == 0 {
		return nil
	}
	err := r.sink.Emit(ctx, b.evs, b.cps)
	changes, delta := b.changes, b.delta
	r.discard()
	if err != nil {
		return fmt.Errorf("integrity: commit: %w", err)
	}
	r.m.update(func(s *Status) {
		s.Changes += uint64(changes)
		s.Files += int64(delta)
	})
	return nil
}

// discard empties the batch without emitting it. A scan that failed
// leaves its batch this way: the next one finds the same changes again
// and must not find them queued twice.
func (r *runner) discard() {
	b := &r.batch
	clear(b.evs)
	clear(b.cps)
	b.evs, b.cps, b.bytes, b.changes, b.delta = b.evs[:0], b.cps[:0], 0, 0, 0
}
