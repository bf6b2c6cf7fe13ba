package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
)

func TestPrintStatusConfig(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		cfg       gateway.ConfigStatus
		want, not []string
	}{
		{"no reload yet", gateway.ConfigStatus{Generation: 1, Source: "/etc/weir/weir.yaml", Since: now.Add(-time.Hour)},
			[]string{"config   generation 1 from /etc/weir/weir.yaml, 1h0m0s ago\n"}, []string{"last reload"}},
		{"applied", gateway.ConfigStatus{Generation: 2, Source: "SIGHUP /etc/weir/weir.yaml", Since: now.Add(-time.Minute),
			LastReload: &gateway.ReloadResult{Generation: 2, At: now.Add(-time.Minute), Source: "SIGHUP /etc/weir/weir.yaml",
				Result: gateway.ReloadOK, Changed: []string{"inputs.files new: started", "uplink: restarted"}}},
			[]string{"config   generation 2 from SIGHUP /etc/weir/weir.yaml, 1m0s ago\n",
				"         last reload 1m0s ago (SIGHUP /etc/weir/weir.yaml): ok; inputs.files new: started, uplink: restarted\n"}, nil},
		{"refused", gateway.ConfigStatus{Generation: 2, Source: "SIGHUP /etc/weir/weir.yaml", Since: now.Add(-time.Hour),
			LastReload: &gateway.ReloadResult{Generation: 2, At: now.Add(-5 * time.Second), Source: "SIGHUP /etc/weir/weir.yaml",
				Result: gateway.ReloadRefused, Error: "needs a restart: spool.max_bytes (the spool is opened at start with its bounds and profile)"}},
			[]string{"last reload 5s ago (SIGHUP /etc/weir/weir.yaml): REFUSED\n",
				"         needs a restart: spool.max_bytes (the spool is opened at start with its bounds and profile)\n"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := gateway.Status{Gateway: "gw", Started: now.Add(-time.Hour), Config: c.cfg}
			st.Uplink.State = "disabled"
			var b bytes.Buffer
			printStatus(&b, &st, now)
			for _, w := range c.want {
				require.Contains(t, b.String(), w)
			}
			for _, n := range c.not {
				require.NotContains(t, b.String(), n)
			}
		})
	}
}
