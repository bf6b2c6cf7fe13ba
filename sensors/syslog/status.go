package syslog

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weirgw/weir/event"
)

// listenerStats are one listener's counters, updated by its goroutines and
// read by Status from any goroutine.
type listenerStats struct {
	addr                                      atomic.Value // string: configured, then bound address
	received, parseErrors, truncated, limited atomic.Uint64
	bytes                                     atomic.Uint64
	connsOpen                                 atomic.Int64
	connsTotal, connsRefused, handshakeErrors atomic.Uint64
	connsEvicted                              atomic.Uint64
	socketDrops                               atomic.Uint64 // UDP: the kernel's SO_RXQ_OVFL count
	paced, pacedNanos                         atomic.Uint64 // TLS: authenticated messages that waited, and how long
	readErrors                                atomic.Uint64
	lastWarn                                  atomic.Int64 // ns, see warnAllowed
}

// warnInterval spaces the warnings a listener logs about its peers (failed
// handshakes), so a scanner cannot flood the board's log; the counters
// hold the full story.
const warnInterval = 10 * time.Second

// warnAllowed reports whether a warning may be logged now.
func (st *listenerStats) warnAllowed() bool {
	now := time.Now().UnixNano()
	last := st.lastWarn.Load()
	return now-last >= int64(warnInterval) && st.lastWarn.CompareAndSwap(last, now)
}

// Status is a snapshot for the admin socket (`weir status`).
type Status struct {
	Name      string           `json:"name"`
	Listeners []ListenerStatus `json:"listeners"`
	// Emitted counts records the sink took; EmitErrors its failed calls
	// (retried); Lost records the sink refused at shutdown.
	Emitted    uint64 `json:"emitted"`
	EmitErrors uint64 `json:"emit_errors"`
	Lost       uint64 `json:"lost"`
	// Queued is records parsed and waiting for the sink.
	Queued    int64  `json:"queued"`
	LastError string `json:"last_error,omitempty"`
	// RateLimited is messages dropped by the per-sender rate limit since
	// start (of senders still tracked), TopRateLimited the senders with
	// most such drops.
	RateLimited    uint64        `json:"rate_limited"`
	TopRateLimited []SenderDrops `json:"top_rate_limited,omitempty"`
	// ConnectionsOpen is TCP and TLS connections open now; each of the
	// two listeners holds at most MaxConnections.
	ConnectionsOpen int64 `json:"connections_open"`
	MaxConnections  int   `json:"max_connections"`
}

// ListenerStatus is one listener's counters since start.
type ListenerStatus struct {
	Transport string `json:"transport"`
	Address   string `json:"address"`
	// Received counts messages (records made, parse errors included);
	// RateLimited the messages dropped by the rate limit, not in Received.
	Received    uint64 `json:"received"`
	ParseErrors uint64 `json:"parse_errors"`
	Truncated   uint64 `json:"truncated"`
	RateLimited uint64 `json:"rate_limited"`
	Bytes       uint64 `json:"bytes"`
	ReadErrors  uint64 `json:"read_errors"`
	// Streams only: connections open now (TLS: handshake done), accepted
	// since start (TLS: to a handshake), refused (max_connections,
	// max_connections_per_address, tls.max_handshakes), closed silent to
	// make room for a newcomer, and failed TLS handshakes; TLS handshakes
	// in progress now.
	ConnectionsOpen    int64  `json:"connections_open,omitempty"`
	ConnectionsTotal   uint64 `json:"connections_total,omitempty"`
	ConnectionsRefused uint64 `json:"connections_refused,omitempty"`
	ConnectionsEvicted uint64 `json:"connections_evicted,omitempty"`
	HandshakeErrors    uint64 `json:"handshake_errors,omitempty"`
	Handshakes         int    `json:"handshakes,omitempty"`
	// UDP only: datagrams the kernel dropped because the socket buffer was
	// full (SO_RXQ_OVFL; Linux).
	SocketDrops uint64 `json:"socket_drops,omitempty"`
	// TLS only: messages from senders with a verified client certificate
	// that were over the rate limit, so reading waited for a token
	// instead of dropping them (kept, not in RateLimited), and the total
	// of those waits in seconds.
	Paced        uint64  `json:"paced,omitempty"`
	PacedSeconds float64 `json:"paced_seconds,omitempty"`
}

// Status returns a snapshot; it is safe to call at any time.
func (s *Server) Status() Status {
	st := Status{
		Name:            s.cfg.Name,
		Emitted:         s.emitted.Load(),
		EmitErrors:      s.emitErrs.Load(),
		Lost:            s.lost.Load(),
		Queued:          s.queued.Load(),
		ConnectionsOpen: s.open.Load(),
		MaxConnections:  s.cfg.MaxConnections,
	}
	s.mu.Lock()
	st.LastError = s.lastError
	s.mu.Unlock()
	st.RateLimited, st.TopRateLimited = s.lim.top(topSenders)
	for i, name := range transportNames {
		addr, _ := s.stats[i].addr.Load().(string)
		if addr == "" {
			continue
		}
		c := &s.stats[i]
		st.Listeners = append(st.Listeners, ListenerStatus{
			Transport: name, Address: addr,
			Received: c.received.Load(), ParseErrors: c.parseErrors.Load(), Truncated: c.truncated.Load(),
			RateLimited: c.limited.Load(), Bytes: c.bytes.Load(), ReadErrors: c.readErrors.Load(),
			ConnectionsOpen: c.connsOpen.Load(), ConnectionsTotal: c.connsTotal.Load(),
			ConnectionsRefused: c.connsRefused.Load(), ConnectionsEvicted: c.connsEvicted.Load(),
			HandshakeErrors: c.handshakeErrors.Load(), SocketDrops: c.socketDrops.Load(),
			Paced: c.paced.Load(), PacedSeconds: time.Duration(c.pacedNanos.Load()).Seconds(),
		})
		if i == iTLS {
			st.Listeners[len(st.Listeners)-1].Handshakes = s.handshakes.taken()
		}
	}
	return st
}

// dropCounts are the totals at the last drop report.
type dropCounts struct {
	socketDrops, refused, evicted uint64
}

// dropReport makes the record that tells what was dropped since the last
// one: messages over the rate limit (per sender, busiest first), UDP
// datagrams the socket buffer overflowed with, connections refused and
// silent ones closed to make room. ok is false when nothing was.
//
// Fields: dropped_rate_limit, senders, dropped.<ip> (top 10),
// dropped_socket, refused_connections, evicted_connections.
func (s *Server) dropReport(last *dropCounts) (event.Event, bool) {
	limited, senders, top := s.lim.report(topSenders)
	sock := s.stats[iUDP].socketDrops.Load()
	refused := s.stats[iTCP].connsRefused.Load() + s.stats[iTLS].connsRefused.Load()
	evicted := s.stats[iTCP].connsEvicted.Load() + s.stats[iTLS].connsEvicted.Load()
	dSock, dRefused, dEvicted := sock-last.socketDrops, refused-last.refused, evicted-last.evicted
	last.socketDrops, last.refused, last.evicted = sock, refused, evicted
	if limited == 0 && dSock == 0 && dRefused == 0 && dEvicted == 0 {
		return event.Event{}, false
	}
	var parts []string
	fs := make([]event.Field, 0, 6+len(top))
	if limited > 0 {
		parts = append(parts, fmt.Sprintf("%d messages from %d senders over the rate limit", limited, senders))
		fs = append(fs, event.Uint("dropped_rate_limit", limited), event.Uint("senders", uint64(senders)))
		for _, d := range top {
			fs = append(fs, event.Uint("dropped."+d.Sender, d.Dropped))
		}
	}
	if dSock > 0 {
		parts = append(parts, fmt.Sprintf("%d UDP datagrams the socket buffer overflowed with", dSock))
		fs = append(fs, event.Uint("dropped_socket", dSock))
	}
	if dRefused > 0 {
		parts = append(parts, fmt.Sprintf("%d connections refused at a connection limit", dRefused))
		fs = append(fs, event.Uint("refused_connections", dRefused))
	}
	if dEvicted > 0 {
		parts = append(parts, fmt.Sprintf("%d silent connections closed to make room", dEvicted))
		fs = append(fs, event.Uint("evicted_connections", dEvicted))
	}
	fs = append(fs, event.Str(keyFormat, "drop_report"), event.Uint("report", s.reportSeq.Add(1)))
	return event.Event{
		Source:   s.cfg.Name,
		Kind:     event.KindLog,
		Severity: event.SevWarning,
		Priority: event.PriorityNormal,
		Message:  "syslog: dropped " + strings.Join(parts, "; "),
		Fields:   fs,
	}, true
}
