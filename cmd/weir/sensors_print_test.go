package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/sensors/line"
	"github.com/weirgw/weir/sensors/modbus/poll"
)

// `weir sensors` fits an 80-column console for a site's ordinary names:
// it printed tables 136 to 140 columns wide, its counters as literal \t.
func TestSensorsFit80Columns(t *testing.T) {
	now := time.Now()
	c := poll.Counters{Attempts: 123456, Polls: 61728, PollsFailed: 12, CRCErrors: 1234, ShortFrames: 5, OverlongFrames: 1,
		OtherFrames: 2, Timeouts: 33, Exceptions: 4, Retries: 40}
	s := &gateway.Sensors{At: now, Modbus: poll.Status{Buses: []poll.BusStatus{{
		Name: "rs485-1", Type: poll.BusRTU, Line: "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0",
		State: "open", Counters: c, FrameErrorRate1m: 0.0123, FrameErrorRate15m: 0.0101, DiagnosticsSuppressed: 1200,
		Devices: []poll.DeviceStatus{
			{Name: "flow-meter", Unit: 7, State: "ok", LastPoll: now.Add(-140 * time.Millisecond), RoundTrip: "13.163683ms",
				Counters: c, FrameErrorRate1m: 0.0123, FrameErrorRate15m: 0.1,
				Values: []poll.Value{{Name: "flow", Text: "12.854574", Unit: "m3/h"}, {Name: "level", Text: "1198", Unit: "mm"},
					{Name: "volume", Text: "82", Unit: "m3"}, {Name: "status", Text: "1"}, {Name: "status.running", Text: "true"},
					{Name: "pump", Text: "true"}, {Name: "temperature", Text: "21.5", Unit: "°C"}}},
			{Name: "pump-ctrl-12", Unit: 247, State: "failing", Backoff: "4s", LastError: "no answer within 500ms to read holding 0..9 on unit 247",
				LastVerdict: "timeout", Counters: poll.Counters{Polls: 100000, PollsFailed: 100000, Timeouts: 100000}},
		},
	}}}, Lines: []gateway.LineSensor{{Name: "gps", Device: "/dev/ttyS2", Stats: line.Stats{Lines: 123456, OK: 123000, Open: true, LastLine: now.UnixNano()}}}}
	var b bytes.Buffer
	printSensors(&b, s)
	out := b.String()
	t.Logf("\n%s", out)
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.HasPrefix(l, "bus ") {
			continue // the bus's line is named as configured, however long
		}
		require.LessOrEqual(t, utf8.RuneCountInString(l), 80, "%q", l)
	}
	require.NotContains(t, out, `\t`)
	require.Contains(t, out, "    frame errors 1242 (crc 1234, short 5, long 1, other 2); timeouts 33,\n    exceptions 4, retries 40\n")
	require.Contains(t, out, "flow-meter:  flow=12.854574 m3/h  level=1198 mm")
	require.Contains(t, out, "13.2ms")
	require.Contains(t, out, "pump-ctrl-12: backed off, next poll in 4s")
	require.Contains(t, out, "line sensor gps (/dev/ttyS2): open")
}
