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

// limiter is a token bucket per sender IP, used one of two ways. allow
// drops a message over the limit and counts the drop per sender, and the
// counts are reported, so a drop is never silent. reserve never drops: it
// tells the reader how long to wait, and the reader stops reading from
// the sender meanwhile (pacing). A server keeps one limiter for each use,
// so a sender whose address can be forged (UDP) cannot spend the tokens of
// one that proved who it is.
type limiter struct {
	rate, burst float64

	mu        sync.Mutex // guards the rest
	senders   map[netip.Addr]*bucket
	lastPrune time.Time
}

type bucket struct {
	// tokens is below zero while readers of a paced sender wait: one
	// token owed per reader.
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
	b := l.bucket(ip, now)
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	b.dropped++
	return false
}

// reserve takes a token from ip's bucket whether or not it holds one, and
// returns how long the caller must wait before it handles the message: 0
// while the bucket has a token, else the time it takes to refill to the
// one taken. The balance goes below zero by one token per reader waiting,
// so the readers of one sender (its connections) are served in turn and
// together get no more than the rate, while every other sender has its
// own bucket and is not slowed by them. A nil limiter never waits.
func (l *limiter) reserve(ip netip.Addr, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(ip, now)
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	// Clamped, so a rate of one message in centuries cannot overflow.
	return time.Duration(min(-b.tokens/l.rate*float64(time.Second), float64(maxPaceWait)))
}

// maxPaceWait bounds one wait (about 146 years).
const maxPaceWait = time.Duration(1 << 62)

// bucket returns ip's bucket refilled to now, making it if need be; l.mu
// is held.
func (l *limiter) bucket(ip netip.Addr, now time.Time) *bucket {
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
	return b
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
