package modbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// transport moves one request PDU to a unit and returns the response PDU.
// It validates framing (CRC, lengths, unit, MBAP) but not the PDU's
// contents, which [ParseResponse] checks for every transport alike.
type transport interface {
	// roundTrip sends pdu to unit and returns the response PDU, which
	// aliases buf or the transport's own buffer and is valid until the next
	// call with the same buf. sent and recv are set whenever the request
	// reached the line.
	roundTrip(ctx context.Context, unit byte, req *Request, pdu, buf []byte) (resp []byte, sent, recv time.Time, err error)
	name() string
	close() error
}

// Master is a Modbus master over one transport. It is safe for concurrent
// use; an RTU master serialises transactions, a TCP master may pipeline
// them (see [TCPConfig.MaxInFlight]).
type Master struct {
	tr      transport
	retries int
	stats   counters
	bufs    sync.Pool // *[bufSize]byte: a request PDU and a response PDU
}

const bufSize = 2 * 260

func newMaster(tr transport, retries int) *Master {
	m := &Master{tr: tr, retries: retries}
	m.bufs.New = func() any { return new([bufSize]byte) }
	return m
}

// Name returns the line's name as errors show it: the RTU config's Name
// or the TCP address.
func (m *Master) Name() string { return m.tr.name() }

// Stats returns a snapshot of the master's counters.
func (m *Master) Stats() Stats { return m.stats.snapshot() }

// Close closes the underlying connection (TCP) or stops using the port
// (RTU: the port itself belongs to the caller).
func (m *Master) Close() error { return m.tr.close() }

// retriable reports whether another attempt may help: timeouts, damaged
// frames and transport failures (a TCP connection the device dropped when it
// restarted) may; an exception (the device answered) or a cancelled context
// do not.
func retriable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ex *ExceptionError
	return !errors.As(err, &ex) && !errors.Is(err, ErrClosed)
}

// Do performs one transaction with up to the configured retries and fills
// res. Errors are wrapped with the request and the line, e.g.
// "modbus: read holding 40001 (addr 0, qty 2) on /dev/ttyS1 unit 7: crc
// mismatch (...)"; use errors.As for *[ExceptionError] and *[FrameError],
// errors.Is for [ErrTimeout].
//
// Writes are retried like reads: a write whose answer was lost is applied
// twice, which is harmless for the idempotent writes of functions 5, 6, 15
// and 16 and for 23's read part; set Retries to 0 for devices where it is
// not.
func (m *Master) Do(ctx context.Context, unit byte, req *Request, res *Response) error {
	if err := req.Validate(); err != nil {
		return m.wrap(unit, req, err)
	}
	b := m.bufs.Get().(*[bufSize]byte)
	defer m.bufs.Put(b)
	pdu := req.AppendPDU(b[:0:260])
	res.Failures = res.Failures[:0]
	var err error
	for attempt := 0; attempt <= m.retries; attempt++ {
		if attempt > 0 {
			m.stats.retries.Add(1)
		}
		res.Attempts = attempt + 1
		m.stats.requests.Add(1)
		var resp []byte
		resp, res.Sent, res.Received, err = m.tr.roundTrip(ctx, unit, req, pdu, b[260:])
		if err == nil && resp != nil {
			err = ParseResponse(req, resp, res)
		}
		if err == nil && resp == nil { // broadcast: no answer expected
			return nil
		}
		m.stats.count(err)
		if err == nil {
			return nil
		}
		res.Failures = append(res.Failures, err)
		if !retriable(ctx, err) {
			break
		}
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return m.wrap(unit, req, err)
}

func (m *Master) wrap(unit byte, req *Request, err error) error {
	return fmt.Errorf("modbus: %s on %s unit %d: %w", req, m.tr.name(), unit, err)
}

// ReadCoils reads qty coils from addr (function 1).
func (m *Master) ReadCoils(ctx context.Context, unit byte, addr, qty uint16) ([]bool, error) {
	var res Response
	err := m.Do(ctx, unit, &Request{Function: FuncReadCoils, Address: addr, Quantity: qty}, &res)
	return res.Bits, err
}

// ReadDiscreteInputs reads qty discrete inputs from addr (function 2).
func (m *Master) ReadDiscreteInputs(ctx context.Context, unit byte, addr, qty uint16) ([]bool, error) {
	var res Response
	err := m.Do(ctx, unit, &Request{Function: FuncReadDiscreteInputs, Address: addr, Quantity: qty}, &res)
	return res.Bits, err
}

// ReadHoldingRegisters reads qty holding registers from addr (function 3).
func (m *Master) ReadHoldingRegisters(ctx context.Context, unit byte, addr, qty uint16) ([]uint16, error) {
	var res Response
	err := m.Do(ctx, unit, &Request{Function: FuncReadHoldingRegisters, Address: addr, Quantity: qty}, &res)
	return res.Registers, err
}

// ReadInputRegisters reads qty input registers from addr (function 4).
func (m *Master) ReadInputRegisters(ctx context.Context, unit byte, addr, qty uint16) ([]uint16, error) {
	var res Response
	err := m.Do(ctx, unit, &Request{Function: FuncReadInputRegisters, Address: addr, Quantity: qty}, &res)
	return res.Registers, err
}

// WriteSingleCoil sets or clears one coil (function 5).
func (m *Master) WriteSingleCoil(ctx context.Context, unit byte, addr uint16, on bool) error {
	var res Response
	return m.Do(ctx, unit, &Request{Function: FuncWriteSingleCoil, Address: addr, Coil: on}, &res)
}

// WriteSingleRegister writes one holding register (function 6).
func (m *Master) WriteSingleRegister(ctx context.Context, unit byte, addr, value uint16) error {
	var res Response
	return m.Do(ctx, unit, &Request{Function: FuncWriteSingleRegister, Address: addr, Value: value}, &res)
}

// WriteMultipleCoils writes len(coils) coils from addr (function 15).
func (m *Master) WriteMultipleCoils(ctx context.Context, unit byte, addr uint16, coils []bool) error {
	var res Response
	return m.Do(ctx, unit, &Request{Function: FuncWriteMultipleCoils, Address: addr, Coils: coils}, &res)
}

// WriteMultipleRegisters writes len(values) holding registers from addr
// (function 16).
func (m *Master) WriteMultipleRegisters(ctx context.Context, unit byte, addr uint16, values []uint16) error {
	var res Response
	return m.Do(ctx, unit, &Request{Function: FuncWriteMultipleRegisters, Address: addr, Registers: values}, &res)
}

// ReadWriteMultipleRegisters writes values at writeAddr, then reads qty
// registers from readAddr, in one transaction (function 23).
func (m *Master) ReadWriteMultipleRegisters(ctx context.Context, unit byte, readAddr, qty, writeAddr uint16, values []uint16) ([]uint16, error) {
	var res Response
	err := m.Do(ctx, unit, &Request{Function: FuncReadWriteMultipleRegisters, Address: readAddr, Quantity: qty,
		WriteAddress: writeAddr, Registers: values}, &res)
	return res.Registers, err
}
