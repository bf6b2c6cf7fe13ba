package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// errOverBudget says a session could not get the bytes it needs in time.
var errOverBudget = errors.New("collector over its memory budget")

// budget bounds the bytes held across sessions for frames being read and
// payloads being decoded. A session asks before it grows a buffer; one
// that cannot get the bytes within its wait is refused as busy, so a
// crowd of sessions holding half-sent frames slows the others, never
// grows the collector.
type budget struct {
	limit int64
	mu    sync.Mutex
	used  int64
	freed chan struct{} // closed and replaced at every release
}

func newBudget(limit int) *budget { return &budget{limit: int64(limit), freed: make(chan struct{})} }

// acquire takes n bytes, waiting up to wait for other sessions to release
// some.
func (b *budget) acquire(ctx context.Context, n int, wait time.Duration) error {
	if n <= 0 {
		return nil
	}
	var timer *time.Timer
	for {
		b.mu.Lock()
		if b.used+int64(n) <= b.limit {
			b.used += int64(n)
			b.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-freed:
		case <-timer.C:
			return fmt.Errorf("%w: %d bytes not free within %s", errOverBudget, n, wait)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (b *budget) release(n int) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= int64(n)
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
