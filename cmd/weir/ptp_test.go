package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/ptp"
)

func TestPrintPTP(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		st      ptp.Status
		want    []string
		notWant []string
	}{
		"system": {ptp.Status{Mode: ptp.ModeSystem, Source: "system", State: "freerun", ErrorBoundNS: -1},
			[]string{"mode                 system", "state                freerun", "error_bound          unknown", "last_sync            never"},
			[]string{"grandmaster", "offset", "error "}},
		"locked": {ptp.Status{Mode: ptp.ModeLinuxPTP, Source: "ptp", State: "locked", ErrorBoundNS: 21500, PortState: "SLAVE",
			Grandmaster: "001122.fffe.334455", GrandmasterPresent: true, OffsetNS: -1500, PathDelayNS: 20000, LastSync: now.Add(-800 * time.Millisecond)},
			[]string{"state                locked", "port_state           SLAVE", "grandmaster          001122.fffe.334455 (present true)",
				"offset               -1.5µs", "path_delay           20µs", "error_bound          21.5µs", "last_sync            800ms ago"},
			[]string{"error "}},
		"builtin": {ptp.Status{Mode: ptp.ModeBuiltin, Source: "ptp", State: "locked", ErrorBoundNS: 3500, PortState: "SLAVE",
			Grandmaster: "001122.fffe.334455", GrandmasterPresent: true, OffsetNS: 300, PathDelayNS: 3200, LastSync: now.Add(-time.Second),
			CorrectionNS: -250_000_400, FrequencyPPB: -12.25, Servo: "LOCKED", Timestamping: "software",
			Messages: map[string]uint64{"sync": 30, "malformed": 2}},
			[]string{"correction           -250.0004ms", "frequency            -12.2 ppb", "servo                LOCKED",
				"timestamping         software", "messages             malformed=2 sync=30"},
			nil},
		"linuxptp with a PHC": {ptp.Status{Mode: ptp.ModeLinuxPTP, Source: "ptp", State: "locked", ErrorBoundNS: 100, PHC: "/dev/ptp0",
			UTCOffsetKnown: true, UTCOffset: 37, UTCOffsetValid: true, PTPTimescale: true, TimeSource: "GNSS", TimeTraceable: true},
			[]string{"phc                  /dev/ptp0", "utc_offset           37s (valid true, ptp timescale true)",
				"time_source          GNSS (time traceable true)"}, nil},
		"holdover after ptp4l died": {ptp.Status{Mode: ptp.ModeLinuxPTP, Source: "ptp", State: "holdover", ErrorBoundNS: 3021500,
			LastSync: now.Add(-3 * time.Second), Error: "ptp4l /var/run/ptp4l TIME_STATUS_NP: i/o timeout"},
			[]string{"state                holdover", "grandmaster          none (present false)", "error_bound          3.0215ms",
				"last_sync            3s ago", "error                ptp4l /var/run/ptp4l TIME_STATUS_NP: i/o timeout"},
			nil},
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			printPTP(&b, &tc.st, now)
			out := b.String()
			for _, w := range tc.want {
				require.Contains(t, out, w)
			}
			for _, w := range tc.notWant {
				require.NotContains(t, out, w)
			}
		})
	}
}
