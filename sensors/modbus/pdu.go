package modbus

import (
	"errors"
	"fmt"
	"time"
)

// FunctionCode is a Modbus public function code.
type FunctionCode byte

// The function codes this master speaks.
const (
	FuncReadCoils                  FunctionCode = 0x01
	FuncReadDiscreteInputs         FunctionCode = 0x02
	FuncReadHoldingRegisters       FunctionCode = 0x03
	FuncReadInputRegisters         FunctionCode = 0x04
	FuncWriteSingleCoil            FunctionCode = 0x05
	FuncWriteSingleRegister        FunctionCode = 0x06
	FuncWriteMultipleCoils         FunctionCode = 0x0F
	FuncWriteMultipleRegisters     FunctionCode = 0x10
	FuncReadWriteMultipleRegisters FunctionCode = 0x17
)

// Quantity limits of the specification: they keep every PDU within 253
// bytes.
const (
	MaxReadBits            = 2000
	MaxReadRegisters       = 125
	MaxWriteCoils          = 1968
	MaxWriteRegisters      = 123
	MaxReadWriteRead       = 125
	MaxReadWriteWrite      = 121
	maxPDU                 = 253
	exceptionBit      byte = 0x80
)

func (f FunctionCode) String() string {
	switch f {
	case FuncReadCoils:
		return "read coils"
	case FuncReadDiscreteInputs:
		return "read discrete"
	case FuncReadHoldingRegisters:
		return "read holding"
	case FuncReadInputRegisters:
		return "read input"
	case FuncWriteSingleCoil:
		return "write coil"
	case FuncWriteSingleRegister:
		return "write register"
	case FuncWriteMultipleCoils:
		return "write coils"
	case FuncWriteMultipleRegisters:
		return "write registers"
	case FuncReadWriteMultipleRegisters:
		return "read/write registers"
	}
	return fmt.Sprintf("function 0x%02X", byte(f))
}

// Request is one Modbus request.
//
//   - 1, 2, 3, 4: Address and Quantity.
//   - 5: Address and Coil.
//   - 6: Address and Value.
//   - 15: Address and Coils (the quantity is len(Coils)).
//   - 16: Address and Registers (the quantity is len(Registers)).
//   - 23: Address and Quantity are read; WriteAddress and Registers are
//     written (the device writes before it reads).
type Request struct {
	Function     FunctionCode
	Address      uint16
	Quantity     uint16
	Coil         bool
	Value        uint16
	WriteAddress uint16
	Coils        []bool
	Registers    []uint16
}

// Response is what a transaction produced. Bits (functions 1 and 2) and
// Registers (3, 4 and 23) are resliced from their existing capacity, so a
// Response reused across polls does not allocate.
//
// Sent is the time the request was handed to the line (after the
// inter-frame silence); Received the time the last byte of the response was
// read. A reading is best stamped with [Response.Midpoint] and half of
// [Response.RoundTrip] as its uncertainty. Both are set on failures too,
// for the diagnostics of the attempt that failed last.
type Response struct {
	Bits      []bool
	Registers []uint16
	Sent      time.Time
	Received  time.Time
	Attempts  int // 1 + retries used
	// Failures holds the error of every attempt that failed, in order,
	// including ones a retry made good: the EMI accounting above keeps the
	// raw bytes of each damaged frame (*FrameError.Raw) whether or not the
	// poll succeeded in the end. Emptied by each Do.
	Failures []error
}

// Midpoint returns the middle of Sent and Received.
func (r *Response) Midpoint() time.Time { return r.Sent.Add(r.Received.Sub(r.Sent) / 2) }

// RoundTrip returns Received - Sent.
func (r *Response) RoundTrip() time.Duration { return r.Received.Sub(r.Sent) }

// String names the request in the operator's terms, e.g.
// "read holding 40001 (addr 0, qty 2)": the 1-based conventional register
// number first, because that is what device manuals print, then the
// 0-based address on the wire.
func (r *Request) String() string {
	ref := func(base int, addr uint16) int { return base + int(addr) + 1 }
	switch r.Function {
	case FuncReadCoils:
		return fmt.Sprintf("%s %05d (addr %d, qty %d)", r.Function, ref(0, r.Address), r.Address, r.Quantity)
	case FuncReadDiscreteInputs:
		return fmt.Sprintf("%s %d (addr %d, qty %d)", r.Function, ref(10000, r.Address), r.Address, r.Quantity)
	case FuncReadHoldingRegisters:
		return fmt.Sprintf("%s %d (addr %d, qty %d)", r.Function, ref(40000, r.Address), r.Address, r.Quantity)
	case FuncReadInputRegisters:
		return fmt.Sprintf("%s %d (addr %d, qty %d)", r.Function, ref(30000, r.Address), r.Address, r.Quantity)
	case FuncWriteSingleCoil:
		return fmt.Sprintf("%s %05d (addr %d)", r.Function, ref(0, r.Address), r.Address)
	case FuncWriteSingleRegister:
		return fmt.Sprintf("%s %d (addr %d)", r.Function, ref(40000, r.Address), r.Address)
	case FuncWriteMultipleCoils:
		return fmt.Sprintf("%s %05d (addr %d, qty %d)", r.Function, ref(0, r.Address), r.Address, len(r.Coils))
	case FuncWriteMultipleRegisters:
		return fmt.Sprintf("%s %d (addr %d, qty %d)", r.Function, ref(40000, r.Address), r.Address, len(r.Registers))
	case FuncReadWriteMultipleRegisters:
		return fmt.Sprintf("%s %d (addr %d, qty %d; write addr %d, qty %d)", r.Function,
			ref(40000, r.Address), r.Address, r.Quantity, r.WriteAddress, len(r.Registers))
	}
	return r.Function.String()
}

func checkRange(what string, addr uint16, qty, limit int) error {
	if qty < 1 || qty > limit {
		return fmt.Errorf("%s quantity %d out of range 1..%d", what, qty, limit)
	}
	if int(addr)+qty > 0x10000 {
		return fmt.Errorf("%s addr %d + qty %d beyond 65535", what, addr, qty)
	}
	return nil
}

// Validate checks the request against the specification's limits, so an
// invalid request never reaches the line.
func (r *Request) Validate() error {
	switch r.Function {
	case FuncReadCoils, FuncReadDiscreteInputs:
		return checkRange("read", r.Address, int(r.Quantity), MaxReadBits)
	case FuncReadHoldingRegisters, FuncReadInputRegisters:
		return checkRange("read", r.Address, int(r.Quantity), MaxReadRegisters)
	case FuncWriteSingleCoil, FuncWriteSingleRegister:
		return nil
	case FuncWriteMultipleCoils:
		return checkRange("write", r.Address, len(r.Coils), MaxWriteCoils)
	case FuncWriteMultipleRegisters:
		return checkRange("write", r.Address, len(r.Registers), MaxWriteRegisters)
	case FuncReadWriteMultipleRegisters:
		if err := checkRange("read", r.Address, int(r.Quantity), MaxReadWriteRead); err != nil {
			return err
		}
		return checkRange("write", r.WriteAddress, len(r.Registers), MaxReadWriteWrite)
	}
	return fmt.Errorf("unsupported function 0x%02X", byte(r.Function))
}

func appendU16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }

func u16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func appendBits(b []byte, bits []bool) []byte {
	var cur byte
	for i, v := range bits {
		if v {
			cur |= 1 << (i % 8)
		}
		if i%8 == 7 || i == len(bits)-1 {
			b = append(b, cur)
			cur = 0
		}
	}
	return b
}

// AppendPDU appends the request's PDU (function code and data) to b. The
// request must be valid ([Request.Validate]).
func (r *Request) AppendPDU(b []byte) []byte {
	b = append(b, byte(r.Function))
	switch r.Function {
	case FuncReadCoils, FuncReadDiscreteInputs, FuncReadHoldingRegisters, FuncReadInputRegisters:
		b = appendU16(b, r.Address)
		b = appendU16(b, r.Quantity)
	case FuncWriteSingleCoil:
		b = appendU16(b, r.Address)
		b = appendU16(b, coilValue(r.Coil))
	case FuncWriteSingleRegister:
		b = appendU16(b, r.Address)
		b = appendU16(b, r.Value)
	case FuncWriteMultipleCoils:
		b = appendU16(b, r.Address)
		b = appendU16(b, uint16(len(r.Coils)))
		b = append(b, byte((len(r.Coils)+7)/8))
		b = appendBits(b, r.Coils)
	case FuncWriteMultipleRegisters:
		b = appendU16(b, r.Address)
		b = appendU16(b, uint16(len(r.Registers)))
		b = append(b, byte(2*len(r.Registers)))
		for _, v := range r.Registers {
			b = appendU16(b, v)
		}
	case FuncReadWriteMultipleRegisters:
		b = appendU16(b, r.Address)
		b = appendU16(b, r.Quantity)
		b = appendU16(b, r.WriteAddress)
		b = appendU16(b, uint16(len(r.Registers)))
		b = append(b, byte(2*len(r.Registers)))
		for _, v := range r.Registers {
			b = appendU16(b, v)
		}
	}
	return b
}

func coilValue(on bool) uint16 {
	if on {
		return 0xFF00
	}
	return 0x0000
}

// ResponseLen is the length of the normal (not exception) response PDU the
// request implies, function code included. The RTU reader waits for exactly
// this many bytes, and the TCP reader checks the MBAP length against it.
func (r *Request) ResponseLen() int {
	switch r.Function {
	case FuncReadCoils, FuncReadDiscreteInputs:
		return 2 + (int(r.Quantity)+7)/8
	case FuncReadHoldingRegisters, FuncReadInputRegisters, FuncReadWriteMultipleRegisters:
		return 2 + 2*int(r.Quantity)
	case FuncWriteSingleCoil, FuncWriteSingleRegister, FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
		return 5
	}
	return 2
}

// ParseResponse checks a response PDU against its request and fills res
// with the values. An exception response returns *[ExceptionError]; any
// other disagreement with the request returns *[FrameError] and leaves res'
// values untouched. Nothing is allocated beyond growing res' slices to the
// request's quantity, whatever pdu holds.
func ParseResponse(req *Request, pdu []byte, res *Response) error {
	if len(pdu) < 1 {
		return frameErr(FrameBadLength, pdu, "empty pdu")
	}
	if pdu[0] == byte(req.Function)|exceptionBit {
		if len(pdu) != 2 {
			return frameErr(FrameBadLength, pdu, "exception pdu of %d bytes, want 2", len(pdu))
		}
		return &ExceptionError{Function: req.Function, Code: ExceptionCode(pdu[1])}
	}
	if pdu[0] != byte(req.Function) {
		return frameErr(FrameWrongFunction, pdu, "function 0x%02X, want 0x%02X", pdu[0], byte(req.Function))
	}
	if want := req.ResponseLen(); len(pdu) != want {
		return frameErr(FrameBadLength, pdu, "pdu of %d bytes, want %d", len(pdu), want)
	}
	switch req.Function {
	case FuncReadCoils, FuncReadDiscreteInputs:
		if int(pdu[1]) != len(pdu)-2 {
			return frameErr(FrameBadLength, pdu, "byte count %d, want %d", pdu[1], len(pdu)-2)
		}
		n := int(req.Quantity)
		if cap(res.Bits) < n {
			res.Bits = make([]bool, n)
		}
		res.Bits = res.Bits[:n]
		data := pdu[2:]
		for i := range res.Bits {
			res.Bits[i] = data[i/8]&(1<<(i%8)) != 0
		}
	case FuncReadHoldingRegisters, FuncReadInputRegisters, FuncReadWriteMultipleRegisters:
		if int(pdu[1]) != len(pdu)-2 {
			return frameErr(FrameBadLength, pdu, "byte count %d, want %d", pdu[1], len(pdu)-2)
		}
		n := int(req.Quantity)
		if cap(res.Registers) < n {
			res.Registers = make([]uint16, n)
		}
		res.Registers = res.Registers[:n]
		for i := range res.Registers {
			res.Registers[i] = u16(pdu[2+2*i:])
		}
	case FuncWriteSingleCoil, FuncWriteSingleRegister:
		v := req.Value
		if req.Function == FuncWriteSingleCoil {
			v = coilValue(req.Coil)
		}
		if u16(pdu[1:]) != req.Address || u16(pdu[3:]) != v {
			return frameErr(FrameMismatch, pdu, "echo addr %d value 0x%04X, want addr %d value 0x%04X",
				u16(pdu[1:]), u16(pdu[3:]), req.Address, v)
		}
	case FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
		qty := len(req.Registers)
		if req.Function == FuncWriteMultipleCoils {
			qty = len(req.Coils)
		}
		if u16(pdu[1:]) != req.Address || int(u16(pdu[3:])) != qty {
			return frameErr(FrameMismatch, pdu, "echo addr %d qty %d, want addr %d qty %d",
				u16(pdu[1:]), u16(pdu[3:]), req.Address, qty)
		}
	}
	return nil
}

// ParseRequest decodes a request PDU, as a slave does. It is the inverse of
// [Request.AppendPDU] and is used by the test slave; Coils and Registers are
// freshly allocated.
func ParseRequest(pdu []byte) (Request, error) {
	var r Request
	if len(pdu) < 1 {
		return r, errors.New("empty pdu")
	}
	r.Function = FunctionCode(pdu[0])
	d := pdu[1:]
	need := func(n int) error {
		if len(d) != n {
			return fmt.Errorf("%s: %d data bytes, want %d", r.Function, len(d), n)
		}
		return nil
	}
	switch r.Function {
	case FuncReadCoils, FuncReadDiscreteInputs, FuncReadHoldingRegisters, FuncReadInputRegisters,
		FuncWriteSingleCoil, FuncWriteSingleRegister:
		if err := need(4); err != nil {
			return r, err
		}
		r.Address, r.Quantity, r.Value = u16(d), u16(d[2:]), u16(d[2:])
		if r.Function == FuncWriteSingleCoil {
			if r.Value != 0xFF00 && r.Value != 0 {
				return r, fmt.Errorf("coil value 0x%04X", r.Value)
			}
			r.Coil, r.Quantity = r.Value == 0xFF00, 0
		}
		if r.Function == FuncWriteSingleRegister {
			r.Quantity = 0
		}
	case FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
		if len(d) < 5 {
			return r, fmt.Errorf("%s: %d data bytes", r.Function, len(d))
		}
		r.Address = u16(d)
		qty, bc := int(u16(d[2:])), int(d[4])
		if err := need(5 + bc); err != nil {
			return r, err
		}
		if r.Function == FuncWriteMultipleCoils {
			if qty < 1 || qty > MaxWriteCoils || bc != (qty+7)/8 {
				return r, fmt.Errorf("coils qty %d byte count %d", qty, bc)
			}
			r.Coils = make([]bool, qty)
			for i := range r.Coils {
				r.Coils[i] = d[5+i/8]&(1<<(i%8)) != 0
			}
		} else {
			if qty < 1 || qty > MaxWriteRegisters || bc != 2*qty {
				return r, fmt.Errorf("registers qty %d byte count %d", qty, bc)
			}
			r.Registers = make([]uint16, qty)
			for i := range r.Registers {
				r.Registers[i] = u16(d[5+2*i:])
			}
		}
	case FuncReadWriteMultipleRegisters:
		if len(d) < 9 {
			return r, fmt.Errorf("%s: %d data bytes", r.Function, len(d))
		}
		r.Address, r.Quantity, r.WriteAddress = u16(d), u16(d[2:]), u16(d[4:])
		qty, bc := int(u16(d[6:])), int(d[8])
		if err := need(9 + bc); err != nil {
			return r, err
		}
		if qty < 1 || qty > MaxReadWriteWrite || bc != 2*qty {
			return r, fmt.Errorf("registers qty %d byte count %d", qty, bc)
		}
		r.Registers = make([]uint16, qty)
		for i := range r.Registers {
			r.Registers[i] = u16(d[9+2*i:])
		}
	default:
		return r, fmt.Errorf("unsupported function 0x%02X", pdu[0])
	}
	return r, nil
}

// RequestLen returns the length of a request PDU from its first bytes, as
// an RTU slave must know it to find the end of a frame: it needs 1 byte for
// fixed-size functions, 6 for 15 and 16, 10 for 23, and reports 0 while it
// needs more, -1 for an unknown function.
func RequestLen(head []byte) int {
	if len(head) < 1 {
		return 0
	}
	switch FunctionCode(head[0]) {
	case FuncReadCoils, FuncReadDiscreteInputs, FuncReadHoldingRegisters, FuncReadInputRegisters,
		FuncWriteSingleCoil, FuncWriteSingleRegister:
		return 5
	case FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
		if len(head) < 6 {
			return 0
		}
		return 6 + int(head[5])
	case FuncReadWriteMultipleRegisters:
		if len(head) < 10 {
			return 0
		}
		return 10 + int(head[9])
	}
	return -1
}
