package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/sender"
)

func TestPrintLink(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	l := &gateway.Link{Gateway: "gw-1", At: now, BacklogRecords: 1200, BacklogBytes: 150 << 10, OldestUnacked: 42,
		Uplink: sender.Status{State: sender.StateConnected, Mode: uplink.ModeFailover,
			CertExpiry: now.Add(20 * 24 * time.Hour), CAExpiry: now.Add(3000 * 24 * time.Hour),
			CertWarning: "own certificate expires in 20 days (2026-12-13)",
			Endpoints: []sender.EndpointStatus{
				{Endpoint: "tls://a:7443", State: sender.StateBackoff, Loss1m: -1, Loss15m: -1, HandshakeFailures: 4,
					FailureReasons: map[uplink.Reason]uint64{uplink.ReasonUnknownCA: 4}, OutageSeconds: 125,
					LastError:  "uplink: connect to tls://a:7443: remote error: tls: unknown certificate authority",
					LastReason: uplink.ReasonUnknownCA, LastErrorAt: now.Add(-3 * time.Second)},
				{Endpoint: "dtls://b:7444", State: sender.StateConnected, Active: true, Negotiated: "DTLS 1.2, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, connection id",
					SRTTMillis: 21.4, RTTVarMillis: 3.2, RTTSource: "rudp", Loss1m: 0.098, Loss15m: 0.101, GoodputBitsPS: 2.5e6,
					RecordsPerSecond: 1800, RecordsAcked: 123456, Handshakes: 2, Reconnects: 1,
					HandshakeMillis: 142.5, FirstAckMillis: 44.1},
			}}}
	var b bytes.Buffer
	printLink(&b, l)
	out := b.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"mode failover", "backlog 1200 records", "oldest unacked 42s", "WARNING: own certificate expires in 20 days",
		"tls://a:7443", "unknown", "failures: unknown_ca 4", "last error (unknown_ca, 3s ago)",
		"dtls://b:7444", "connected*", "21.4ms", "9.8%/10.1%", "2.5 Mb/s", "rtt from rudp",
		"handshake 142.5ms, first ack 44.1ms after it",
	} {
		require.Contains(t, out, want)
	}
}
