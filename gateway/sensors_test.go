package gateway

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/sensors/modbus/poll"
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
	reg.MustRegister(sensorsCollector{&Gateway{modbus: p}})
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
