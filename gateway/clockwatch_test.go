package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/ptp"
)

func TestClockTransition(t *testing.T) {
	locked := ptp.Status{Mode: ptp.ModeBuiltin, State: "locked", Grandmaster: "001122.fffe.334455", ErrorBoundNS: 3000, OffsetNS: -200}
	holdover := ptp.Status{Mode: ptp.ModeBuiltin, State: "holdover", Grandmaster: "001122.fffe.334455", ErrorBoundNS: 90000}
	freerun := ptp.Status{Mode: ptp.ModeBuiltin, State: "freerun", ErrorBoundNS: -1, Error: "interface eth0: no such network interface"}
	for _, tc := range []struct {
		name      string
		prev, cur ptp.Status
		want      bool
		msg       string
		sev       event.Severity
	}{
		{"start", ptp.Status{}, freerun, true, "clock start → freerun", event.SevInfo},
		{"unchanged", locked, locked, false, "", 0},
		{"lock", freerun, locked, true, "clock freerun → locked", event.SevInfo},
		{"lose lock", locked, holdover, true, "clock locked → holdover", event.SevWarning},
		{"holdover ends", holdover, freerun, true, "clock holdover → freerun", event.SevInfo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, ok := clockTransition(tc.prev, tc.cur)
			require.Equal(t, tc.want, ok)
			if !ok {
				return
			}
			require.Equal(t, tc.msg, ev.Message)
			require.Equal(t, tc.sev, ev.Severity)
			require.Equal(t, event.KindTelemetry, ev.Kind)
			fields := map[string]string{}
			for _, f := range ev.Fields {
				fields[f.Key] = f.Value.String()
			}
			require.Equal(t, tc.cur.State, fields["to"])
			require.Equal(t, string(tc.cur.Mode), fields["mode"])
			if tc.cur.Error != "" {
				require.Equal(t, tc.cur.Error, fields["error"])
			}
			if tc.cur.Grandmaster != "" {
				require.Equal(t, tc.cur.Grandmaster, fields["grandmaster"])
			}
		})
	}
}
