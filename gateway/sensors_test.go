package gateway

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/sensors/modbus/poll"
	"github.com/weirgw/weir/spool"
)

func TestSensorsMetrics(t *testing.T) {
	bus := poll.DefaultBusConfig()
	bus.Name, bus.Type, bus.Address = "plc", poll.BusTCP, "127.0.0.1:502"
	dev := poll.DefaultDeviceConfig()
	dev.Name, dev.Bus, dev.Unit = "meter", "plc", 1
	dev.Registers = []poll.RegisterConfig{{Name: "r", Register: "holding"}}
	p, err := poll.New(poll.Config{Buses: []poll.BusConfig{bus}, Devices: []poll.DeviceConfig{dev}}, nil, nil)
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(sensorsCollector{withPipeline(&pipeline{buses: []*modbusBus{{poller: p, devices: []poll.DeviceConfig{dev}}}})})
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
		if mf.GetName() == "weir_modbus_device_up" {
			require.Zero(t, mf.GetMetric()[0].GetGauge().GetValue(), "never polled: not up")
		}
	}
	require.Equal(t, map[string]int{
		"weir_modbus_bus_events_total": 12, "weir_modbus_device_events_total": 12,
		"weir_modbus_bus_frame_error_ratio": 2, "weir_modbus_device_frame_error_ratio": 2,
		"weir_modbus_diagnostics_suppressed_total": 1, "weir_modbus_device_up": 1,
	}, got)
}

// A live read over the bus's live_reads_per_minute is answered 429 Too
// Many Requests, without a transaction on the line.
func TestSensorReadRateLimited(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	slave := modbustest.New(1, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = slave.ServeTCP(ctx, ln) }()

	bus := poll.DefaultBusConfig()
	bus.Name, bus.Type, bus.Address, bus.LiveReadsPerMinute = "plc", poll.BusTCP, ln.Addr().String(), 1
	dev := poll.DefaultDeviceConfig()
	dev.Name, dev.Bus, dev.Unit, dev.Interval = "meter", "plc", 1, time.Hour
	dev.Registers = []poll.RegisterConfig{{Name: "r", Register: "holding"}}
	p, err := poll.New(poll.Config{Buses: []poll.BusConfig{bus}, Devices: []poll.DeviceConfig{dev}}, nil, nil)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx, discard{}) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { return p.Status().Buses[0].State == "open" }, 5*time.Second, 5*time.Millisecond)

	g := withPipeline(&pipeline{buses: []*modbusBus{{poller: p, devices: []poll.DeviceConfig{dev}}}})
	read := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		g.serveSensorRead(w, httptest.NewRequest(http.MethodGet, "/v1/sensors/read?device=meter", nil))
		return w
	}
	require.Equal(t, http.StatusOK, read().Code)
	attempts := p.Status().Buses[0].Counters.Attempts
	w := read()
	require.Equal(t, http.StatusTooManyRequests, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), "live_reads_per_minute 1")
	require.Equal(t, attempts, p.Status().Buses[0].Counters.Attempts, "nothing sent on the line")
}

type discard struct{}

func (discard) Emit(context.Context, []event.Event, []spool.Checkpoint) error { return nil }
