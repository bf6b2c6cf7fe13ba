package syslog

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// maxSenders bounds the buckets kept; beyond it (a flood of spoofed UDP
// sources) new senders share one bucket, reported as "other".
const maxSenders = 4096

// limiter is a token bucket per sender IP. Messages over the limit are
// dropped and counted per sender, and the counts are reported, so a drop
// is never silent.
type limiter struct {
	rate, burst float64

	mu        sync.Mutex // guards the rest
	senders   map[netip.Addr]*bucket
	lastPrune time.Time
}

type bucket struct {
	tokens   float64
	last     time.Time
	dropped  uint64 // since start
	reported uint64 // dropped at the last report
}

// otherSenders is the shared bucket's key.
var otherSenders = netip.Addr{}

func newLimiter(c RateLimitConfig) *limiter {
	if c.MessagesPerSecond <= 0 {
		return nil
	}
	return &limiter{rate: c.MessagesPerSecond, burst: float64(c.Burst), senders: map[netip.Addr]*bucket{}}
}

// allow takes a token from ip's bucket, or counts a drop. A nil limiter
// allows everything.
func (l *limiter) allow(ip netip.Addr, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.senders[ip]
	if b == nil {
		if len(l.senders) >= maxSenders {
			l.prune(now)
		}
		if len(l.senders) >= maxSenders {
			ip = otherSenders
			b = l.senders[ip]
		}
		if b == nil {
			b = &bucket{tokens: l.burst, last: now}
			l.senders[ip] = b
		}
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(l.burst, b.tokens+el.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	b.dropped++
	return false
}

// prune forgets senders whose bucket has refilled and whose drops were
// reported: they are as if new. At most once a second, so a flood of new
// addresses does not make every message scan the map.
func (l *limiter) prune(now time.Time) {
	if now.Sub(l.lastPrune) < time.Second {
		return
	}
	l.lastPrune = now
	for ip, b := range l.senders {
		full := b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst
		if full && b.dropped == b.reported && ip != otherSenders {
			delete(l.senders, ip)
		}
	}
}

// SenderDrops is how many messages from one sender the rate limit
// dropped. Sender is an IP address, or "other" for senders beyond the
// number tracked.
type SenderDrops struct {
	Sender  string `json:"sender"`
	Dropped uint64 `json:"dropped"`
}

func senderName(ip netip.Addr) string {
	if ip == otherSenders {
		return "other"
	}
	return ip.String()
}

// top returns the n senders with most drops since start, and the total.
func (l *limiter) top(n int) (uint64, []SenderDrops) {
	if l == nil {
		return 0, nil
	}
	l.mu.Lock()
	var total uint64
	var out []SenderDrops
	for ip, b := range l.senders {
		total += b.dropped
		if b.dropped > 0 {
			out = append(out, SenderDrops{Sender: senderName(ip), Dropped: b.dropped})
		}
	}
	l.mu.Unlock()
	return total, topN(out, n)
}

// report returns the drops since the last report, busiest first, at most
// n senders, and the total over all of them.
func (l *limiter) report(n int) (uint64, int, []SenderDrops) {
	if l == nil {
		return 0, 0, nil
	}
	l.mu.Lock()
	var total uint64
	var out []SenderDrops
	for ip, b := range l.senders {
		if d := b.dropped - b.reported; d > 0 {
			total += d
			out = append(out, SenderDrops{Sender: senderName(ip), Dropped: d})
			b.reported = b.dropped
		}
	}
	l.mu.Unlock()
	senders := len(out)
	return total, senders, topN(out, n)
}

func topN(s []SenderDrops, n int) []SenderDrops {
	slices.SortFunc(s, func(a, b SenderDrops) int {
		return cmp.Or(cmp.Compare(b.Dropped, a.Dropped), cmp.Compare(a.Sender, b.Sender))
	})
	return s[:min(n, len(s))]
}
