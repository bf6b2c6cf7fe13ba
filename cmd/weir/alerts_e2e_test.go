package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

// throttle is a TCP proxy that paces the gateway-to-collector direction
// at rate bytes a second (0: unpaced), as a thin site link does.
type throttle struct {
	ln     net.Listener
	target string
	rate   atomic.Int64
}

func newThrottle(t *testing.T, target string, rate int64) *throttle {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &throttle{ln: ln, target: target}
	p.rate.Store(rate)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
	return p
}

func (p *throttle) handle(c net.Conn) {
	defer c.Close()
	d, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer d.Close()
	go func() { _, _ = io.Copy(c, d); c.Close() }()
	buf := make([]byte, 4<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if r := p.rate.Load(); r > 0 {
				time.Sleep(time.Duration(int64(n) * int64(time.Second) / r))
			}
			if _, werr := d.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// multidrop is an RS-485 bus of two slaves: the master's frames go to
// both, each slave's answer back to the master, with a bit flipped in
// every answer while burst is set (EMI on the bus).
type multidrop struct {
	burst   atomic.Bool
	flipped atomic.Int64
}

// readFrame reads bytes until 3 ms of silence.
func readFrame(ctx context.Context, p *serialport.Port, buf []byte) int {
	n := 0
	_ = p.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	for n < len(buf) && ctx.Err() == nil {
		k, err := p.Read(buf[n:])
		n += k
		if err != nil {
			break
		}
		_ = p.SetReadDeadline(time.Now().Add(3 * time.Millisecond))
	}
	return n
}

// startBus makes the bus: the gateway's end of its line, two slaves
// (units 1 and 2) behind the relay.
func (m *multidrop) startBus(t *testing.T, ctx context.Context, wg *sync.WaitGroup) string {
	gwEnd, masterSide := serialtest.PTYPair(t)
	master := openPTY(t, masterSide)
	var slaves []*serialport.Port
	var mu sync.Mutex
	for unit := byte(1); unit <= 2; unit++ {
		relaySide, slaveEnd := serialtest.PTYPair(t)
		s := modbustest.New(unit, 16)
		s.Holding[0] = uint16(100 * unit)
		sp := openPTY(t, slaveEnd)
		wg.Go(func() { _ = s.ServeRTU(ctx, sp) })
		rp := openPTY(t, relaySide)
		slaves = append(slaves, rp)
		wg.Go(func() {
			buf := make([]byte, 512)
			for ctx.Err() == nil {
				n := readFrame(ctx, rp, buf)
				if n == 0 {
					continue
				}
				if m.burst.Load() {
					buf[n/2] ^= 0x10
					m.flipped.Add(1)
				}
				mu.Lock()
				_, _ = master.Write(buf[:n])
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		buf := make([]byte, 512)
		for ctx.Err() == nil {
			n := readFrame(ctx, master, buf)
			if n == 0 {
				continue
			}
			for _, s := range slaves {
				_, _ = s.Write(buf[:n])
			}
		}
	})
	return gwEnd
}

type alertSinkRecord struct {
	Seq    uint64         `json:"seq"`
	Source string         `json:"source"`
	Kind   string         `json:"kind"`
	Fields map[string]any `json:"fields"`
	Msg    string         `json:"message"`
}

func readAlertSink(t *testing.T, path string) []alertSinkRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []alertSinkRecord
	seen := map[uint64]bool{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r alertSinkRecord
		require.NoError(t, json.Unmarshal(line, &r))
		require.False(t, seen[r.Seq], "sequence %d delivered twice", r.Seq)
		seen[r.Seq] = true
		out = append(out, r)
	}
	return out
}

// TestCorrelatedAlertJumpsTheQueue: with the link throttled and 100,000
// ordinary records queued, a burst of CRC errors on two RS-485 buses (two
// devices each) makes one correlated EMI alert (the distributed pattern
// over the modbus_frame_error event type), which reaches the collector
// before the backlog queued ahead of it; every damaged frame's record
// carries the alert's correlation id; the NOTIFY command gets the alert on
// its standard input; weir alerts, weir status --json and the Prometheus
// endpoint count it.
func TestCorrelatedAlertJumpsTheQueue(t *testing.T) {
	weir, coll := buildBinaries(t)
	dir := t.TempDir()
	e := &e2e{t: t, dir: dir, weir: weir, coll: coll, pki: filepath.Join(dir, "pki"), sink: filepath.Join(dir, "sink.jsonl"), addr: freeAddr(t)}
	e.run(coll, "pki", "init", "--dir", e.pki)
	e.run(coll, "pki", "issue-collector", "localhost", "--dir", e.pki)
	e.run(coll, "pki", "issue-gateway", "gw-alerts", "--dir", e.pki)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []string{"gateway.log", "collector.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
					t.Logf("%s (last 4 KiB):\n%s", n, b[max(0, len(b)-4096):])
				}
			}
		}
	})

	// 100,000 ordinary lines, hard to compress, queued before the start.
	const backlog = 100_000
	logFile := filepath.Join(dir, "logs", "app.log")
	require.NoError(t, os.MkdirAll(filepath.Dir(logFile), 0o755))
	f, err := os.Create(logFile)
	require.NoError(t, err)
	w := bufio.NewWriter(f)
	noise := make([]byte, 40)
	for i := range backlog {
		_, _ = rand.Read(noise)
		fmt.Fprintf(w, "pump-3 flow=12.%d m3/h line=%d trace=%s\n", i%10, i, hex.EncodeToString(noise))
	}
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var bus multidrop
	busA, busB := bus.startBus(t, ctx, &wg), bus.startBus(t, ctx, &wg)
	t.Cleanup(func() { cancel(); wg.Wait() })

	e.startCollector()
	link := newThrottle(t, e.addr, 150<<10)
	metrics := freeAddr(t)
	got := filepath.Join(dir, "notify.json")
	device := func(name, bus string, unit int) string {
		return fmt.Sprintf("      - {name: %s, bus: %s, unit: %d, interval: 100ms, retries: 0, registers: [{name: v, register: holding, address: 0}]}\n", name, bus, unit)
	}
	cfg := fmt.Sprintf(`gateway: {id: gw-alerts}
data_dir: %[1]s/data
telemetry_interval: 1h
metrics: {listen: "%[2]s"}
inputs:
  files:
    - {name: app, paths: ["%[3]s"], start_at: beginning, poll_interval: 20ms}
  modbus:
    buses:
      - {name: bus-a, serial: {device: %[4]s, baud: 115200}, timeout: 150ms, diagnostics_per_minute: 6000}
      - {name: bus-b, serial: {device: %[5]s, baud: 115200}, timeout: 150ms, diagnostics_per_minute: 6000}
    devices:
%[6]suplink:
  endpoints: [{address: "%[7]s", server_name: localhost}]
  tls: {ca: %[8]s/ca.pem, cert: %[8]s/gateway-gw-alerts.pem, key: %[8]s/gateway-gw-alerts-key.pem}
  batch_max_records: 500
  window: 4
  telemetry_interval: 1h
  reconnect_min: 50ms
  reconnect_max: 200ms
rules:
  actions:
    notify: {led: slow, command: [/bin/sh, -c, 'cat > "$0"', "%[9]s"], timeout: 5s}
`, dir, metrics, logFile, busA, busB,
		device("meter-a1", "bus-a", 1)+device("meter-a2", "bus-a", 2)+device("meter-b1", "bus-b", 1)+device("meter-b2", "bus-b", 2),
		link.ln.Addr().String(), e.pki, got)
	cfgPath := filepath.Join(dir, "weir.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	e.start("gateway", weir, "run", "--config", cfgPath)
	socket := filepath.Join(dir, "data", "weir.sock")
	require.Eventually(t, func() bool { _, err := os.Stat(socket); return err == nil }, 20*time.Second, 20*time.Millisecond)

	status := func() *gateway.Status {
		qctx, qcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer qcancel()
		st, err := gateway.FetchStatus(qctx, socket)
		require.NoError(t, err)
		return st
	}
	// The backlog is queued and the link drains it slowly.
	require.Eventually(t, func() bool {
		st := status()
		return st.Counters.EventsLogged >= backlog && st.Counters.EventsShipped < backlog/2
	}, 60*time.Second, 100*time.Millisecond, "100,000 records queued behind the throttled link")
	queued := status()
	t.Logf("queued: %d logged, %d shipped, %d in the spool", queued.Counters.EventsLogged, queued.Counters.EventsShipped, queued.Counters.QueueSize)

	// The burst: every answer on both buses damaged for 1.5 s.
	bus.burst.Store(true)
	time.Sleep(1500 * time.Millisecond)
	bus.burst.Store(false)
	t.Logf("burst: %d answers damaged", bus.flipped.Load())

	var alert alertSinkRecord
	var before int
	require.Eventually(t, func() bool {
		recs := readAlertSink(t, e.sink)
		before = 0
		for _, r := range recs {
			if r.Source == "weir:rules" {
				alert = r
				return true
			}
			if r.Source == "app" {
				before++
			}
		}
		return false
	}, 90*time.Second, 200*time.Millisecond, "the alert reaches the collector")
	t.Logf("alert at the collector after %d of %d backlog records: %s", before, backlog, alert.Msg)
	require.Less(t, before, backlog/2, "the alert came ahead of the backlog")
	require.Equal(t, "distributed", alert.Fields["pattern"])
	require.Equal(t, "modbus_frame_error", alert.Fields["rule"])
	require.Equal(t, "NOTIFY", alert.Fields["level"])
	corr, _ := alert.Fields["correlation_id"].(string)
	require.True(t, strings.HasPrefix(corr, "distributed:modbus_frame_error:"), corr)

	// Unthrottled, the rest drains; then every record is there once.
	link.rate.Store(0)
	require.Eventually(t, func() bool {
		st := status()
		return st.Spool.Records == 0 || st.Counters.EventsShipped >= st.Counters.EventsLogged
	}, 120*time.Second, 200*time.Millisecond, "the backlog drains")
	recs := readAlertSink(t, e.sink)
	var apps, behind, alerts, damaged int
	pos := -1
	for i, r := range recs {
		switch {
		case r.Source == "app":
			apps++
			if pos >= 0 && r.Seq < alert.Seq {
				behind++
			}
		case r.Source == "weir:rules":
			alerts++
			pos = i
		case strings.HasPrefix(r.Source, "modbus:bus-") && r.Kind == "telemetry":
			damaged++
			require.Equal(t, corr, r.Fields["correlation_id"], "damaged frame record %d (%v) carries the correlation id", r.Seq, r.Fields["device"])
		}
	}
	require.Equal(t, backlog, apps, "every backlog record, once")
	require.Equal(t, 1, alerts, "one alert: one correlation, no other rule")
	require.Greater(t, behind, backlog/2, "most of the backlog queued before the alert arrived after it")
	require.GreaterOrEqual(t, damaged, 3)
	t.Logf("%d damaged-frame records, all with %s; %d backlog records queued before the alert arrived after it", damaged, corr, behind)

	// The local action, the CLI, the status counters and Prometheus.
	require.Eventually(t, func() bool { _, err := os.Stat(got); return err == nil }, 10*time.Second, 50*time.Millisecond)
	j, err := os.ReadFile(got)
	require.NoError(t, err)
	require.Contains(t, string(j), corr, "the NOTIFY command got the alert as JSON")
	out := e.run(weir, "alerts", "--config", cfgPath)
	t.Logf("weir alerts:\n%s", out)
	require.Contains(t, out, "alerts raised: NOTIFY 1")
	require.Contains(t, out, corr)
	st := status()
	require.Equal(t, uint64(1), st.Counters.Alerts["NOTIFY"])
	require.Equal(t, uint64(1), st.Counters.Correlations["distributed"])
	require.GreaterOrEqual(t, st.Uplink.RecordsAhead, uint64(1))
	resp, err := http.Get("http://" + metrics + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `weir_correlations_total{pattern="distributed"} 1`)
	require.Contains(t, string(body), `weir_alerts_total{level="NOTIFY"} 1`)
	require.Contains(t, string(body), "weir_events_shipped_total")
}
