package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirgw/weir/uplink"
)

// linkCollector reads the uplink's per-endpoint telemetry once per scrape.
type linkCollector struct{ g *Gateway }

var (
	linkLabels          = []string{"endpoint", "transport"}
	descLinkUp          = prometheus.NewDesc("weir_uplink_endpoint_up", "1 while a session to the endpoint is up.", linkLabels, nil)
	descLinkActive      = prometheus.NewDesc("weir_uplink_endpoint_active", "1 while the endpoint carries batches.", linkLabels, nil)
	descLinkSRTT        = prometheus.NewDesc("weir_uplink_srtt_seconds", "Smoothed round-trip time (tcp_info, rudp, or Ping/Pong).", linkLabels, nil)
	descLinkRTTVar      = prometheus.NewDesc("weir_uplink_rttvar_seconds", "Round-trip time variance.", linkLabels, nil)
	descLinkAckLatency  = prometheus.NewDesc("weir_uplink_ack_latency_seconds", "Smoothed Data to Ack time, including the collector's fsync.", linkLabels, nil)
	descLinkLoss        = prometheus.NewDesc("weir_uplink_loss_ratio", "Retransmitted over sent segments in the window (absent when the transport cannot tell).", append(linkLabels, "window"), nil)
	descLinkSegSent     = prometheus.NewDesc("weir_uplink_segments_sent_total", "Segments the transport sent.", linkLabels, nil)
	descLinkSegRetrans  = prometheus.NewDesc("weir_uplink_segments_retransmitted_total", "Segments the transport sent again.", linkLabels, nil)
	descLinkGoodput     = prometheus.NewDesc("weir_uplink_goodput_bits_per_second", "Acknowledged payload bits per second over the last minute.", linkLabels, nil)
	descLinkRecordsRate = prometheus.NewDesc("weir_uplink_records_acked_per_second", "Records acknowledged per second over the last minute.", linkLabels, nil)
	descLinkRecords     = prometheus.NewDesc("weir_uplink_records_acked_total", "Records the collector acknowledged.", linkLabels, nil)
	descLinkBytes       = prometheus.NewDesc("weir_uplink_bytes_acked_total", "Record bytes (uncompressed) the collector acknowledged.", linkLabels, nil)
	descLinkHandshakes  = prometheus.NewDesc("weir_uplink_handshakes_total", "Completed handshakes (with Hello/Welcome).", linkLabels, nil)
	descLinkHSFailures  = prometheus.NewDesc("weir_uplink_handshake_failures_total", "Failed connects, handshakes and Hellos, by reason.", append(linkLabels, "reason"), nil)
	descLinkReconnects  = prometheus.NewDesc("weir_uplink_reconnects_total", "Sessions after the first.", linkLabels, nil)
	descLinkOutage      = prometheus.NewDesc("weir_uplink_outage_seconds_total", "Time without a session since start.", linkLabels, nil)
	descLinkInFlight    = prometheus.NewDesc("weir_uplink_batches_in_flight", "Batches sent and not yet acknowledged.", linkLabels, nil)
	descLinkWindow      = prometheus.NewDesc("weir_uplink_window_batches", "Batches the session may have in flight, sized to the path (0: no session).", linkLabels, nil)
	descLinkCertExpiry  = prometheus.NewDesc("weir_uplink_cert_expiry_seconds", "Time left before a certificate expires (own: the gateway's; ca: earliest in the bundle).", []string{"cert"}, nil)
)

func (linkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLinkUp, descLinkActive, descLinkSRTT, descLinkRTTVar, descLinkAckLatency, descLinkLoss,
		descLinkSegSent, descLinkSegRetrans, descLinkGoodput, descLinkRecordsRate, descLinkRecords, descLinkBytes,
		descLinkHandshakes, descLinkHSFailures, descLinkReconnects, descLinkOutage, descLinkInFlight, descLinkWindow, descLinkCertExpiry} {
		ch <- d
	}
}

func (c linkCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.now().sender.Status()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, e := range st.Endpoints {
		l := []string{e.Endpoint, e.Transport}
		g := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(l, extra...)...)
		}
		n := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append(l, extra...)...)
		}
		g(descLinkUp, b(e.State == "connected"))
		g(descLinkActive, b(e.Active))
		g(descLinkSRTT, e.SRTTMillis/1e3)
		g(descLinkRTTVar, e.RTTVarMillis/1e3)
		g(descLinkAckLatency, e.AckLatencyMillis/1e3)
		if e.Loss1m >= 0 {
			g(descLinkLoss, e.Loss1m, "1m")
			g(descLinkLoss, e.Loss15m, "15m")
		}
		n(descLinkSegSent, float64(e.SegmentsSent))
		n(descLinkSegRetrans, float64(e.SegmentsRetransmitted))
		g(descLinkGoodput, e.GoodputBitsPS)
		g(descLinkRecordsRate, e.RecordsPerSecond)
		n(descLinkRecords, float64(e.RecordsAcked))
		n(descLinkBytes, float64(e.BytesAcked))
		n(descLinkHandshakes, float64(e.Handshakes))
		for _, r := range uplink.Reasons() {
			n(descLinkHSFailures, float64(e.FailureReasons[r]), string(r))
		}
		n(descLinkReconnects, float64(e.Reconnects))
		n(descLinkOutage, e.OutageSeconds)
		g(descLinkInFlight, float64(e.BatchesInFlight))
		g(descLinkWindow, float64(e.Window))
	}
	now := time.Now()
	if !st.CertExpiry.IsZero() {
		ch <- prometheus.MustNewConstMetric(descLinkCertExpiry, prometheus.GaugeValue, st.CertExpiry.Sub(now).Seconds(), "own")
	}
	if !st.CAExpiry.IsZero() {
		ch <- prometheus.MustNewConstMetric(descLinkCertExpiry, prometheus.GaugeValue, st.CAExpiry.Sub(now).Seconds(), "ca")
	}
}
