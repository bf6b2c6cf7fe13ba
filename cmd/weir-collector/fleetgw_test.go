//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/uplink/pki"
)

// TestFleetFromRealGateway holds the fleet store to the records the
// gateway really sends (the browser test's fleet is simulated): the real
// weir daemon, with a Modbus TCP device and one-second telemetry,
// delivers to the collector, and the page and /metrics show its backlog,
// link, clock and bus, and plot them.
func TestFleetFromRealGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the weir daemon and the collector for a few seconds; not in -short")
	}
	weir := filepath.Join(binDir, "weir")
	build := exec.Command("go", "build", "-o", weir, "../weir")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build weir: %s", out)

	pkiDir := provisionPKI(t)
	const id = "gw-real"
	_, _, err = pki.IssueGateway(pkiDir, id, pki.Options{})
	require.NoError(t, err)
	r := startRig(t, pkiDir, "--ui-listen", "127.0.0.1:0")

	slave := modbustest.New(7, 100)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = slave.ServeTCP(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })

	dir := t.TempDir()
	cert, key := pki.GatewayFiles(pkiDir, id)
	cfg := fmt.Sprintf(`gateway:
  id: %s
data_dir: %s/data
telemetry_interval: 1s
metrics:
  listen: ""
inputs:
  modbus:
    buses:
      - {name: plant-tcp, type: tcp, address: %s}
    devices:
      - name: flow-1
        bus: plant-tcp
        unit: 7
        interval: 200ms
        registers:
          - {name: flow, register: holding, address: 10, type: uint16}
uplink:
  endpoints:
    - address: %s
      server_name: localhost
  tls:
    ca: %s
    cert: %s
    key: %s
  telemetry_interval: 1s
  reconnect_min: 50ms
  reconnect_max: 200ms
`, id, dir, ln.Addr(), r.tls, filepath.Join(pkiDir, pki.CACertFile), cert, key)
	conf := filepath.Join(dir, "weir.yaml")
	require.NoError(t, os.WriteFile(conf, []byte(cfg), 0o600))
	logf, err := os.Create(filepath.Join(dir, "gateway.log"))
	require.NoError(t, err)
	gw := exec.Command(weir, "run", "--config", conf)
	gw.Stdout, gw.Stderr = logf, logf
	require.NoError(t, gw.Start())
	exited := make(chan error, 1)
	go func() { exited <- gw.Wait() }()
	t.Cleanup(func() {
		_ = gw.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = gw.Process.Kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("gateway log:\n%s", b)
		}
	})

	want := []string{"weir_fleet_backlog_records", "weir_fleet_backlog_oldest_seconds", "weir_fleet_link_up", "weir_fleet_link_rtt_seconds",
		"weir_fleet_link_goodput_bits_per_second", "weir_fleet_clock_locked", "weir_fleet_bus_frame_error_rate", "weir_fleet_last_ack_age_seconds"}
	require.Eventually(t, func() bool {
		for _, m := range want {
			if _, ok := fleetMetric(t, r, m, id); !ok {
				return false
			}
		}
		return true
	}, 30*time.Second, 250*time.Millisecond, "the real gateway's telemetry does not reach every gauge")
	up, _ := fleetMetric(t, r, "weir_fleet_link_up", id)
	assert.Equal(t, 1.0, up)
	// Read by their names: a renamed field would leave these at zero.
	require.Eventually(t, func() bool {
		rtt, _ := fleetMetric(t, r, "weir_fleet_link_rtt_seconds", id)
		goodput, _ := fleetMetric(t, r, "weir_fleet_link_goodput_bits_per_second", id)
		return rtt > 0 && goodput > 0
	}, 20*time.Second, 250*time.Millisecond, "RTT and goodput from the link's telemetry")
	health, _ := fleetMetric(t, r, "weir_fleet_health", id)
	assert.Equal(t, 0.0, health, "a healthy gateway is ok")

	// The gateway page plots what it sent: link, backlog, the bus and
	// the records by kind (the system clock gives no bound, and changed
	// state once, at start).
	// The store follows the sink: on a loaded machine it may lag.
	plots := []string{"rtt", "loss", "goodput", "backlog", "backlog-age", "fer", "rate"}
	var body []byte
	points := map[string]int{}
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + r.ui + "/gateway?id=" + id)
		if err != nil {
			return false
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		for _, p := range plots {
			m := regexp.MustCompile(`id="plot-` + p + `" data-points="(\d+)"`).FindSubmatch(body)
			if m == nil {
				return false
			}
			points[p], _ = strconv.Atoi(string(m[1]))
			if points[p] == 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 250*time.Millisecond, "every plot of the gateway page has points")
	t.Logf("points per plot: %v", points)
	for _, src := range []string{"weir:spool", "weir:uplink", "modbus:plant-tcp", "weir:clock"} {
		assert.Contains(t, string(body), "<b>"+src+"</b>", "latest telemetry of %s", src)
	}
	assert.Contains(t, string(body), "clock start → ", "the clock's first state on the strip")
}
