package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/sensors/serialport"
	"github.com/weirgw/weir/sensors/serialport/serialtest"
)

func openPTY(t *testing.T, dev string) *serialport.Port {
	t.Helper()
	cfg := serialport.DefaultConfig()
	cfg.Device, cfg.Baud = dev, 115200
	p, err := serialport.Open(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// flipRelay copies frames (bytes without a 3 ms gap) from src to dst and
// flips one random bit in every nth (0: none).
func flipRelay(ctx context.Context, src, dst *serialport.Port, nth int, frames, flipped *atomic.Int64) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		n := 0
		_ = src.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		for n < len(buf) {
			k, err := src.Read(buf[n:])
			n += k
			if err != nil {
				break
			}
			_ = src.SetReadDeadline(time.Now().Add(3 * time.Millisecond))
		}
		if n == 0 {
			continue
		}
		if f := frames.Add(1); nth > 0 && f%int64(nth) == 0 {
			bit := rng.IntN(8 * n)
			buf[bit/8] ^= 1 << (bit % 8)
			flipped.Add(1)
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

type spooledEvent struct {
	Kind     string         `json:"kind"`
	Source   string         `json:"source"`
	Checksum string         `json:"checksum"`
	TimeNs   int64          `json:"time_ns"`
	Fields   map[string]any `json:"fields"`
}

// TestSensorsEndToEnd: the built gateway polls a Modbus slave over a real
// tty (socat pty pairs) through a relay that flips a bit in every 4th
// answer. Every reading in the spool holds exactly the slave's values and
// says its checksum was ok; the damaged frames are counted as frame errors
// (nearly all CRC) and kept, raw, in diagnostic records; `weir sensors` and
// `weir sensors read` show it all.
func TestSensorsEndToEnd(t *testing.T) {
	weir, _ := buildBinaries(t)
	gwEnd, relayA := serialtest.PTYPair(t)
	relayB, slaveEnd := serialtest.PTYPair(t)

	s := modbustest.New(5, 100)
	s.Lock()
	s.Holding[0], s.Holding[1] = 0x4148, 0x0000 // float32 12.5, ABCD
	s.Holding[2], s.Holding[3] = 0x7960, 0xFFFE // int32 -100000, CDAB
	s.Holding[4] = 1234                         // ×0.1 = 123.4
	s.Holding[5], s.Holding[6] = 0x5055, 0x4D50 // "PUMP"
	s.Coils[3] = true
	s.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	slavePort := openPTY(t, slaveEnd)
	wg.Go(func() { _ = s.ServeRTU(ctx, slavePort) })
	var reqFrames, reqFlipped, respFrames, respFlipped atomic.Int64
	ra, rb := openPTY(t, relayA), openPTY(t, relayB)
	wg.Go(func() { flipRelay(ctx, ra, rb, 0, &reqFrames, &reqFlipped) })
	wg.Go(func() { flipRelay(ctx, rb, ra, 4, &respFrames, &respFlipped) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "weir.yaml")
	cfg := fmt.Sprintf(`gateway: {id: e2e-sensors}
data_dir: %s/data
metrics: {listen: ""}
inputs:
  files: []
  modbus:
    buses:
      - {name: rs485, serial: {device: %s, baud: 115200}, timeout: 200ms, diagnostics_per_minute: 6000}
    devices:
      - name: meter
        bus: rs485
        unit: 5
        interval: 25ms
        retries: 0
        registers:
          - {name: flow, register: holding, address: 0, type: float32, unit: m3/h}
          - {name: delta, register: holding, address: 2, type: int32, order: CDAB}
          - {name: level, register: holding, address: 4, scale: 0.1, unit: m}
          - {name: model, register: holding, address: 5, type: string, length: 2}
          - {name: pump, register: coil, address: 3}
`, dir, gwEnd)
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	e := &e2e{t: t, dir: dir}
	stop := e.start("gateway", weir, "run", "--config", cfgPath)
	socket := filepath.Join(dir, "data", "weir.sock")
	require.Eventually(t, func() bool { _, err := os.Stat(socket); return err == nil }, 10*time.Second, 20*time.Millisecond)
	// Polls every 50ms, some answers damaged on the way: wait for enough
	// readings and a damaged frame however slow the machine is.
	require.Eventually(t, func() bool {
		qctx, qcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer qcancel()
		recs, err := gateway.FetchSpoolRecords(qctx, socket, 0, 10000)
		if err != nil {
			return false
		}
		var readings, diags int
		for _, r := range recs {
			var ev spooledEvent
			if json.Unmarshal(r.Event, &ev) != nil {
				continue
			}
			switch {
			case ev.Source == "modbus:meter" && ev.Kind == "reading":
				readings++
			case ev.Source == "modbus:rs485" && ev.Kind == "telemetry":
				diags++
			}
		}
		return readings >= 20 && diags > 0
	}, 90*time.Second, 200*time.Millisecond, "20 readings and a damaged frame's diagnostic in the spool")

	out := e.run(weir, "sensors", "--config", cfgPath)
	t.Logf("weir sensors:\n%s", out)
	require.Contains(t, out, "meter")
	require.Contains(t, out, "flow=12.5 m3/h")
	// A one-off read through the daemon; the relay may damage its answer
	// too, which it then reports (a non-zero exit) with the raw frames.
	read, _ := runMayFail(weir, "sensors", "read", "meter", "--config", cfgPath)
	t.Logf("weir sensors read meter:\n%s", read)
	require.Contains(t, read, "frames:")
	require.Contains(t, read, " tx  05 03 00 00 00 07", "the request's raw bytes")

	// --direct with the daemon running is refused, naming it: two
	// masters on one line would garble each other's frames.
	direct, err := runMayFail(weir, "sensors", "read", "meter", "--direct", "--config", cfgPath)
	require.Error(t, err, direct)
	require.Regexp(t, `^weir: modbus: bus rs485: serialport: `+regexp.QuoteMeta(gwEnd)+` is in use by pid \d+ \(\S*weir run --config `+regexp.QuoteMeta(cfgPath)+`\): --direct needs the line to itself`, direct)

	qctx, qcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer qcancel()
	st, err := gateway.FetchSensors(qctx, socket)
	require.NoError(t, err)
	recs, err := gateway.FetchSpoolRecords(qctx, socket, 0, 10000)
	require.NoError(t, err)
	stop()

	bus := st.Modbus.Buses[0]
	t.Logf("relay: %d answers, %d flipped; bus counters %+v, frame-error rate 1m %.3f", respFrames.Load(), respFlipped.Load(), bus.Counters, bus.FrameErrorRate1m)
	require.Positive(t, bus.Counters.CRCErrors, "flipped bits counted as CRC errors")
	require.Positive(t, bus.FrameErrorRate1m)
	var readings, diags int
	for _, r := range recs {
		var ev spooledEvent
		require.NoError(t, json.Unmarshal(r.Event, &ev))
		switch {
		case ev.Source == "modbus:meter" && ev.Kind == "reading":
			readings++
			require.Equal(t, "ok", ev.Checksum)
			require.Equal(t, 12.5, ev.Fields["flow"], "seq %d", r.Seq)
			require.Equal(t, -100000.0, ev.Fields["delta"], "seq %d", r.Seq)
			require.Equal(t, 123.4, ev.Fields["level"], "seq %d", r.Seq)
			require.Equal(t, "PUMP", ev.Fields["model"], "seq %d", r.Seq)
			require.Equal(t, true, ev.Fields["pump"], "seq %d", r.Seq)
		case ev.Source == "modbus:rs485" && ev.Kind == "telemetry":
			diags++
			require.Equal(t, "bad", ev.Checksum)
			require.NotEmpty(t, ev.Fields["raw_hex"])
			require.Contains(t, []any{"crc_error", "short_frame", "overlong_frame", "wrong_unit", "wrong_function", "frame_error"}, ev.Fields["verdict"])
		}
	}
	t.Logf("spool: %d readings, %d diagnostic records", readings, diags)
	require.GreaterOrEqual(t, readings, 20)
	require.Positive(t, diags)
	require.LessOrEqual(t, uint64(readings), bus.Counters.Polls-bus.Counters.PollsFailed+5, "no failed poll made a reading (the records were fetched a moment after the counters)")
	require.GreaterOrEqual(t, uint64(diags), bus.Counters.FrameErrors()-2, "a diagnostic per damaged frame (the last may not be spooled yet)")

	// With the daemon stopped, --direct opens the line itself.
	direct, _ = runMayFail(weir, "sensors", "read", "meter", "--direct", "--config", cfgPath)
	t.Logf("weir sensors read meter --direct:\n%s", direct)
	require.Contains(t, direct, "frames:")
	require.True(t, strings.Contains(direct, "flow") || strings.Contains(direct, "error"))
}

func runMayFail(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// TestLineSensorWired: inputs.lines starts a line sensor in the gateway;
// its lines reach the spool with their checksum verdicts and show in weir
// sensors.
func TestLineSensorWired(t *testing.T) {
	weir, _ := buildBinaries(t)
	gwEnd, devEnd := serialtest.PTYPair(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "weir.yaml")
	cfg := fmt.Sprintf(`gateway: {id: e2e-lines}
data_dir: %s/data
metrics: {listen: ""}
inputs:
  files: []
  lines:
    - {name: gps1, port: {device: %s, baud: 115200}, flush_interval: 50ms}
`, dir, gwEnd)
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	e := &e2e{t: t, dir: dir}
	stop := e.start("gateway", weir, "run", "--config", cfgPath)
	socket := filepath.Join(dir, "data", "weir.sock")
	require.Eventually(t, func() bool { _, err := os.Stat(socket); return err == nil }, 10*time.Second, 20*time.Millisecond)
	gps := openPTY(t, devEnd)
	good := "$GPGLL,4916.45,N,12311.12,W,225444,A*31\r\n"
	var xor byte
	for _, c := range []byte("GPGLL,4916.45,N,12311.12,W,225444,A") {
		xor ^= c
	}
	require.Equal(t, "31", fmt.Sprintf("%02X", xor), "the test's own sentence is right")
	bad := "$GPGLL,4916.45,N,12311.12,W,225444,A*32\r\n"
	time.Sleep(300 * time.Millisecond) // the sensor opens its port
	for range 3 {
		_, err := gps.Write([]byte(good + bad))
		require.NoError(t, err)
	}
	var recs []gateway.SpoolRecord
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		recs, err = gateway.FetchSpoolRecords(ctx, socket, 0, 1000)
		n := 0
		for _, r := range recs {
			if strings.Contains(string(r.Event), `"source":"gps1"`) {
				n++
			}
		}
		return err == nil && n == 6
	}, 10*time.Second, 50*time.Millisecond)
	out := e.run(weir, "sensors", "--config", cfgPath)
	t.Logf("weir sensors:\n%s", out)
	require.Contains(t, out, "gps1")
	stop()
	verdicts := map[string]int{}
	for _, r := range recs {
		var ev spooledEvent
		require.NoError(t, json.Unmarshal(r.Event, &ev))
		if ev.Source == "gps1" {
			verdicts[ev.Checksum]++
		}
	}
	require.Equal(t, map[string]int{"ok": 3, "bad": 3}, verdicts)
}
