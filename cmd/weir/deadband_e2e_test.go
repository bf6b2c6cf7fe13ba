package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/sensors/modbus"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
)

// TestDeadbandEndToEnd: the built gateway polls a simulated Modbus
// sensor every 50 ms through a deadband of 1 % with a 15 s heartbeat. A
// value drifting 0.02 % a tenth of a second is spooled at start and once
// when it has moved more than 1 %; a step is spooled at once; so is an
// exception, its clearing and the reading after it; then, the value
// still, one reading at the heartbeat; nothing else.
func TestDeadbandEndToEnd(t *testing.T) {
	// Longer than any gap between the readings the test moves (the drift
	// leaves the band about 5.6 s after the start): the only heartbeat is
	// the one after the last move.
	const heartbeat = 15 * time.Second
	weir, _ := buildBinaries(t)
	dir := t.TempDir()
	s := modbustest.New(1, 10)
	s.Lock()
	s.Holding[0] = 10000 // ×0.01: 100.00
	s.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.ServeTCP(ctx, ln) }()

	cfgPath := filepath.Join(dir, "weir.yaml")
	cfg := fmt.Sprintf(`gateway: {id: e2e-deadband}
data_dir: %s/data
telemetry_interval: 1h
metrics: {listen: ""}
inputs:
  files: []
  modbus:
    buses: [{name: plc, type: tcp, address: "%s", timeout: 500ms}]
    devices:
      - {name: pt1, bus: plc, unit: 1, interval: 50ms, registers: [{name: level, register: holding, address: 0, scale: 0.01}]}
processors:
  inputs:
    modbus.plc:
      - deadband: {percent: 1, heartbeat: %s}
`, dir, ln.Addr(), heartbeat)
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	e := &e2e{t: t, dir: dir}
	stop := e.start("gateway", weir, "run", "--config", cfgPath)
	socket := filepath.Join(dir, "data", "weir.sock")
	require.Eventually(t, func() bool { _, err := os.Stat(socket); return err == nil }, 10*time.Second, 20*time.Millisecond)
	set := func(raw uint16) {
		s.Lock()
		s.Holding[0] = raw
		s.Unlock()
	}
	time.Sleep(500 * time.Millisecond)
	// The drift: 100.00 to 101.60, 0.02 every 100 ms.
	for i := 1; i <= 80; i++ {
		set(uint16(10000 + 2*i))
		time.Sleep(100 * time.Millisecond)
	}
	stepAt := time.Now()
	set(15000)
	time.Sleep(time.Second)
	excAt := time.Now()
	s.SetHook(func(pdu []byte) []byte {
		if modbustest.ReadAt(pdu, 0) {
			return modbustest.Exception(pdu, modbus.IllegalDataAddress)
		}
		return nil
	})
	time.Sleep(time.Second)
	clearAt := time.Now()
	s.SetHook(nil)
	// Then nothing moves: the heartbeat spools one reading a heartbeat
	// after the last one.
	time.Sleep(heartbeat + 2*time.Second)

	qctx, qcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer qcancel()
	recs, err := gateway.FetchSpoolRecords(qctx, socket, 0, 10000)
	require.NoError(t, err)
	st, err := gateway.FetchStatus(qctx, socket)
	require.NoError(t, err)
	stop()

	type reading struct {
		at      time.Time
		level   any
		quality any
	}
	var got []reading
	for _, r := range recs {
		var ev spooledEvent
		require.NoError(t, json.Unmarshal(r.Event, &ev))
		if ev.Source != "modbus:pt1" || ev.Kind != "reading" {
			continue
		}
		got = append(got, reading{at: time.Unix(0, ev.TimeNs), level: ev.Fields["level"], quality: ev.Fields["quality"]})
	}
	for _, g := range got {
		t.Logf("%s level=%v quality=%v", g.at.Format("15:04:05.000"), g.level, g.quality)
	}
	require.Len(t, st.Processors, 1)
	db := st.Processors[0].Steps[0]
	t.Logf("deadband: %d readings in, %d spooled", db.In, db.Out)
	require.Len(t, got, 7, "start, the drift past 1 %%, the step, the exception, its clearing, the reading after it, the heartbeat")
	require.InDelta(t, 100.0, got[0].level, 1e-9)
	require.Greater(t, got[1].level, 101.0)
	require.LessOrEqual(t, got[1].level, 101.2, "spooled within a poll or two of leaving the band")
	require.InDelta(t, 150.0, got[2].level, 1e-9)
	require.Less(t, got[2].at.Sub(stepAt), 500*time.Millisecond, "the step at once")
	require.Equal(t, "exception", got[3].quality)
	require.Less(t, got[3].at.Sub(excAt), 500*time.Millisecond, "the exception at once")
	require.Equal(t, "ok", got[4].quality, "the clearing")
	require.Less(t, got[4].at.Sub(clearAt), 500*time.Millisecond)
	require.InDelta(t, 150.0, got[5].level, 1e-9)
	require.Nil(t, got[5].quality)
	require.InDelta(t, 150.0, got[6].level, 1e-9)
	hb := got[6].at.Sub(got[5].at)
	require.GreaterOrEqual(t, hb, heartbeat, "the heartbeat: not before it is due")
	require.Less(t, hb, heartbeat+time.Second, "the heartbeat: at the first poll a heartbeat after the last reading spooled")
	require.Greater(t, db.In, uint64(400), "the sensor was polled all along")
	require.Equal(t, uint64(7), db.Out)
}
