package gateway

import (
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
	"github.com/weirgw/weir/uplink/sender"
)

func TestLinkMetrics(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, pki.InitCA(dir, "test", pki.Options{}))
	cert, key, err := pki.IssueGateway(dir, "gw-1", pki.Options{})
	require.NoError(t, err)
	cfg := uplink.DefaultConfig()
	cfg.TLS = uplink.TLSConfig{CA: filepath.Join(dir, pki.CACertFile), Cert: cert, Key: key}
	cfg.Endpoints = []uplink.Endpoint{{Address: "127.0.0.1:1"}, {Address: "127.0.0.1:2", Transport: uplink.TransportDTLS}}
	s, err := sender.New(cfg, "gw-1", "boot", nil, nil)
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(linkCollector{withPipeline(&pipeline{sender: s})}))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
	}
	require.Equal(t, 2, got["weir_uplink_endpoint_up"], "one series per endpoint")
	require.Equal(t, 2*len(uplink.Reasons()), got["weir_uplink_handshake_failures_total"], "every reason present from the start")
	require.Equal(t, 2, got["weir_uplink_cert_expiry_seconds"], "own and CA")
	require.NotContains(t, got, "weir_uplink_loss_ratio", "loss unknown before any session: no series rather than a false 0")
}
