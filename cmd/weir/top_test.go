package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/sensors/hostlog"
	"github.com/weirgw/weir/sensors/modbus/poll"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink/sender"
)

func topFixture(now time.Time, appended, acked uint64) *topView {
	return &topView{
		at: now,
		status: &gateway.Status{Gateway: "pump-station-3", Version: "v1.4.2-17-gabcdef0", Started: now.Add(-26 * time.Hour),
			Appended: appended,
			Sources:  []hostlog.TailStatus{{Name: "pump-station", Lines: 123456}, {Name: "system", Lines: 99, Errors: 2}},
			Spool:    spool.Stats{Records: 12, Bytes: 4096, Used: 8192, MaxBytes: 4 << 30, DiskBytes: 1 << 20, Oldest: now.Add(-time.Second)},
			Uplink: sender.Status{State: "connected", Endpoint: "tls://collector.example.net:7443", ConnectedAt: now.Add(-time.Hour),
				RecordsAcked: acked, LastAckAt: now.Add(-300 * time.Millisecond)}},
		link: &gateway.Link{Uplink: sender.Status{Endpoints: []sender.EndpointStatus{{Active: true, SRTTMillis: 12.5, Loss1m: 0.001, Loss15m: 0.002}}}},
		clock: &ptp.Status{Mode: ptp.ModeBuiltin, State: "locked", ErrorBoundNS: 3074, Grandmaster: "9aa27d.fffe.5569d2",
			OffsetNS: 163, PathDelayNS: 2762, LastSync: now.Add(-147 * time.Millisecond)},
		sensors: &gateway.Sensors{At: now, Modbus: poll.Status{Buses: []poll.BusStatus{{Name: "rs485-1", Type: poll.BusRTU, State: "open",
			Counters: poll.Counters{Attempts: 44, CRCErrors: 2}, FrameErrorRate1m: 0.0454,
			Devices: []poll.DeviceStatus{{Name: "flow-meter", Unit: 7, State: "ok", LastPoll: now.Add(-458 * time.Millisecond), RoundTrip: "2.987ms",
				Counters: poll.Counters{Polls: 22},
				Values: []poll.Value{{Name: "flow", Text: "13.411559", Unit: "m3/h"}, {Name: "level", Text: "1181", Unit: "mm"},
					{Name: "volume", Text: "213", Unit: "m3"}, {Name: "status", Text: "1"}, {Name: "status.running", Text: "true"},
					{Name: "pump", Text: "true"}}}}}}}},
	}
}

// `weir top` is one screen of 80 columns: records and their rates, the
// link, the spool, the clock and its bound, the sensors' values and
// frame-error rates.
func TestTopScreen(t *testing.T) {
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	prev := topFixture(now.Add(-2*time.Second), 1000, 900)
	cur := topFixture(now, 1100, 1080)
	var b bytes.Buffer
	renderTop(&b, cur, prev, []string{"make demo: Ctrl-C ends it", strings.Repeat("a long title ", 10)}, "/run/weir/weir.sock")
	out := b.String()
	t.Logf("\n%s", out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, l := range lines {
		require.LessOrEqual(t, utf8.RuneCountInString(l), screenWidth, "%q", l)
	}
	require.LessOrEqual(t, len(lines), 24, "fits a 24-line console")
	require.Equal(t, "make demo: Ctrl-C ends it", lines[0])
	require.True(t, strings.HasPrefix(lines[2], "weir top  pump-station-3  (weir v1.4.2-17-gabcdef0, up 26h0m0s)"), lines[2])
	require.True(t, strings.HasSuffix(lines[2], "10:00:00 UTC"), lines[2])
	for _, want := range []string{
		"records  1100 stored (50/s), 1080 acked by the collector (90/s)",
		"sources  pump-station 123456 lines, system 99 lines (2 errors),\n         modbus flow-meter 22 polls\n",
		"link     connected tls://collector.example.net:7443 for 1h0m0s, rtt 12.5ms,",
		"spool    backlog 12 records (4.0 KiB, 0.0% of 4.0 GiB), oldest 1s,\n         1.0 MiB on disk\n",
		"clock    locked, error bound ±3.074µs, mode builtin,\n         grandmaster 9aa27d.fffe.5569d2, offset 163ns, path delay 2.762µs,\n         last sync 147ms ago\n",
		"modbus   rs485-1 open (rtu), 44 requests, 2 frame errors,",
		"frame-error rate 4.54%/0.00% (1m/15m)",
		"flow-meter unit 7 ok, polled 458ms ago, rtt 3ms, 0 failed",
		"flow=13.411559 m3/h  level=1181 mm  volume=213 m3",
	} {
		require.Contains(t, out, want)
	}

	// The system clock: free-running, and the screen says why.
	cur.clock = &ptp.Status{Mode: ptp.ModeSystem, State: "freerun", ErrorBoundNS: -1}
	b.Reset()
	renderTop(&b, cur, nil, nil, "/run/weir/weir.sock")
	require.Contains(t, b.String(), "clock    freerun, bound unknown\n         clock.mode is system: Weir does not synchronise the clock (builtin or\n")
	require.NotContains(t, b.String(), "/s)", "no rate without an earlier refresh")

	// A daemon that does not answer is said to, and top keeps trying.
	b.Reset()
	renderTop(&b, &topView{at: now, err: errors.New("dial unix /run/weir/weir.sock: connect: no such file or directory")}, nil, nil, "/run/weir/weir.sock")
	require.Contains(t, b.String(), "daemon   not answering on /run/weir/weir.sock: dial unix")
	require.Contains(t, b.String(), "Trying again.")
}
