package syslog

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLimiterTokenBucket(t *testing.T) {
	l := newLimiter(RateLimitConfig{MessagesPerSecond: 10, Burst: 3})
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	t0 := time.Unix(1000, 0)
	allowed := func(ip netip.Addr, at time.Time, n int) int {
		k := 0
		for range n {
			if l.allow(ip, at) {
				k++
			}
		}
		return k
	}
	assert.Equal(t, 3, allowed(a, t0, 10), "the burst")
	assert.Equal(t, 3, allowed(b, t0, 3), "senders have their own buckets")
	assert.Equal(t, 1, allowed(a, t0.Add(100*time.Millisecond), 5), "one token per 100 ms")
	assert.Equal(t, 3, allowed(a, t0.Add(time.Hour), 5), "refill stops at the burst")

	total, top := l.top(10)
	assert.Equal(t, uint64(7+4+2), total)
	assert.Equal(t, []SenderDrops{{"192.0.2.1", 13}}, top)
	n, senders, rep := l.report(10)
	assert.Equal(t, uint64(13), n)
	assert.Equal(t, 1, senders)
	assert.Equal(t, []SenderDrops{{"192.0.2.1", 13}}, rep)
	n, _, _ = l.report(10)
	assert.Zero(t, n, "a report counts only what is new")

	assert.True(t, (*limiter)(nil).allow(a, t0), "no limiter allows all")
	assert.Nil(t, newLimiter(RateLimitConfig{}))
}

// TestLimiterBounded: a flood of new source addresses does not grow the
// map beyond maxSenders; the excess shares one bucket, reported as other.
func TestLimiterBounded(t *testing.T) {
	l := newLimiter(RateLimitConfig{MessagesPerSecond: 1, Burst: 1})
	t0 := time.Unix(1000, 0)
	for i := range maxSenders + 100 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.allow(ip, t0)
		l.allow(ip, t0) // over the burst: a drop, so the bucket is not pruned
	}
	assert.LessOrEqual(t, len(l.senders), maxSenders+1)
	_, top := l.top(1)
	assert.Equal(t, "other", top[0].Sender)
}

// TestLimiterReserve: pacing takes tokens without dropping; beyond the
// burst each message waits for the bucket to refill to it, readers of one
// sender queue one behind the other, and other senders are not slowed.
func TestLimiterReserve(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	cases := []struct {
		name string
		ip   netip.Addr
		at   time.Duration // after t0
		want time.Duration
	}{
		{"burst 1", a, 0, 0},
		{"burst 2", a, 0, 0},
		{"burst 3", a, 0, 0},
		{"over the burst: one token's refill", a, 0, 100 * ms},
		{"a second reader of a queues behind the first", a, 0, 200 * ms},
		{"another sender has its own bucket", b, 0, 0},
		{"200 ms later a's debt is paid, the next waits one token", a, 200 * ms, 100 * ms},
		{"half a token refilled: half the wait", a, 350 * ms, 50 * ms},
		{"an hour later: the burst again, 1 of 3", a, time.Hour, 0},
		{"2 of 3", a, time.Hour, 0},
		{"3 of 3", a, time.Hour, 0},
		{"the bucket refilled to the burst, not more", a, time.Hour, 100 * ms},
	}
	l := newLimiter(RateLimitConfig{MessagesPerSecond: 10, Burst: 3})
	for i, c := range cases {
		got := l.reserve(c.ip, t0.Add(c.at))
		assert.InDelta(t, c.want, got, float64(time.Microsecond), "%d %s", i, c.name)
	}
	total, _ := l.top(10)
	assert.Zero(t, total, "pacing drops nothing")
	n, _, _ := l.report(10)
	assert.Zero(t, n, "nor reports drops")

	assert.Zero(t, (*limiter)(nil).reserve(a, t0), "no limiter, no wait")
	slow := newLimiter(RateLimitConfig{MessagesPerSecond: 1e-30, Burst: 1})
	slow.reserve(a, t0)
	assert.Equal(t, maxPaceWait, slow.reserve(a, t0), "an absurdly low rate does not overflow the wait")
}

// TestPacerWaitEndsAtShutdown: a reader waiting for a token returns when
// the run ends, so shutdown is not held up by a paced sender, and the
// wait is counted.
func TestPacerWaitEndsAtShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st := &listenerStats{}
	p := &pacer{lim: newLimiter(RateLimitConfig{MessagesPerSecond: 0.001, Burst: 1}), ctx: ctx, st: st,
		log: slog.New(slog.DiscardHandler)}
	ip := netip.MustParseAddr("192.0.2.1")
	p.wait(ip) // the burst
	assert.Zero(t, st.paced.Load())
	done := make(chan struct{})
	go func() { p.wait(ip); close(done) }() // 1000 s for the next token
	select {
	case <-done:
		t.Fatal("the second message did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end at shutdown")
	}
	assert.Equal(t, uint64(1), st.paced.Load())
	assert.InDelta(t, float64(1000*time.Second), float64(st.pacedNanos.Load()), float64(time.Second))
}
