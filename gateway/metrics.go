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

	"github.com/weirgw/weir/spool"
)

type metrics struct {
	reg      *prometheus.Registry
	appended *prometheus.CounterVec
}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.appended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_records_appended_total", Help: "Records stamped and stored in the spool, by source.",
	}, []string{"source"})
	uplinkGauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.appended,
		spoolCollector{g},
		linkCollector{g},
		sensorsCollector{g},
		uplinkGauge("weir_uplink_acked_seq", "Highest sequence the collector acknowledged.",
			func() float64 { return float64(g.sender.Status().LastAckSeq) }),
		uplinkGauge("weir_uplink_connected", "1 while a collector session is up.",
			func() float64 {
				if g.sender.Status().State == "connected" {
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
)

func (spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSpoolRecords, descSpoolBytes, descSpoolEvicted, descSpoolExpired, descSpoolRefused,
		descSpoolUsed, descSpoolMax, descSpoolOldest, descSpoolAppended, descSpoolCommits, descSpoolDisk} {
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
