package sender

import (
	"sync"
	"time"

	"github.com/weirgw/weir/uplink"
)

// EndpointStatus is one endpoint's link telemetry, as `weir link`, the
// metrics and the telemetry record show it. Rates are over the last minute;
// loss over the last 1 and 15 minutes (-1: unknown).
type EndpointStatus struct {
	Endpoint    string    `json:"endpoint"` // transport://address
	Transport   string    `json:"transport"`
	Address     string    `json:"address"`
	State       State     `json:"state"`
	Active      bool      `json:"active"` // carrying batches now
	ConnectedAt time.Time `json:"connected_at,omitzero"`
	Negotiated  string    `json:"negotiated,omitempty"` // protocol and cipher suite
	PeerExpiry  time.Time `json:"peer_cert_expiry,omitzero"`

	SRTTMillis       float64 `json:"srtt_ms"`
	RTTVarMillis     float64 `json:"rttvar_ms"`
	RTTSource        string  `json:"rtt_source,omitempty"` // tcp_info, rudp, ping
	AckLatencyMillis float64 `json:"ack_latency_ms"`       // Data→Ack, smoothed; includes the collector's fsync
	// The session's transport handshake (TCP and TLS, or DTLS), and from
	// its end to the session's first ack (Hello and Welcome, the first
	// batch and the collector's fsync): what a reconnect costs.
	HandshakeMillis float64 `json:"handshake_ms,omitempty"`
	FirstAckMillis  float64 `json:"first_ack_ms,omitempty"`

	SegmentsSent          uint64  `json:"segments_sent"`
	SegmentsRetransmitted uint64  `json:"segments_retransmitted"`
	Loss1m                float64 `json:"loss_1m"`
	Loss15m               float64 `json:"loss_15m"`
	LossSource            string  `json:"loss_source"` // tcp_info, rudp, unknown

	RecordsAcked     uint64  `json:"records_acked"`
	BytesAcked       uint64  `json:"bytes_acked"`      // record bytes, before compression
	WireBytesAcked   uint64  `json:"wire_bytes_acked"` // payload bytes as sent
	RecordsPerSecond float64 `json:"records_per_second"`
	BytesPerSecond   float64 `json:"bytes_per_second"`
	GoodputBitsPS    float64 `json:"goodput_bps"` // wire payload bits acked per second
	BatchesInFlight  int     `json:"batches_in_flight"`
	Window           int     `json:"window"` // batches the session may have in flight now (windowSizer)

	Handshakes        uint64                   `json:"handshakes"`
	HandshakeFailures uint64                   `json:"handshake_failures"`
	FailureReasons    map[uplink.Reason]uint64 `json:"failure_reasons,omitempty"`
	Reconnects        uint64                   `json:"reconnects"`
	LastError         string                   `json:"last_error,omitempty"`
	LastReason        uplink.Reason            `json:"last_reason,omitempty"`
	LastErrorAt       time.Time                `json:"last_error_at,omitzero"`
	OutageSeconds     float64                  `json:"outage_seconds"`        // total time down since start
	OutageSince       time.Time                `json:"outage_since,omitzero"` // down now, since
}

// sample is one point of an endpoint's counters, for windowed rates.
type sample struct {
	at                   time.Time
	sent, retrans        uint64
	records, bytes, wire uint64
	segmentsKnown        bool
}

// endpointStats accumulates one endpoint's figures across sessions.
type endpointStats struct {
	mu  sync.Mutex
	st  EndpointStatus
	now func() time.Time

	base    SegmentStats // counters of sessions that ended
	cur     SegmentStats // the live session's
	known   bool         // the transport reports segments
	ring    []sample     // one every sampleEvery, 15 minutes' worth
	outAcc  time.Duration
	started time.Time

	// The batch limits of the endpoint's last Welcome (zero: none since
	// the last attempt), for the batch sent with the next Hello.
	welcomeRecs, welcomeBytes int

	// When the last transport handshake ended; zero once its session's
	// first ack was timed.
	handshakeEnd time.Time
}

// handshook records a transport handshake that took d and ended at end.
func (s *endpointStats) handshook(d time.Duration, end time.Time) {
	s.mu.Lock()
	s.st.HandshakeMillis, s.st.FirstAckMillis, s.handshakeEnd = ms(d), 0, end
	s.mu.Unlock()
}

func (s *endpointStats) setWelcomeLimits(recs, bytes int) {
	s.mu.Lock()
	s.welcomeRecs, s.welcomeBytes = recs, bytes
	s.mu.Unlock()
}

// takeWelcomeLimits returns the last Welcome's limits and forgets them.
func (s *endpointStats) takeWelcomeLimits() (recs, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, bytes = s.welcomeRecs, s.welcomeBytes
	s.welcomeRecs, s.welcomeBytes = 0, 0
	return recs, bytes
}

const sampleEvery = 5 * time.Second

func newEndpointStats(ep uplink.Endpoint, now func() time.Time) *endpointStats {
	s := &endpointStats{now: now, started: now()}
	s.st = EndpointStatus{Endpoint: ep.Name(), Transport: string(ep.Proto()), Address: ep.Address, State: StateStandby,
		Loss1m: -1, Loss15m: -1, LossSource: "unknown", FailureReasons: map[uplink.Reason]uint64{}}
	return s
}

func (s *endpointStats) update(f func(*EndpointStatus)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

// connected records a completed handshake and Welcome.
func (s *endpointStats) connected(negotiated string, peerExpiry time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.st.Handshakes > 0 {
		s.st.Reconnects++
	}
	s.st.Handshakes++
	s.st.State, s.st.ConnectedAt, s.st.Negotiated, s.st.PeerExpiry = StateConnected, now, negotiated, peerExpiry
	s.st.LastError, s.st.LastReason = "", ""
	if !s.st.OutageSince.IsZero() {
		s.outAcc += now.Sub(s.st.OutageSince)
		s.st.OutageSince = time.Time{}
	}
	s.cur = SegmentStats{}
}

// failed records a session that could not start (handshake) or ended.
func (s *endpointStats) failed(err error, handshake bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	r := uplink.Classify(err)
	if handshake {
		s.st.HandshakeFailures++
		s.st.FailureReasons[r]++
	}
	s.st.State, s.st.Active, s.st.BatchesInFlight, s.st.Window = StateBackoff, false, 0, 0
	s.st.LastError, s.st.LastReason, s.st.LastErrorAt = err.Error(), r, now
	if s.st.OutageSince.IsZero() {
		s.st.OutageSince = now
	}
	s.base.Sent += s.cur.Sent
	s.base.Retransmitted += s.cur.Retransmitted
	s.cur = SegmentStats{}
}

// segments takes the live session's transport counters.
func (s *endpointStats) segments(seg SegmentStats, ok bool, pingRTT, pingVar time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.known = true
		s.cur = seg
		s.st.LossSource = seg.Source
	}
	switch {
	case ok && seg.SRTT > 0:
		s.st.SRTTMillis, s.st.RTTVarMillis, s.st.RTTSource = ms(seg.SRTT), ms(seg.RTTVar), seg.Source
	case pingRTT > 0:
		s.st.SRTTMillis, s.st.RTTVarMillis, s.st.RTTSource = ms(pingRTT), ms(pingVar), "ping"
	}
	s.sampleLocked(false)
}

// acked counts records the collector holds, acked at at.
func (s *endpointStats) acked(records, bytes, wire uint64, latency time.Duration, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.handshakeEnd.IsZero() {
		s.st.FirstAckMillis, s.handshakeEnd = ms(at.Sub(s.handshakeEnd)), time.Time{}
	}
	s.st.RecordsAcked += records
	s.st.BytesAcked += bytes
	s.st.WireBytesAcked += wire
	if latency > 0 {
		if s.st.AckLatencyMillis == 0 {
			s.st.AckLatencyMillis = ms(latency)
		} else {
			s.st.AckLatencyMillis += (ms(latency) - s.st.AckLatencyMillis) / 8
		}
	}
	s.sampleLocked(false)
}

// sampleLocked adds a point to the ring at most every sampleEvery (or when
// forced by a snapshot, replacing the newest point if it is recent).
func (s *endpointStats) sampleLocked(force bool) {
	now := s.now()
	p := sample{at: now, sent: s.base.Sent + s.cur.Sent, retrans: s.base.Retransmitted + s.cur.Retransmitted,
		records: s.st.RecordsAcked, bytes: s.st.BytesAcked, wire: s.st.WireBytesAcked, segmentsKnown: s.known}
	if n := len(s.ring); n > 0 && now.Sub(s.ring[n-1].at) < sampleEvery {
		if !force {
			return
		}
		if n > 1 && now.Sub(s.ring[n-2].at) < sampleEvery {
			s.ring[n-1] = p
			return
		}
	}
	s.ring = append(s.ring, p)
	if cut := len(s.ring) - int(15*time.Minute/sampleEvery) - 2; cut > 0 {
		s.ring = append(s.ring[:0], s.ring[cut:]...)
	}
}

// oldestWithin returns the oldest sample at most d old (or the oldest).
func (s *endpointStats) oldestWithin(d time.Duration, now time.Time) sample {
	for _, p := range s.ring {
		if now.Sub(p.at) <= d+sampleEvery/2 {
			return p
		}
	}
	return s.ring[len(s.ring)-1]
}

// snapshot computes the windowed figures.
func (s *endpointStats) snapshot() EndpointStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sampleLocked(true)
	st := s.st
	st.FailureReasons = make(map[uplink.Reason]uint64, len(s.st.FailureReasons))
	for k, v := range s.st.FailureReasons {
		st.FailureReasons[k] = v
	}
	now := s.now()
	last := s.ring[len(s.ring)-1]
	st.SegmentsSent, st.SegmentsRetransmitted = last.sent, last.retrans
	st.OutageSeconds = s.outAcc.Seconds()
	if !st.OutageSince.IsZero() {
		st.OutageSeconds += now.Sub(st.OutageSince).Seconds()
	}
	loss := func(d time.Duration) float64 {
		if !s.known {
			return -1
		}
		p := s.oldestWithin(d, now)
		if last.sent <= p.sent {
			return 0
		}
		return float64(last.retrans-p.retrans) / float64(last.sent-p.sent)
	}
	st.Loss1m, st.Loss15m = loss(time.Minute), loss(15*time.Minute)
	p := s.oldestWithin(time.Minute, now)
	if dt := last.at.Sub(p.at).Seconds(); dt > 0 {
		st.RecordsPerSecond = float64(last.records-p.records) / dt
		st.BytesPerSecond = float64(last.bytes-p.bytes) / dt
		st.GoodputBitsPS = 8 * float64(last.wire-p.wire) / dt
	}
	return st
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rttEstimator is RFC 6298's smoothed RTT and variance, fed by Ping/Pong.
type rttEstimator struct {
	srtt, rttvar time.Duration
}

func (e *rttEstimator) add(r time.Duration) {
	if e.srtt == 0 {
		e.srtt, e.rttvar = r, r/2
		return
	}
	d := e.srtt - r
	if d < 0 {
		d = -d
	}
	e.rttvar = (3*e.rttvar + d) / 4
	e.srtt = (7*e.srtt + r) / 8
}
