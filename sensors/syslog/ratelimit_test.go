package syslog

import (
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
