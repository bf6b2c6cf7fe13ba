package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/board/boardtest"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/pki"
	"github.com/weirgw/weir/uplink/sender"
)

func TestLEDStates(t *testing.T) {
	now := time.Now()
	base := ledInputs{now: now, ready: true, health: Health{OK: true}, alertHold: time.Minute,
		link:  sender.Status{State: sender.StateConnected, Endpoint: "tls://c:7443"},
		spool: spool.Stats{MaxBytes: 100 << 20}, clock: ptp.Status{Mode: ptp.ModeSystem, State: "freerun"}}
	with := func(f func(*ledInputs)) ledInputs { in := base; f(&in); return in }
	cases := []struct {
		name string
		in   ledInputs
		led  board.LED
		want board.Pattern
		why  string
	}{
		{"running", base, board.LEDPower, board.On, "running"},
		{"starting", with(func(in *ledInputs) { in.ready = false }), board.LEDPower, board.Slow, "starting"},
		{"unhealthy", with(func(in *ledInputs) { in.health = Health{Problems: []string{"inputs.modbus: stuck"}} }),
			board.LEDPower, board.Fast, "unhealthy: inputs.modbus: stuck"},
		{"link up", base, board.LEDLink, board.On, "connected tls://c:7443"},
		{"no uplink", with(func(in *ledInputs) { in.link.State = sender.StateDisabled }), board.LEDLink, board.Off, "no uplink configured"},
		{"link down", with(func(in *ledInputs) {
			in.link.State, in.link.LastError, in.link.LastReason = sender.StateBackoff, "refused", uplink.ReasonRefused
		}), board.LEDLink, board.Fast, "down: refused"},
		{"link degraded: an endpoint down", with(func(in *ledInputs) {
			in.link.Endpoints = []sender.EndpointStatus{{Endpoint: "tls://b:7443", OutageSince: now}}
		}), board.LEDLink, board.Slow, "degraded: tls://b:7443 down"},
		{"link degraded: loss", with(func(in *ledInputs) {
			in.link.Endpoints = []sender.EndpointStatus{{Endpoint: "dtls://c:7443", Active: true, Loss1m: 0.2}}
		}), board.LEDLink, board.Slow, "degraded: 20% loss to dtls://c:7443"},
		{"spool empty", base, board.LEDSpool, board.Off, "empty"},
		{"spool in transit", with(func(in *ledInputs) { in.spool.Records, in.spool.Oldest = 10, now.Add(-time.Second) }),
			board.LEDSpool, board.Off, "empty"},
		{"spool holding", with(func(in *ledInputs) { in.spool.Records, in.spool.Oldest = 10, now.Add(-time.Minute) }),
			board.LEDSpool, board.On, "holding 10 records"},
		{"spool filling", with(func(in *ledInputs) { in.spool.Records, in.spool.Used = 10, 91<<20 }),
			board.LEDSpool, board.Slow, "filling: bulk sources wait"},
		{"spool full", with(func(in *ledInputs) { in.spool.Used, in.refusedAt = 99<<20, now.Add(-time.Second) }),
			board.LEDSpool, board.Fast, "full: normal sources wait, critical records evict"},
		{"spool not writable", with(func(in *ledInputs) { in.health.SpoolProblem = "spool: cannot write" }),
			board.LEDSpool, board.Fast, "spool: cannot write"},
		{"no alert", base, board.LEDAlert, board.Off, ""},
		{"enclosure open", with(func(in *ledInputs) { in.tamperOpen = true }), board.LEDAlert, board.Fast, "enclosure open"},
		{"recent alert", with(func(in *ledInputs) { in.alertAt, in.alertMsg = now.Add(-time.Second), "evicted" }),
			board.LEDAlert, board.Fast, "alert: evicted"},
		{"old alert", with(func(in *ledInputs) { in.alertAt = now.Add(-time.Hour) }), board.LEDAlert, board.Off, ""},
		{"clock in holdover", with(func(in *ledInputs) { in.clock = ptp.Status{Mode: ptp.ModeLinuxPTP, State: "holdover"} }),
			board.LEDAlert, board.Slow, "clock in holdover"},
		{"system clock is not an alert", with(func(in *ledInputs) { in.clock.State = "freerun" }), board.LEDAlert, board.Off, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ledStates(c.in)[c.led]
			require.Equal(t, c.want, got.pattern, got.why)
			require.Equal(t, c.why, got.why)
		})
	}
}

// runBoardGateway runs the gateway of file until the test ends (it must stop
// cleanly then) and returns it once it is ready.
func runBoardGateway(t *testing.T, file string) *Gateway {
	t.Helper()
	g := newTestGateway(t, file)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, g.ready.Load, 20*time.Second, 10*time.Millisecond, "the gateway did not start")
	return g
}

// testCollector is an in-process collector on a fixed address that can
// be stopped and started again.
type testCollector struct {
	t      *testing.T
	pki    string
	addr   string
	sink   string
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func newTestCollector(t *testing.T, ids ...string) *testCollector {
	dir := t.TempDir()
	require.NoError(t, pki.InitCA(dir, "test", pki.Options{}))
	_, _, err := pki.IssueCollector(dir, "localhost", []string{"127.0.0.1"}, pki.Options{})
	require.NoError(t, err)
	for _, id := range ids {
		_, _, err := pki.IssueGateway(dir, id, pki.Options{})
		require.NoError(t, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	c := &testCollector{t: t, pki: dir, addr: addr, sink: filepath.Join(t.TempDir(), "sink.jsonl")}
	t.Cleanup(c.stop)
	return c
}

func (c *testCollector) start() {
	t := c.t
	j, err := collector.OpenJSONL(c.sink, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	cert, key := pki.CollectorFiles(c.pki, "localhost")
	tc, err := uplink.ServerTLS(uplink.TLSConfig{CA: filepath.Join(c.pki, pki.CACertFile), Cert: cert, Key: key})
	require.NoError(t, err)
	var ln net.Listener
	require.Eventually(t, func() bool { ln, err = net.Listen("tcp", c.addr); return err == nil }, 5*time.Second, 20*time.Millisecond)
	srv := collector.NewServer(collector.DefaultConfig(), tc, j, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, ln)
		_ = j.Close()
	}()
	c.mu.Lock()
	c.cancel, c.done = cancel, done
	c.mu.Unlock()
}

func (c *testCollector) stop() {
	c.mu.Lock()
	cancel, done := c.cancel, c.done
	c.cancel = nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// uplinkYAML is the uplink section for gateway id to this collector.
func (c *testCollector) uplinkYAML(id string) string {
	cert, key := pki.GatewayFiles(c.pki, id)
	return fmt.Sprintf(`uplink:
  endpoints: [{address: %q, server_name: localhost}]
  tls: {ca: %q, cert: %q, key: %q}
  reconnect_min: 50ms
  reconnect_max: 200ms
  flush_interval: 20ms
`, c.addr, filepath.Join(c.pki, pki.CACertFile), cert, key)
}

// TestBoardLEDsFollowTheGateway watches the sim board's LED pins while
// the collector goes away and the spool fills, then comes back.
func TestBoardLEDsFollowTheGateway(t *testing.T) {
	coll := newTestCollector(t, "gw-leds")
	coll.start()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "app.log")
	require.NoError(t, os.WriteFile(logFile, nil, 0o600))
	file := writeConfig(t, fmt.Sprintf(`gateway: {id: gw-leds}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
spool: {max_bytes: 1MiB}
inputs:
  files:
    - {name: app, paths: [%s], start_at: beginning, poll_interval: 20ms}
board:
  profile: sim
  watchdog: {interval: 100ms, stall: 2s}
%s`, filepath.Join(dir, "data"), logFile, coll.uplinkYAML("gw-leds")))
	g := runBoardGateway(t, file)
	sim := g.Board().Sim()
	led := func(name string, want board.Pattern) {
		t.Helper()
		got := boardtest.WaitFor(sim.Pin(name), gpio.High, want, 20*time.Second)
		require.Equal(t, want, got, "%s LED; board status: %+v", name, g.Board().Status().LEDs)
	}
	// connected: on, or slow while the sender counts loss on this
	// loopback session (retransmissions a loaded machine can cause).
	connected := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := boardtest.Watch(sim.Pin("link_led"), gpio.High, 0)
			st := g.Board().Status().LEDs
			degradedByLoss := got == board.Slow && slices.ContainsFunc(st, func(l board.LEDStatus) bool {
				return l.Name == "link" && strings.Contains(l.Reason, "% loss to ")
			})
			if got == board.On || degradedByLoss {
				return
			}
			require.False(t, time.Now().After(deadline), "link LED %s, not connected; board status: %+v", got, st)
		}
	}
	led("power_led", board.On)
	connected()
	led("spool_led", board.Off)
	led("alert_led", board.Off)

	coll.stop()
	led("link_led", board.Fast)
	f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	line := strings.Repeat("x", 200) + "\n"
	_, err = f.WriteString(strings.Repeat(line, 100))
	require.NoError(t, err)
	led("spool_led", board.On)                         // held once the oldest is 5 s old
	_, err = f.WriteString(strings.Repeat(line, 6000)) // 1.6 MB of records for a 1 MiB spool
	require.NoError(t, err)
	led("spool_led", board.Fast)
	led("power_led", board.On) // a spool full for want of an uplink is not a fault

	coll.start()
	connected()
	led("spool_led", board.Off)
}
