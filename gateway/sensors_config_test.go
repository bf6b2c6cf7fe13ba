package gateway

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/sensors/modbus/poll"
)

func writeConfig(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "weir.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestLoadModbusInputs(t *testing.T) {
	l, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), false)
	require.NoError(t, err)
	require.Empty(t, l.Inputs.Modbus.Buses, "no hardware by default")
	require.Empty(t, l.Inputs.Modbus.Devices)
	require.Empty(t, l.Inputs.Lines)

	const good = `
inputs:
  modbus:
    buses:
      - {name: rs485-1, serial: {device: /dev/ttyS1}}
      - {name: plc, type: tcp, address: "10.0.0.7:502", max_in_flight: 4}
    devices:
      - name: flow-1
        bus: rs485-1
        unit: 7
        registers:
          - {name: flow, register: holding, address: 0, type: float32, order: CDAB, unit: m3/h}
  lines:
    - {name: gps1, port: {device: /dev/ttyS2}}
`
	l, err = Load(writeConfig(t, good), true)
	require.NoError(t, err)
	b := l.Inputs.Modbus.Buses[0]
	require.Equal(t, poll.BusRTU, b.Type, "defaults kept for omitted keys")
	require.Equal(t, 19200, b.Serial.Baud)
	require.Equal(t, time.Second, b.Timeout)
	require.Equal(t, 4, l.Inputs.Modbus.Buses[1].MaxInFlight)
	d := l.Inputs.Modbus.Devices[0]
	require.Equal(t, 10*time.Second, d.Interval)
	require.Equal(t, "on", d.Coalesce)
	require.Equal(t, "CDAB", d.Registers[0].Order)
	require.Equal(t, 4800, l.Inputs.Lines[0].Port.Baud)

	for _, c := range []struct{ body, want string }{
		{`
inputs:
  modbus:
    buses: [{name: b, serial: {device: /dev/ttyS1}}]
    devices:
      - name: d
        bus: b
        unit: 1
        registers:
          - {name: a, register: holding, address: 0}
          - {name: flow, register: holding, address: 1, type: flot32}
`, `inputs.modbus.devices[0].registers[1].type: "flot32" is not bool`},
		{`
inputs:
  modbus:
    buses: [{name: b, serial: {device: /dev/ttyS1}, baud: 9600}]
`, "inputs.modbus.buses[0]: unknown key `baud`; it belongs in a section here: did you mean `serial.baud`?"},
		{`
inputs:
  modbus:
    devices: [{name: d, bus: nowhere, unit: 1, registers: [{name: a, register: input, address: 0}]}]
`, `inputs.modbus.devices[0].bus: "nowhere" names no bus`},
	} {
		_, err := Load(writeConfig(t, c.body), true)
		require.Error(t, err)
		require.Contains(t, err.Error(), c.want)
	}
}
