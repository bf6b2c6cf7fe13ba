package gateway

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/sender"
)

// Link is what `weir link` shows: the uplink's per-endpoint telemetry with
// the spool figures that say how far behind the link is.
type Link struct {
	Gateway        string        `json:"gateway"`
	Uplink         sender.Status `json:"uplink"`
	BacklogRecords int64         `json:"backlog_records"`
	BacklogBytes   int64         `json:"backlog_bytes"`
	OldestUnacked  float64       `json:"oldest_unacked_seconds"` // 0: nothing unacked
	At             time.Time     `json:"at"`
}

// Link takes a snapshot.
func (g *Gateway) Link() Link { return g.linkOf(g.now().sender, g.spool.Stats()) }

func (g *Gateway) linkOf(s *sender.Sender, st spool.Stats) Link {
	l := Link{Gateway: g.cfg.Gateway.ID, Uplink: s.Status(), BacklogRecords: st.Records, BacklogBytes: st.Bytes, At: time.Now()}
	if !st.Oldest.IsZero() {
		l.OldestUnacked = time.Since(st.Oldest).Seconds()
	}
	return l
}

// FetchLink asks the gateway listening on socket for its link telemetry.
func FetchLink(ctx context.Context, socket string) (*Link, error) {
	var l Link
	if err := get(ctx, socket, "/v1/link", &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// runLinkTelemetry spools a link telemetry record per endpoint of s
// every interval, so the head-end sees RTT, loss, outages and certificate
// expiry even when nobody scrapes the gateway. It runs beside its sender
// (uc is that sender's section) and ends with it.
func (g *Gateway) runLinkTelemetry(ctx context.Context, s *sender.Sender, uc uplink.Config) error {
	if !uc.Enabled() {
		return nil
	}
	t := time.NewTicker(uc.TelemetryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st := g.spool.Stats()
		if err := g.Emit(ctx, linkTelemetry(g.linkOf(s, st), st), nil); err != nil && ctx.Err() == nil {
			g.log.Warn("link telemetry record not spooled", "err", err)
		}
	}
}

func days(t, now time.Time) float64 {
	return t.Sub(now).Hours() / 24
}

// linkTelemetry makes one record per endpoint. A record is a warning when
// the endpoint is down, or a certificate is close to expiry.
func linkTelemetry(l Link, st spool.Stats) []event.Event {
	u := l.Uplink
	var evs []event.Event
	for _, e := range u.Endpoints {
		ev := event.Event{
			Source: "weir:uplink", Kind: event.KindTelemetry, Severity: event.SevInfo, Priority: event.PriorityNormal,
			Message: fmt.Sprintf("link %s %s", e.Endpoint, e.State),
			Fields: []event.Field{
				event.Str("endpoint", e.Endpoint), event.Str("transport", e.Transport), event.Str("state", string(e.State)),
				event.Bool("active", e.Active), event.Str("mode", string(u.Mode)),
				event.Float("srtt_ms", e.SRTTMillis), event.Float("rttvar_ms", e.RTTVarMillis), event.Str("rtt_source", e.RTTSource),
				event.Float("ack_latency_ms", e.AckLatencyMillis), event.Int("window", int64(e.Window)),
				event.Float("handshake_ms", e.HandshakeMillis), event.Float("first_ack_ms", e.FirstAckMillis),
				event.Float("loss_1m", e.Loss1m), event.Float("loss_15m", e.Loss15m), event.Str("loss_source", e.LossSource),
				event.Uint("segments_sent", e.SegmentsSent), event.Uint("segments_retransmitted", e.SegmentsRetransmitted),
				event.Float("goodput_bps", e.GoodputBitsPS), event.Float("records_acked_per_second", e.RecordsPerSecond),
				event.Float("bytes_acked_per_second", e.BytesPerSecond),
				event.Uint("records_acked", e.RecordsAcked), event.Uint("bytes_acked", e.BytesAcked),
				event.Uint("handshakes", e.Handshakes), event.Uint("handshake_failures", e.HandshakeFailures),
				event.Uint("reconnects", e.Reconnects), event.Float("outage_seconds", e.OutageSeconds),
				event.Int("backlog_records", st.Records), event.Int("backlog_bytes", st.Bytes),
				event.Float("oldest_unacked_seconds", l.OldestUnacked),
			},
		}
		reasons := make([]string, 0, len(e.FailureReasons))
		for r := range e.FailureReasons {
			reasons = append(reasons, string(r))
		}
		sort.Strings(reasons)
		for _, r := range reasons {
			ev.Fields = append(ev.Fields, event.Uint("failures_"+r, e.FailureReasons[uplink.Reason(r)]))
		}
		if e.LastError != "" {
			ev.Fields = append(ev.Fields, event.Str("last_error", e.LastError), event.Str("last_reason", string(e.LastReason)))
		}
		if !u.CertExpiry.IsZero() {
			ev.Fields = append(ev.Fields, event.Float("cert_expiry_days", days(u.CertExpiry, l.At)))
		}
		if !u.CAExpiry.IsZero() {
			ev.Fields = append(ev.Fields, event.Float("ca_expiry_days", days(u.CAExpiry, l.At)))
		}
		if !e.PeerExpiry.IsZero() {
			ev.Fields = append(ev.Fields, event.Float("peer_cert_expiry_days", days(e.PeerExpiry, l.At)))
		}
		if !e.OutageSince.IsZero() {
			ev.Severity = event.SevWarning
		}
		if u.CertWarning != "" {
			ev.Severity = event.SevWarning
			ev.Message += ": " + u.CertWarning
			ev.Fields = append(ev.Fields, event.Str("cert_warning", u.CertWarning))
		}
		evs = append(evs, ev)
	}
	return evs
}
