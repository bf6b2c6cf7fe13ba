package fleet

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gauge is one per-gateway figure on the collector's /metrics.
type gauge struct {
	desc *prometheus.Desc
	val  func(r *Row, now time.Time) (float64, bool)
}

// collectorOf exposes the store's rows as per-gateway gauges. Each has
// the one label gateway, so the series number is the gauges (16) times
// the gateways tracked (at most MaxGateways).
type collectorOf struct {
	s      *Store
	gauges []gauge
}

// Collector returns the per-gateway gauges for a Prometheus registry.
func (s *Store) Collector() prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("weir_fleet_"+name, help, []string{"gateway"}, nil)
	}
	known := func(ok bool, v float64) (float64, bool) { return v, ok }
	age := func(t time.Time, now time.Time) (float64, bool) {
		if t.IsZero() {
			return 0, false
		}
		return max(0, now.Sub(t).Seconds()), true
	}
	return &collectorOf{s: s, gauges: []gauge{
		{d("health", "Health by the fleet page's rules: 0 ok, 1 unknown (no telemetry yet), 2 warning, 3 critical, 4 silent."),
			func(r *Row, _ time.Time) (float64, bool) { return float64(r.Level), true }},
		{d("last_record_age_seconds", "Seconds since the time of the gateway's newest record (its own clock)."),
			func(r *Row, now time.Time) (float64, bool) { return age(r.LastRecord, now) }},
		{d("last_ack_age_seconds", "Seconds since the collector last wrote and acknowledged a batch of the gateway."),
			func(r *Row, now time.Time) (float64, bool) { return age(r.LastAck, now) }},
		{d("backlog_records", "Records in the gateway's spool not yet acknowledged, at its last report."),
			func(r *Row, _ time.Time) (float64, bool) { return known(r.BacklogKnown, float64(r.BacklogRecords)) }},
		{d("backlog_bytes", "Bytes of the gateway's unacknowledged backlog, at its last report."),
			func(r *Row, _ time.Time) (float64, bool) { return known(r.BacklogKnown, float64(r.BacklogBytes)) }},
		{d("backlog_oldest_seconds", "Age of the gateway's oldest unacknowledged record, at its last report."),
			func(r *Row, _ time.Time) (float64, bool) { return known(r.BacklogKnown, r.BacklogAge) }},
		{d("link_up", "1 when the endpoint shown (the active one) was connected at the last link report."),
			func(r *Row, _ time.Time) (float64, bool) {
				return known(r.Link.Known, b2f(r.Link.State == "connected"))
			}},
		{d("link_rtt_seconds", "Smoothed round-trip time of the endpoint shown."),
			func(r *Row, _ time.Time) (float64, bool) { return known(r.Link.Known, r.Link.RTTms/1000) }},
		{d("link_loss_ratio", "Loss over the last minute on the endpoint shown (0 to 1)."),
			func(r *Row, _ time.Time) (float64, bool) { return known(r.Link.Known, r.Link.Loss) }},
		{d("link_goodput_bits_per_second", "Acknowledged record bits per second on the endpoint shown."),
			func(r *Row, _ time.Time) (float64, bool) { return known(r.Link.Known, r.Link.Goodput) }},
		{d("clock_error_bound_seconds", "Error bound of the newest record's time (absent when the clock promises none)."),
			func(r *Row, _ time.Time) (float64, bool) { return known(r.ClockBound >= 0, float64(r.ClockBound)/1e9) }},
		{d("clock_locked", "1 when the newest record was stamped by a locked clock."),
			func(r *Row, _ time.Time) (float64, bool) {
				return known(r.ClockState != "", b2f(r.ClockState == "locked"))
			}},
		{d("bus_frame_error_rate", "Highest frame-error rate over the last minute among the gateway's Modbus buses (0 to 1)."),
			func(r *Row, _ time.Time) (float64, bool) { return known(r.BusKnown, r.BusFER) }},
		{d("alerts_firing", "Alert records within the alert window (--ui-alert-window)."),
			func(r *Row, _ time.Time) (float64, bool) { return float64(r.Alerts), true }},
		{d("tamper_open", "1 while the enclosure is open, by the last tamper record."),
			func(r *Row, _ time.Time) (float64, bool) { return known(r.Tamper != "", b2f(r.Tamper == "open")) }},
		{d("config_ok", "1 when the applied configuration's result is a success (present once gateways report one)."),
			func(r *Row, _ time.Time) (float64, bool) {
				return known(r.ConfigVersion != "" || r.ConfigResult != "", b2f(configOK(r.ConfigResult)))
			}},
	}}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collectorOf) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range c.gauges {
		ch <- g.desc
	}
}

func (c *collectorOf) Collect(ch chan<- prometheus.Metric) {
	now := c.s.opt.Now()
	rows := c.s.Rows()
	for i := range rows {
		r := &rows[i]
		// Label values must be UTF-8; ids a certificate named are ASCII,
		// ids read back from a stream need not be.
		id := strings.ToValidUTF8(r.ID, "\uFFFD")
		for _, g := range c.gauges {
			if v, ok := g.val(r, now); ok {
				ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, id)
			}
		}
	}
}
