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
	spoolGauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.appended,
		spoolGauge("weir_spool_backlog_records", "Unacknowledged records in the spool.",
			func() float64 { return float64(g.spool.Stats().Records) }),
		spoolGauge("weir_spool_backlog_bytes", "Bytes of unacknowledged records in the spool.",
			func() float64 { return float64(g.spool.Stats().Bytes) }),
		spoolGauge("weir_spool_oldest_unacked_seconds", "Age of the oldest unacknowledged record.",
			func() float64 {
				if o := g.spool.Stats().Oldest; !o.IsZero() {
					return time.Since(o).Seconds()
				}
				return 0
			}),
		spoolGauge("weir_uplink_acked_seq", "Highest sequence the collector acknowledged.",
			func() float64 { return float64(g.sender.Status().LastAckSeq) }),
		spoolGauge("weir_uplink_connected", "1 while a collector session is up.",
			func() float64 {
				if g.sender.Status().State == "connected" {
					return 1
				}
				return 0
			}),
	)
	return m
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
