package output

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/weirgw/weir/spool"
)

// Spool is what the gate needs of the store-and-forward queue.
type Spool interface {
	Read(cursor uint64, max, maxBytes int) ([]spool.Record, error)
	Ack(upTo uint64) error
	Appended() <-chan struct{}
	Stats() spool.Stats
	Append(ctx context.Context, entries []spool.Entry, cps []spool.Checkpoint) (uint64, error)
	Checkpoint(source string) ([]byte, error)
}

// CheckpointPrefix starts the spool checkpoint of each output's mark.
const CheckpointPrefix = "output:"

// Gate shares one spool between consumers, each with its own mark; the
// spool is acknowledged up to the lowest.
type Gate struct {
	sp  Spool
	log *slog.Logger

	mu        sync.Mutex
	consumers []*View
	acked     uint64
	wake      chan struct{}
}

// NewGate wraps sp.
func NewGate(sp Spool, log *slog.Logger) *Gate {
	if log == nil {
		log = slog.Default()
	}
	return &Gate{sp: sp, log: log, acked: sp.Stats().AckedUpTo, wake: make(chan struct{}, 1)}
}

// View is one consumer's window on the spool: its Ack moves its own mark
// and the spool's only as far as every consumer has come.
type View struct {
	g         *Gate
	name      string
	persisted bool // its mark is kept as a checkpoint
	mark      uint64
	saved     uint64
}

// Consumer adds a consumer whose mark is not kept (the uplink's sender,
// which learns where to resume from the collector's Welcome). Add every
// consumer before any of them runs.
func (g *Gate) Consumer(name string) *View {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := &View{g: g, name: name, mark: g.acked}
	g.consumers = append(g.consumers, v)
	return v
}

// Output adds a consumer whose mark is kept as the spool checkpoint
// "output:<name>", and starts it there (or at the spool's mark, whichever
// is higher).
func (g *Gate) Output(name string) (*View, error) {
	pos, err := g.sp.Checkpoint(CheckpointPrefix + name)
	if err != nil {
		return nil, fmt.Errorf("output %s: read its mark: %w", name, err)
	}
	v := g.Consumer(name)
	v.persisted = true
	if n, k := binary.Uvarint(pos); k > 0 {
		g.mu.Lock()
		v.mark = max(v.mark, n)
		v.saved = n
		g.mu.Unlock()
	}
	return v, nil
}

// Name is the consumer's name.
func (v *View) Name() string { return v.name }

// Mark is the highest sequence the consumer has acknowledged (or the
// spool had when it was added).
func (v *View) Mark() uint64 {
	v.g.mu.Lock()
	defer v.g.mu.Unlock()
	return v.mark
}

// Read reads the spool.
func (v *View) Read(cursor uint64, max, maxBytes int) ([]spool.Record, error) {
	return v.g.sp.Read(cursor, max, maxBytes)
}

// Appended is the spool's.
func (v *View) Appended() <-chan struct{} { return v.g.sp.Appended() }

// Stats are the spool's, with AckedUpTo this consumer's own mark, so a
// consumer starts after what it acknowledged.
func (v *View) Stats() spool.Stats {
	st := v.g.sp.Stats()
	st.AckedUpTo = max(st.AckedUpTo, v.Mark())
	return st
}

// Ack moves the consumer's mark to upTo and the spool's to the lowest
// mark of all.
func (v *View) Ack(upTo uint64) error {
	g := v.g
	g.mu.Lock()
	if upTo <= v.mark {
		g.mu.Unlock()
		return nil
	}
	v.mark = upTo
	low := upTo
	for _, c := range g.consumers {
		low = min(low, c.mark)
	}
	ack := low > g.acked
	if v.persisted {
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
	g.mu.Unlock()
	if !ack {
		return nil
	}
	if err := g.sp.Ack(low); err != nil {
		return err
	}
	g.mu.Lock()
	g.acked = max(g.acked, low)
	g.mu.Unlock()
	return nil
}

// Run keeps the outputs' marks as spool checkpoints, at most once per
// every, and once more when ctx ends. A checkpoint-only append waits
// while the spool is nearly full, so it is never done in an Ack's path.
func (g *Gate) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			g.save(sctx)
			cancel()
			return nil
		case <-t.C:
		}
		select {
		case <-g.wake:
			sctx, cancel := context.WithTimeout(ctx, every)
			g.save(sctx)
			cancel()
		default:
		}
	}
}

func (g *Gate) save(ctx context.Context) {
	g.mu.Lock()
	var cps []spool.Checkpoint
	var views []*View
	var marks []uint64
	for _, c := range g.consumers {
		if c.persisted && c.mark > c.saved {
			cps = append(cps, spool.Checkpoint{Source: CheckpointPrefix + c.name, Position: binary.AppendUvarint(nil, c.mark)})
			views, marks = append(views, c), append(marks, c.mark)
		}
	}
	g.mu.Unlock()
	if len(cps) == 0 {
		return
	}
	if _, err := g.sp.Append(ctx, nil, cps); err != nil {
		g.log.Debug("output marks not saved; a restart resends what was delivered since the last", "err", err)
		select {
		case g.wake <- struct{}{}:
		default:
		}
		return
	}
	g.mu.Lock()
	for i, v := range views {
		v.saved = max(v.saved, marks[i])
	}
	g.mu.Unlock()
}
