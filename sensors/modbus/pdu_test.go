package modbus_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/sensors/modbus"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// TestRequestPDU checks the encoding of every function against the
// examples of the Modbus application protocol specification v1.1b3, and
// that ParseRequest (the slave's side) inverts it.
func TestRequestPDU(t *testing.T) {
	tests := []struct {
		name string
		req  modbus.Request
		pdu  string
		str  string
	}{
		{"read coils", modbus.Request{Function: modbus.FuncReadCoils, Address: 19, Quantity: 19}, "01 0013 0013", "read coils 00020 (addr 19, qty 19)"},
		{"read discrete", modbus.Request{Function: modbus.FuncReadDiscreteInputs, Address: 196, Quantity: 22}, "02 00C4 0016", "read discrete 10197 (addr 196, qty 22)"},
		{"read holding", modbus.Request{Function: modbus.FuncReadHoldingRegisters, Address: 107, Quantity: 3}, "03 006B 0003", "read holding 40108 (addr 107, qty 3)"},
		{"read input", modbus.Request{Function: modbus.FuncReadInputRegisters, Address: 8, Quantity: 1}, "04 0008 0001", "read input 30009 (addr 8, qty 1)"},
		{"write coil", modbus.Request{Function: modbus.FuncWriteSingleCoil, Address: 172, Coil: true}, "05 00AC FF00", "write coil 00173 (addr 172)"},
		{"write register", modbus.Request{Function: modbus.FuncWriteSingleRegister, Address: 1, Value: 3}, "06 0001 0003", "write register 40002 (addr 1)"},
		{"write coils", modbus.Request{Function: modbus.FuncWriteMultipleCoils, Address: 19,
			Coils: []bool{true, false, true, true, false, false, true, true, true, false}}, "0F 0013 000A 02 CD 01", "write coils 00020 (addr 19, qty 10)"},
		{"write registers", modbus.Request{Function: modbus.FuncWriteMultipleRegisters, Address: 1, Registers: []uint16{0x000A, 0x0102}}, "10 0001 0002 04 000A 0102", "write registers 40002 (addr 1, qty 2)"},
		{"read/write", modbus.Request{Function: modbus.FuncReadWriteMultipleRegisters, Address: 3, Quantity: 6, WriteAddress: 14,
			Registers: []uint16{0x00FF, 0x00FF, 0x00FF}}, "17 0003 0006 000E 0003 06 00FF 00FF 00FF", "read/write registers 40004 (addr 3, qty 6; write addr 14, qty 3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.req.Validate())
			got := tt.req.AppendPDU(nil)
			require.Equal(t, unhex(t, tt.pdu), got)
			require.Equal(t, tt.str, tt.req.String())
			back, err := modbus.ParseRequest(got)
			require.NoError(t, err)
			require.Equal(t, got, back.AppendPDU(nil))
			require.Equal(t, len(got), modbus.RequestLen(got))
		})
	}
}

func TestRequestValidate(t *testing.T) {
	tests := []struct {
		req  modbus.Request
		want string
	}{
		{modbus.Request{Function: modbus.FuncReadCoils, Quantity: 0}, "quantity 0 out of range 1..2000"},
		{modbus.Request{Function: modbus.FuncReadCoils, Quantity: 2001}, "out of range"},
		{modbus.Request{Function: modbus.FuncReadInputRegisters, Quantity: 126}, "1..125"},
		{modbus.Request{Function: modbus.FuncReadHoldingRegisters, Address: 65535, Quantity: 2}, "beyond 65535"},
		{modbus.Request{Function: modbus.FuncWriteMultipleRegisters, Registers: make([]uint16, 124)}, "1..123"},
		{modbus.Request{Function: modbus.FuncWriteMultipleCoils, Coils: make([]bool, 1969)}, "1..1968"},
		{modbus.Request{Function: modbus.FuncReadWriteMultipleRegisters, Quantity: 1, Registers: make([]uint16, 122)}, "1..121"},
		{modbus.Request{Function: 0x2B}, "unsupported function 0x2B"},
		{modbus.Request{Function: modbus.FuncReadHoldingRegisters, Address: 65535, Quantity: 1}, ""},
	}
	for _, tt := range tests {
		err := tt.req.Validate()
		if tt.want == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, tt.want, "%+v", tt.req)
	}
}

func TestExceptionNames(t *testing.T) {
	want := map[modbus.ExceptionCode]string{
		1: "ILLEGAL FUNCTION", 2: "ILLEGAL DATA ADDRESS", 3: "ILLEGAL DATA VALUE", 4: "SERVER DEVICE FAILURE",
		5: "ACKNOWLEDGE", 6: "SERVER DEVICE BUSY", 8: "MEMORY PARITY ERROR", 10: "GATEWAY PATH UNAVAILABLE",
		11: "GATEWAY TARGET DEVICE FAILED TO RESPOND", 0x42: "UNKNOWN EXCEPTION 0x42",
	}
	for code, name := range want {
		e := &modbus.ExceptionError{Function: modbus.FuncReadCoils, Code: code}
		require.Equal(t, name, e.Name())
		require.Contains(t, e.Error(), name)
	}
}

// TestParseResponseNoGrowth: values are sized by the request, whatever the
// response claims, and a reused Response does not allocate.
func TestParseResponseNoGrowth(t *testing.T) {
	req := modbus.Request{Function: modbus.FuncReadHoldingRegisters, Quantity: 2}
	var res modbus.Response
	pdu := unhex(t, "03 04 0001 0002")
	require.NoError(t, modbus.ParseResponse(&req, pdu, &res))
	allocs := testing.AllocsPerRun(100, func() {
		if err := modbus.ParseResponse(&req, pdu, &res); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
	require.Equal(t, []uint16{1, 2}, res.Registers)
	big := append([]byte{0x03, 0xFA}, make([]byte, 250)...)
	var res2 modbus.Response
	require.Error(t, modbus.ParseResponse(&req, big, &res2))
	require.Nil(t, res2.Registers)
}
