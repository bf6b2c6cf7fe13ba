package collector

import "github.com/prometheus/client_golang/prometheus"

// metrics are the server's counters. Gateway labels carry only ids a
// verified certificate named, so their number is bounded by what the CA
// issued.
type metrics struct {
	handshakesRefused *prometheus.CounterVec // transport, reason
	sessionsRefused   *prometheus.CounterVec // reason
	sessionsEnded     *prometheus.CounterVec // reason
	batchesRefused    *prometheus.CounterVec // gateway, reason
	records           *prometheus.CounterVec // gateway
	duplicates        *prometheus.CounterVec // gateway
	undecodable       *prometheus.CounterVec // gateway
	rangesForgotten   *prometheus.CounterVec // gateway
	floorsRefused     *prometheus.CounterVec // gateway, verdict
	panics            prometheus.Counter
	all               []prometheus.Collector
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		handshakesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_collector_handshakes_refused_total",
			Help: "Connections refused before or during authentication, by transport and reason (handshake budgets, TLS errors, no or revoked gateway identity)."},
			[]string{"transport", "reason"}),
		sessionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_collector_sessions_refused_total",
			Help: "Authenticated sessions refused, by reason (session budgets, bad hello, version, identity, revoked)."}, []string{"reason"}),
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_collector_sessions_ended_total",
			Help: "Sessions the collector ended, by reason (cert_expired, max_age, revoked, busy, panic, bad_message)."}, []string{"reason"}),
		batchesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_collector_batches_refused_total",
			Help: "Batches refused unwritten with an Error frame, by gateway and broken bound."}, []string{"gateway", "reason"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_collector_records_written_total",
			Help: "Records written to the sink, by gateway."}, []string{"gateway"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_collector_duplicates_total",
			Help: "Records acked without writing because the sink held them already (dedupe drops), by gateway."}, []string{"gateway"}),
		undecodable: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_collector_undecodable_records_total",
			Help: "Records written raw because they did not decode, by gateway."}, []string{"gateway"}),
		rangesForgotten: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_collector_dedupe_ranges_forgotten_total",
			Help: "Dedupe ranges forgotten because a gateway's state passed its cap, by gateway."}, []string{"gateway"}),
		floorsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_collector_floors_refused_total",
			Help: "Resume floors a Hello declared beyond what the collector holds from the gateway, by gateway and verdict."},
			[]string{"gateway", "verdict"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_collector_session_panics_total",
			Help: "Sessions closed after a panic (recovered; the frame is kept in the quarantine directory)."}),
	}
	m.all = []prometheus.Collector{m.handshakesRefused, m.sessionsRefused, m.sessionsEnded, m.batchesRefused, m.records,
		m.duplicates, m.undecodable, m.rangesForgotten, m.floorsRefused, m.panics,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weir_collector_handshakes", Help: "TLS handshakes in progress."},
			func() float64 { h, _ := s.gate.counts(); return float64(h) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weir_collector_sessions", Help: "Authenticated sessions open."},
			func() float64 { _, n := s.gate.counts(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weir_collector_budget_bytes",
			Help: "Bytes of the memory budget held by sessions (frames being read, payloads being decoded)."},
			func() float64 { return float64(s.budget.inUse()) }),
	}
	return m
}
