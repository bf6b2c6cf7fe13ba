package gateway

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/syslog"
)

// noCheckpoints is a store holding nothing yet.
type noCheckpoints struct{}

func (noCheckpoints) Checkpoint(string) ([]byte, error) { return nil, nil }
func (noCheckpoints) Checkpoints(string, func(string, []byte) error) error {
	return nil
}

func TestInputsMetrics(t *testing.T) {
	gather := func(g *Gateway) map[string]int {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(inputsCollector{g})
		mfs, err := reg.Gather()
		require.NoError(t, err)
		got := map[string]int{}
		for _, mf := range mfs {
			got[mf.GetName()] = len(mf.GetMetric())
		}
		return got
	}
	require.Empty(t, gather(withPipeline(&pipeline{})), "inputs that are off have no series")

	sc := syslog.DefaultConfig()
	sc.UDP.Listen, sc.TCP.Listen = "127.0.0.1:0", "127.0.0.1:0"
	s, err := syslog.New(sc, nil)
	require.NoError(t, err)
	a, err := audit.New(audit.Config{Path: t.TempDir() + "/audit.log"}, noCheckpoints{}, nil)
	require.NoError(t, err)
	m, err := integrity.New(integrity.Config{Paths: []string{t.TempDir()}}, "", noCheckpoints{}, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]int{
		"weir_syslog_messages_total": 2, "weir_syslog_parse_errors_total": 2, "weir_syslog_dropped_total": 5,
		"weir_syslog_connections_open": 1,
		"weir_audit_events_total":      1, "weir_audit_parse_errors_total": 1, "weir_audit_errors_total": 1,
		"weir_integrity_changes_total": 1, "weir_integrity_baseline_paths": 1, "weir_integrity_errors_total": 1,
	}, gather(withPipeline(&pipeline{syslog: s, audit: a, integrity: m})))

	// Source netlink adds the kernel's side.
	n, err := audit.New(audit.Config{Source: audit.SourceNetlink}, noCheckpoints{}, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]int{
		"weir_audit_events_total": 1, "weir_audit_parse_errors_total": 1, "weir_audit_errors_total": 1,
		"weir_audit_kernel_lost_total": 1, "weir_audit_kernel_backlog": 1, "weir_audit_dropped_total": 2,
	}, gather(withPipeline(&pipeline{audit: n})))
	require.Len(t, n.Telemetry(), 1)
	require.Nil(t, a.Telemetry(), "the file source has no telemetry record")
}
