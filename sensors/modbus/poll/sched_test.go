package poll

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a scheduler clock that moves only when the test says.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock by d and fires the waits that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// waitIdle blocks until n waits are pending (the workers have nothing to
// do before the clock moves) and returns how long until the first is due.
// It fails the test after 10 s of real time.
func (c *fakeClock) waitIdle(t *testing.T, n int) time.Duration {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.waiters) >= n {
			first := c.waiters[0].at
			for _, w := range c.waiters {
				if w.at.Before(first) {
					first = w.at
				}
			}
			d := first.Sub(c.now)
			c.mu.Unlock()
			return d
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no worker waiting on the clock after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// startFake runs a poller whose buses schedule on a fake clock until the
// test ends.
func startFake(t *testing.T, cfg Config) (*Poller, *sink, *fakeClock, func()) {
	t.Helper()
	p, err := New(cfg, nil, nil)
	require.NoError(t, err)
	fc := newFakeClock()
	for _, b := range p.buses {
		b.sched = fc
	}
	s := &sink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, s) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return p, s, fc, stop
}

// runFor steps the fake clock from one due time to the next until span has
// passed: every poll due in [0, span) is made. workers is how many of the
// bus's workers wait when it is idle.
func (c *fakeClock) runFor(t *testing.T, workers int, span time.Duration) {
	t.Helper()
	var elapsed time.Duration
	for {
		d := c.waitIdle(t, workers)
		if elapsed+d >= span {
			return
		}
		c.Advance(d)
		elapsed += d
	}
}
