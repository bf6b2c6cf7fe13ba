package gateway

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

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/sensors/serialport/serialtest"
)

// lockedClock is a PTP clock locked with a bound no real source would
// produce by accident, so a record carrying it was stamped by it.
type lockedClock struct{}

const lockedBound = 4242

func (lockedClock) Now() (time.Time, event.Quality) {
	return time.Now(), event.Quality{Source: event.TimePTP, State: event.ClockLocked, ErrorBound: lockedBound}
}

func (lockedClock) Status() ptp.Status {
	return ptp.Status{Mode: ptp.ModeBuiltin, Source: "ptp", State: "locked", ErrorBoundNS: lockedBound}
}

func (lockedClock) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// TestEverySourceCarriesClockQuality runs the gateway with one of each
// input (tailed file, syslog, audit log, file integrity, line sensor on a
// pty, Modbus TCP device) and its own telemetry, on a locked PTP clock:
// every record must carry that clock's quality, whoever stamped it.
func TestEverySourceCarriesClockQuality(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "app.log")
	require.NoError(t, os.WriteFile(logFile, []byte("first line\n"), 0o600))
	auditLog := filepath.Join(dir, "audit.log")
	require.NoError(t, os.WriteFile(auditLog, []byte(auditEvent(101, "/etc/shadow")), 0o600))
	watched := filepath.Join(dir, "watched")
	require.NoError(t, os.Mkdir(watched, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(watched, "pump.conf"), []byte("speed=1\n"), 0o600))
	gwEnd, devEnd := serialtest.PTYPair(t)

	slave := modbustest.New(7, 10)
	slave.Lock()
	slave.Holding[0] = 321
	slave.Unlock()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { _ = slave.ServeTCP(ctx, ln); close(served) }()
	t.Cleanup(func() { cancel(); ln.Close(); <-served })

	data := filepath.Join(dir, "data")
	file := filepath.Join(dir, "weir.yaml")
	cfg := fmt.Sprintf(`gateway: {id: gw-quality}
data_dir: %s
telemetry_interval: 1s
metrics: {listen: ""}
inputs:
  files:
    - {name: app, paths: [%s], start_at: beginning, poll_interval: 50ms}
  lines:
    - {name: gps1, port: {device: %s, baud: 115200}, flush_interval: 50ms}
  modbus:
    buses:
      - {name: plant, type: tcp, address: %s, timeout: 500ms}
    devices:
      - name: meter
        bus: plant
        unit: 7
        interval: 100ms
        registers:
          - {name: level, register: holding, address: 0}
  syslog:
    udp: {listen: "127.0.0.1:0"}
    tcp: {listen: ""}
  audit: {path: %s}
  integrity: {paths: [%s], rescan_interval: 1h}
`, data, logFile, gwEnd, ln.Addr(), auditLog, watched)
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))

	g := newTestGateway(t, file)
	g.clock = lockedClock{}
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(rctx) }()
	t.Cleanup(func() {
		rcancel()
		require.NoError(t, <-done)
	})
	tg := &testGateway{socket: filepath.Join(data, "weir.sock"), file: file, dataDir: data}
	require.Eventually(t, func() bool {
		st, err := FetchStatus(rctx, tg.socket)
		tg.status = st
		return err == nil
	}, 20*time.Second, 20*time.Millisecond)

	var udp string
	for _, l := range tg.status.Syslog.Listeners {
		if l.Transport == "udp" {
			udp = l.Address
		}
	}
	u, err := net.Dial("udp", udp)
	require.NoError(t, err)
	defer u.Close()
	_, err = u.Write([]byte("<13>1 2026-11-23T12:00:00Z rtu-1 app - - - from syslog"))
	require.NoError(t, err)
	gps, err := os.OpenFile(devEnd, os.O_RDWR, 0)
	require.NoError(t, err)
	defer gps.Close()
	time.Sleep(300 * time.Millisecond) // the line sensor opens its port
	_, err = gps.Write([]byte("$GPGLL,4916.45,N,12311.12,W,225444,A*31\r\n"))
	require.NoError(t, err)
	f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("second line\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	sources := []string{"app", "syslog", "audit", "integrity", "gps1", "modbus:meter", "weir:clock", "weir:spool"}
	recs := tg.waitRecords(t, "a record from every source", func(recs []spooled) bool {
		seen := map[string]bool{}
		for _, r := range recs {
			seen[r.Source] = true
		}
		for _, s := range sources {
			if !seen[s] {
				return false
			}
		}
		return true
	})
	raw, err := FetchSpoolRecords(rctx, tg.socket, 0, 10000)
	require.NoError(t, err)
	// The meter keeps polling: the spool may have grown since.
	require.GreaterOrEqual(t, len(raw), len(recs))
	for _, r := range raw {
		var q struct {
			Source  string `json:"source"`
			Quality struct {
				Source     string `json:"source"`
				State      string `json:"state"`
				ErrorBound *int64 `json:"error_bound_ns"`
			} `json:"time_quality"`
		}
		require.NoError(t, json.Unmarshal(r.Event, &q))
		require.Equal(t, "ptp", q.Quality.Source, "record %d from %s", r.Seq, q.Source)
		require.Equal(t, "locked", q.Quality.State, "record %d from %s", r.Seq, q.Source)
		require.NotNil(t, q.Quality.ErrorBound, "record %d from %s", r.Seq, q.Source)
		// Modbus readings add half their round trip to the clock's bound.
		require.GreaterOrEqual(t, *q.Quality.ErrorBound, int64(lockedBound), "record %d from %s", r.Seq, q.Source)
	}
}
