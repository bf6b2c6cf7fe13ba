package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/gateway"
)

func TestPrintStatusBoard(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	st := gateway.Status{Gateway: "gw", Started: now.Add(-time.Hour),
		Board: &board.Status{Profile: "raspberrypi4",
			LEDs: []board.LEDStatus{{Name: "power", Pattern: board.On, Reason: "running"},
				{Name: "link", Pattern: board.Fast, Reason: "down: refused"},
				{Name: "spool", Pattern: board.On, Reason: "holding 12 records"},
				{Name: "alert", Pattern: board.Fast, Reason: "enclosure open"}},
			Tamper: &board.TamperStatus{Pin: "GPIO26", Open: true, Since: now.Add(-3 * time.Minute), Openings: 2, Closings: 1},
			RS485:  &board.RS485Status{Pin: "GPIO17", Device: "/dev/ttyAMA0", Transmits: 1520}},
		Health: gateway.Health{OK: false, Checked: now, Since: now.Add(-12 * time.Second), Interval: "5s",
			Problems: []string{"inputs.modbus bus rs485-1: device flow-1 is 1m10s past its poll (the bus is stuck)"},
			Watchdog: &board.WatchdogStatus{Device: "/dev/watchdog", Timeout: "15s", LastKick: now.Add(-14 * time.Second)}},
	}
	var b bytes.Buffer
	printStatus(&b, &st, now)
	for _, want := range []string{
		"board    raspberrypi4: power on, link fast (down: refused), spool on, alert fast (enclosure open)\n",
		"         tamper GPIO26 OPEN since 3m0s ago; 2 openings, 1 closings\n",
		"         rs485 driver enable GPIO17 for /dev/ttyAMA0; 1520 frames sent\n",
		"health   NOT OK for 12s: inputs.modbus bus rs485-1: device flow-1 is 1m10s past its poll (the bus is stuck) (checked every 5s)\n",
		"         watchdog /dev/watchdog (15s): NOT kicked, last kick 14s ago\n",
	} {
		require.Contains(t, b.String(), want)
	}

	st.Board, st.Health = nil, gateway.Health{OK: true, Checked: now, Interval: "5s", WatchdogNote: "no board section", Systemd: true}
	b.Reset()
	printStatus(&b, &st, now)
	require.NotContains(t, b.String(), "board    ")
	require.Contains(t, b.String(), "health   ok (checked every 5s)\n         watchdog: none (no board section)\n         systemd watchdog: kicked\n")
}
