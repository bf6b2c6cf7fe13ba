package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/sender"
)

func TestLinkTelemetry(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	up := sender.EndpointStatus{Endpoint: "tls://a:7443", Transport: "tls", State: sender.StateConnected, Active: true,
		SRTTMillis: 12.5, Loss1m: 0.01, Loss15m: 0.02, LossSource: "tcp_info", Handshakes: 3, HandshakeFailures: 2,
		FailureReasons: map[uplink.Reason]uint64{uplink.ReasonUnknownCA: 2}}
	down := sender.EndpointStatus{Endpoint: "dtls://b:7444", Transport: "dtls", State: sender.StateBackoff,
		OutageSince: now.Add(-time.Minute), LastError: "refused", LastReason: uplink.ReasonRefusedID, Loss1m: -1, Loss15m: -1}
	cases := []struct {
		name     string
		status   sender.Status
		severity []event.Severity
		message  string
	}{
		{"healthy and down", sender.Status{Mode: uplink.ModeFailover, Endpoints: []sender.EndpointStatus{up, down},
			CertExpiry: now.Add(400 * 24 * time.Hour)}, []event.Severity{event.SevInfo, event.SevWarning}, "link tls://a:7443 connected"},
		{"certificate expiring", sender.Status{Endpoints: []sender.EndpointStatus{up}, CertExpiry: now.Add(10 * 24 * time.Hour),
			CertWarning: "own certificate expires in 10 days"}, []event.Severity{event.SevWarning}, "expires in 10 days"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := linkTelemetry(Link{Uplink: c.status, At: now, OldestUnacked: 3}, spool.Stats{Records: 7})
			require.Len(t, evs, len(c.severity))
			for i, ev := range evs {
				require.Equal(t, event.KindTelemetry, ev.Kind)
				require.Equal(t, c.severity[i], ev.Severity, "record %d", i)
			}
			require.Contains(t, evs[0].Message, c.message)
			f := map[string]event.Value{}
			for _, x := range evs[0].Fields {
				f[x.Key] = x.Value
			}
			require.Equal(t, int64(7), f["backlog_records"].Int())
			require.Equal(t, uint64(2), f["failures_unknown_ca"].Num)
			require.InDelta(t, 12.5, f["srtt_ms"].Float(), 1e-9)
			require.Contains(t, f, "cert_expiry_days")
		})
	}
}
