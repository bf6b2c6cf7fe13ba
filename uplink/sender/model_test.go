package sender

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDispatcherModel drives the dispatcher with critical records spread
// through a growing backlog, small batches, acks out of order, batches
// delivered whose acks are lost, sessions failing and resuming from a
// collector that answers a Hello as the real one does (the end of the run
// it holds from the gateway's floor). At every step the spool's mark must
// not pass a record the collector does not hold, and at the end every
// record must be there. It failed (seed 0, step 40) while the mark and the
// Hello floor were taken below the oldest outstanding batch alone: a
// batch sent ahead, outstanding once the backlog before it was acked, let
// the mark pass the records between the cursor and it, never sent.
func TestDispatcherModel(t *testing.T) {
	for seed := range uint64(10) {
		rng := rand.New(rand.NewPCG(seed, 99))
		sp := openSpool(t)
		d, err := newDispatcher(sp, 1+rng.IntN(12), 1<<20, 0)
		require.NoError(t, err)
		held := map[uint64]bool{}
		var all []uint64
		var flight []*batch
		deliver := func(b *batch) {
			for _, r := range b.recs {
				held[r.Seq] = true
			}
		}
		check := func(step int) {
			mark := sp.Stats().AckedUpTo
			for _, s := range all {
				if s <= mark {
					require.True(t, held[s], "seed %d step %d: the spool's mark %d passed %d, which the collector does not hold", seed, step, mark, s)
				}
			}
		}
		for step := range 2000 {
			switch op := rng.IntN(10); {
			case op == 0:
				all = append(all, appendLines(t, sp, step, 1+rng.IntN(30))...)
			case op == 1:
				all = append(all, appendCritical(t, sp, step, 1+rng.IntN(2))...)
			case op <= 5:
				b, _, err := d.take()
				require.NoError(t, err)
				if b != nil {
					if rng.IntN(2) == 0 {
						deliver(b)
					}
					flight = append(flight, b)
				}
			case op <= 8 && len(flight) > 0:
				i := rng.IntN(len(flight))
				b := flight[i]
				flight = append(flight[:i], flight[i+1:]...)
				deliver(b)
				require.NoError(t, d.ack(b.span))
			case op == 9:
				// The session fails: what it had in flight is queued, and
				// the next one resumes from the collector's answer.
				spans := make([]span, len(flight))
				for i, b := range flight {
					spans[i] = b.span
				}
				flight = flight[:0]
				d.fail(spans)
				h := d.floor()
				for held[h+1] {
					h++
				}
				require.NoError(t, d.resume(h))
			}
			check(step)
		}
		// Drain: every record reaches the collector.
		for _, b := range flight {
			deliver(b)
			require.NoError(t, d.ack(b.span))
		}
		for range 100000 {
			b, _, err := d.take()
			require.NoError(t, err)
			if b == nil {
				break
			}
			deliver(b)
			require.NoError(t, d.ack(b.span))
		}
		for _, s := range all {
			require.True(t, held[s], "seed %d: record %d never reached the collector", seed, s)
		}
		check(-1)
	}
}
