package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/spool"
)

type metrics struct {
	reg      *prometheus.Registry
	appended *prometheus.CounterVec
	seals    prometheus.Counter
}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.appended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_records_appended_total", Help: "Records stamped and stored in the spool, by source.",
	}, []string{"source"})
	m.seals = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "weir_seals_total", Help: "Seals (signed tree heads of the Merkle log) spooled since start.",
	})
	uplinkGauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.appended,
		m.seals,
		spoolCollector{g},
		linkCollector{g},
		sensorsCollector{g},
		inputsCollector{g},
		rulesCollector{g},
		processorsCollector{g},
		uplinkGauge("weir_uplink_acked_seq", "Highest sequence the collector acknowledged.",
			func() float64 { return float64(g.now().sender.Status().LastAckSeq) }),
		uplinkGauge("weir_uplink_connected", "1 while a collector session is up.",
			func() float64 {
				if g.now().sender.Status().State == "connected" {
					return 1
				}
				return 0
			}),
	)
	return m
}

// spoolCollector reads the spool's figures once per scrape.
type spoolCollector struct{ g *Gateway }

var (
	descSpoolRecords  = prometheus.NewDesc("weir_spool_backlog_records", "Unacknowledged records in the spool, by class.", []string{"class"}, nil)
	descSpoolBytes    = prometheus.NewDesc("weir_spool_backlog_bytes", "Bytes of unacknowledged record data, by class.", []string{"class"}, nil)
	descSpoolEvicted  = prometheus.NewDesc("weir_spool_evicted_records_total", "Unacknowledged records evicted to make room for critical ones, by class.", []string{"class"}, nil)
	descSpoolExpired  = prometheus.NewDesc("weir_spool_expired_records_total", "Unacknowledged records dropped for exceeding spool.max_age, by class.", []string{"class"}, nil)
	descSpoolRefused  = prometheus.NewDesc("weir_spool_refused_records_total", "Records whose append had to wait for room (backpressure), by class.", []string{"class"}, nil)
	descSpoolUsed     = prometheus.NewDesc("weir_spool_used_bytes", "Backlog counted against spool.max_bytes.", nil, nil)
	descSpoolMax      = prometheus.NewDesc("weir_spool_max_bytes", "spool.max_bytes.", nil, nil)
	descSpoolOldest   = prometheus.NewDesc("weir_spool_oldest_unacked_seconds", "Age of the oldest unacknowledged record.", nil, nil)
	descSpoolAppended = prometheus.NewDesc("weir_spool_appended_records_total", "Records appended since start.", nil, nil)
	descSpoolCommits  = prometheus.NewDesc("weir_spool_commits_total", "Fsynced spool transactions since start.", nil, nil)
	descSpoolDisk     = prometheus.NewDesc("weir_spool_disk_bytes", "Space the spool's files take on disk.", nil, nil)
	descSpoolFree     = prometheus.NewDesc("weir_spool_disk_free_bytes", "Free space on the spool's file system (-1: unknown).", nil, nil)
	descSpoolHeld     = prometheus.NewDesc("weir_spool_intake_held", "1 while bulk and normal records wait for disk space.", nil, nil)
	descSpoolQuar     = prometheus.NewDesc("weir_spool_quarantined_records_total", "Damaged records read from the spool and set aside since start.", nil, nil)
)

func (spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSpoolRecords, descSpoolBytes, descSpoolEvicted, descSpoolExpired, descSpoolRefused,
		descSpoolUsed, descSpoolMax, descSpoolOldest, descSpoolAppended, descSpoolCommits, descSpoolDisk,
		descSpoolFree, descSpoolHeld, descSpoolQuar} {
		ch <- d
	}
}

func (c spoolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.spool.Stats()
	for cl, cs := range st.Classes {
		name := spool.Class(cl).String()
		ch <- prometheus.MustNewConstMetric(descSpoolRecords, prometheus.GaugeValue, float64(cs.Records), name)
		ch <- prometheus.MustNewConstMetric(descSpoolBytes, prometheus.GaugeValue, float64(cs.Bytes), name)
		ch <- prometheus.MustNewConstMetric(descSpoolEvicted, prometheus.CounterValue, float64(cs.Evicted), name)
		ch <- prometheus.MustNewConstMetric(descSpoolExpired, prometheus.CounterValue, float64(cs.Expired), name)
		ch <- prometheus.MustNewConstMetric(descSpoolRefused, prometheus.CounterValue, float64(cs.Refused), name)
	}
	var oldest float64
	if !st.Oldest.IsZero() {
		oldest = time.Since(st.Oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(descSpoolUsed, prometheus.GaugeValue, float64(st.Used))
	ch <- prometheus.MustNewConstMetric(descSpoolMax, prometheus.GaugeValue, float64(st.MaxBytes))
	ch <- prometheus.MustNewConstMetric(descSpoolOldest, prometheus.GaugeValue, oldest)
	ch <- prometheus.MustNewConstMetric(descSpoolAppended, prometheus.CounterValue, float64(st.Appended))
	ch <- prometheus.MustNewConstMetric(descSpoolCommits, prometheus.CounterValue, float64(st.Commits))
	ch <- prometheus.MustNewConstMetric(descSpoolDisk, prometheus.GaugeValue, float64(st.DiskBytes))
	ch <- prometheus.MustNewConstMetric(descSpoolFree, prometheus.GaugeValue, float64(st.Disk.Free))
	held := 0.0
	if st.Disk.Held != "" {
		held = 1
	}
	ch <- prometheus.MustNewConstMetric(descSpoolHeld, prometheus.GaugeValue, held)
	ch <- prometheus.MustNewConstMetric(descSpoolQuar, prometheus.CounterValue, float64(st.Quarantined))
}

// inputsCollector reads the optional inputs' counters once per scrape;
// an input that is off has no series.
type inputsCollector struct{ g *Gateway }

var (
	descSyslogMessages    = prometheus.NewDesc("weir_syslog_messages_total", "Syslog messages received (parse errors included), by transport.", []string{"transport"}, nil)
	descSyslogParseErrors = prometheus.NewDesc("weir_syslog_parse_errors_total", "Syslog messages kept raw because they did not parse, by transport.", []string{"transport"}, nil)
	descSyslogDropped     = prometheus.NewDesc("weir_syslog_dropped_total", "Syslog messages or connections dropped, by reason (rate_limit, socket_buffer, connection_refused, connection_evicted: silent ones closed for a newcomer, lost at shutdown).", []string{"reason"}, nil)
	descSyslogConnections = prometheus.NewDesc("weir_syslog_connections_open", "TCP and TLS syslog connections open.", nil, nil)
	descAuditEvents       = prometheus.NewDesc("weir_audit_events_total", "Audit events emitted since start.", nil, nil)
	descAuditParseErrors  = prometheus.NewDesc("weir_audit_parse_errors_total", "Audit log lines that did not parse (emitted flagged).", nil, nil)
	descAuditErrors       = prometheus.NewDesc("weir_audit_errors_total", "Audit log read or emit failures (retried).", nil, nil)
	descAuditKernelLost   = prometheus.NewDesc("weir_audit_kernel_lost_total", "The kernel's audit lost counter, since boot: records it dropped (backlog full, rate limit, no reader); source netlink.", nil, nil)
	descAuditBacklog      = prometheus.NewDesc("weir_audit_kernel_backlog", "Audit records the kernel holds for its reader; source netlink.", nil, nil)
	descAuditDropped      = prometheus.NewDesc("weir_audit_dropped_total", "Audit messages dropped on the way from the kernel, by reason (queue_full: the spool held back; socket_overflow: multicast socket buffer); source netlink.", []string{"reason"}, nil)
	descIntegrityChanges  = prometheus.NewDesc("weir_integrity_changes_total", "File integrity change records committed since start.", nil, nil)
	descIntegrityFiles    = prometheus.NewDesc("weir_integrity_baseline_paths", "Paths in the file integrity baseline.", nil, nil)
	descIntegrityErrors   = prometheus.NewDesc("weir_integrity_errors_total", "File integrity scan, watch or commit failures (retried).", nil, nil)
)

func (inputsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSyslogMessages, descSyslogParseErrors, descSyslogDropped, descSyslogConnections,
		descAuditEvents, descAuditParseErrors, descAuditErrors, descAuditKernelLost, descAuditBacklog, descAuditDropped, descIntegrityChanges, descIntegrityFiles, descIntegrityErrors} {
		ch <- d
	}
}

func (c inputsCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	p := c.g.now()
	if s := p.syslog; s != nil {
		st := s.Status()
		var socket, refused, evicted uint64
		for _, l := range st.Listeners {
			counter(descSyslogMessages, l.Received, l.Transport)
			counter(descSyslogParseErrors, l.ParseErrors, l.Transport)
			socket += l.SocketDrops
			refused += l.ConnectionsRefused
			evicted += l.ConnectionsEvicted
		}
		counter(descSyslogDropped, st.RateLimited, "rate_limit")
		counter(descSyslogDropped, socket, "socket_buffer")
		counter(descSyslogDropped, refused, "connection_refused")
		counter(descSyslogDropped, evicted, "connection_evicted")
		counter(descSyslogDropped, st.Lost, "lost")
		ch <- prometheus.MustNewConstMetric(descSyslogConnections, prometheus.GaugeValue, float64(st.ConnectionsOpen))
	}
	if a := p.audit; a != nil {
		st := a.Status()
		counter(descAuditEvents, st.Events)
		counter(descAuditParseErrors, st.ParseErrors)
		counter(descAuditErrors, st.Errors)
		if st.Source == audit.SourceNetlink {
			counter(descAuditKernelLost, st.Netlink.KernelLost)
			ch <- prometheus.MustNewConstMetric(descAuditBacklog, prometheus.GaugeValue, float64(st.Netlink.Backlog))
			counter(descAuditDropped, st.Netlink.Dropped, "queue_full")
			counter(descAuditDropped, st.Netlink.Overflows, "socket_overflow")
		}
	}
	if f := p.integrity; f != nil {
		st := f.Status()
		counter(descIntegrityChanges, st.Changes)
		ch <- prometheus.MustNewConstMetric(descIntegrityFiles, prometheus.GaugeValue, float64(st.Files))
		counter(descIntegrityErrors, st.Errors)
	}
}

func (m *metrics) serve(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("metrics.listen %s: %w", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		stop := context.AfterFunc(ctx, func() { srv.Close() })
		defer stop()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics: %w", err)
		}
		return nil
	}
}

// rulesCollector reads the pipeline's counters and the rules' once per
// scrape, under the names a SOC knows from log shippers.
type rulesCollector struct{ g *Gateway }

var (
	descEventsLogged  = prometheus.NewDesc("weir_events_logged_total", "Records stamped and spooled since start.", nil, nil)
	descEventsDropped = prometheus.NewDesc("weir_events_dropped_total", "Records lost unsent since start: evicted or expired from a full spool, or quarantined as damaged.", nil, nil)
	descEventsShipped = prometheus.NewDesc("weir_events_shipped_total", "Records the collector acknowledged since start.", nil, nil)
	descShipFailures  = prometheus.NewDesc("weir_ship_failures_total", "Uplink handshakes that failed and sessions lost, over every endpoint.", nil, nil)
	descQueueSize     = prometheus.NewDesc("weir_queue_size", "Records in the spool not yet acknowledged.", nil, nil)
	descAlerts        = prometheus.NewDesc("weir_alerts_total", "Alerts raised by the rules, by level.", []string{"level"}, nil)
	descCorrelations  = prometheus.NewDesc("weir_correlations_total", "Correlations detected, by pattern.", []string{"pattern"}, nil)
	descRuleMatches   = prometheus.NewDesc("weir_rule_matches_total", "Records each rule matched (since it was last changed).", []string{"rule"}, nil)
	descRuleState     = prometheus.NewDesc("weir_rule_firing", "1 while a rule fires (raised within its window, or its condition holds).", []string{"rule"}, nil)
	descRulesEval     = prometheus.NewDesc("weir_rules_evaluated_records_total", "Records evaluated against the rules.", nil, nil)
	descActions       = prometheus.NewDesc("weir_alert_actions_total", "Alert commands, by outcome (started, failed, skipped).", []string{"outcome"}, nil)
)

func (rulesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEventsLogged, descEventsDropped, descEventsShipped, descShipFailures, descQueueSize,
		descAlerts, descCorrelations, descRuleMatches, descRuleState, descRulesEval, descActions} {
		ch <- d
	}
}

func (c rulesCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.rules.Status()
	n := c.g.counters(c.g.spool.Stats(), c.g.now().sender.Status(), st.Stats)
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	counter(descEventsLogged, float64(n.EventsLogged))
	counter(descEventsDropped, float64(n.EventsDropped))
	counter(descEventsShipped, float64(n.EventsShipped))
	counter(descShipFailures, float64(n.ShipFailures))
	ch <- prometheus.MustNewConstMetric(descQueueSize, prometheus.GaugeValue, float64(n.QueueSize))
	for level, v := range n.Alerts {
		counter(descAlerts, float64(v), level)
	}
	for p, v := range n.Correlations {
		counter(descCorrelations, float64(v), p)
	}
	for _, r := range st.Rules {
		counter(descRuleMatches, float64(r.Matched), r.Name)
		firing := 0.0
		if r.State == "firing" {
			firing = 1
		}
		ch <- prometheus.MustNewConstMetric(descRuleState, prometheus.GaugeValue, firing, r.Name)
	}
	counter(descRulesEval, float64(st.Stats.Evaluated))
	counter(descActions, float64(n.Actions.Started), "started")
	counter(descActions, float64(n.Actions.Failed), "failed")
	counter(descActions, float64(n.Actions.Skipped), "skipped")
}
