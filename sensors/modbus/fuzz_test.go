package modbus_test

import (
	"testing"

	"github.com/weirgw/weir/sensors/modbus"
)

// fuzzRequests are the requests a fuzzed response is decoded against, picked
// by the input's first byte: every response shape the master expects.
var fuzzRequests = []modbus.Request{
	{Function: modbus.FuncReadCoils, Address: 19, Quantity: 37},
	{Function: modbus.FuncReadDiscreteInputs, Address: 0, Quantity: 2000},
	{Function: modbus.FuncReadHoldingRegisters, Address: 107, Quantity: 3},
	{Function: modbus.FuncReadInputRegisters, Address: 0, Quantity: 125},
	{Function: modbus.FuncWriteSingleCoil, Address: 172, Coil: true},
	{Function: modbus.FuncWriteSingleRegister, Address: 1, Value: 3},
	{Function: modbus.FuncWriteMultipleCoils, Address: 19, Coils: make([]bool, 10)},
	{Function: modbus.FuncWriteMultipleRegisters, Address: 1, Registers: make([]uint16, 2)},
	{Function: modbus.FuncReadWriteMultipleRegisters, Address: 3, Quantity: 6, WriteAddress: 14, Registers: []uint16{1}},
}

// checkDecoded holds for any input: values come only from a frame that
// passed every check, and never exceed the request's quantity.
func checkDecoded(t *testing.T, req *modbus.Request, res *modbus.Response, err error) {
	if err != nil {
		if res.Registers != nil || res.Bits != nil {
			t.Fatalf("values from a rejected frame: %v", err)
		}
		return
	}
	if len(res.Registers) > int(req.Quantity) || len(res.Bits) > int(req.Quantity) {
		t.Fatalf("%d registers, %d bits for quantity %d", len(res.Registers), len(res.Bits), req.Quantity)
	}
}

func FuzzDecodeRTU(f *testing.F) {
	f.Add([]byte{2, 0x11, 0x03, 0x06, 0xae, 0x41, 0x56, 0x52, 0x43, 0x40, 0x49, 0xad})
	f.Add([]byte{0, 0x11, 0x01, 0x05, 0xcd, 0x6b, 0xb2, 0x0e, 0x1b, 0x45, 0xe6})
	f.Add([]byte{2, 0x11, 0x83, 0x02, 0xc1, 0x34})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		req := &fuzzRequests[int(data[0])%len(fuzzRequests)]
		frame := data[1:]
		var res modbus.Response
		pdu, err := modbus.DecodeRTU(0x11, req, frame)
		if err == nil {
			if modbus.CRC16(frame) != 0 {
				// A frame with its CRC appended has a CRC of zero over the
				// whole: anything else must have been rejected.
				t.Fatalf("accepted a frame with a bad crc: % x", frame)
			}
			err = modbus.ParseResponse(req, pdu, &res)
		}
		checkDecoded(t, req, &res, err)
	})
}

func FuzzDecodeTCP(f *testing.F) {
	f.Add([]byte{2, 0x00, 0x07, 0, 0, 0, 9, 0x11, 0x03, 0x06, 0xae, 0x41, 0x56, 0x52, 0x43, 0x40})
	f.Add([]byte{0, 0x00, 0x07, 0, 0, 0, 3, 0x11, 0x81, 0x02})
	f.Add([]byte{7, 0x00, 0x07, 0, 0, 0, 6, 0x11, 0x10, 0x00, 0x01, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		req := &fuzzRequests[int(data[0])%len(fuzzRequests)]
		var res modbus.Response
		pdu, err := modbus.DecodeTCP(7, 0x11, req, data[1:])
		if err == nil {
			err = modbus.ParseResponse(req, pdu, &res)
		}
		checkDecoded(t, req, &res, err)
	})
}
