package modbustest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/weirgw/weir/sensors/modbus"
)

// Slave is a Modbus device with Size of each table. Its tables may be read
// and changed under Lock/Unlock while it serves.
type Slave struct {
	Unit byte

	sync.Mutex
	Coils    []bool
	Discrete []bool
	Holding  []uint16
	Input    []uint16

	hook func(pdu []byte) []byte

	requests int
}

// New returns a slave answering to unit, with size of each table, holding
// register i initialised to i and input register i to 0x8000+i, so reads are
// checkable without setup.
func New(unit byte, size int) *Slave {
	s := &Slave{Unit: unit, Coils: make([]bool, size), Discrete: make([]bool, size),
		Holding: make([]uint16, size), Input: make([]uint16, size)}
	for i := range size {
		s.Holding[i] = uint16(i)
		s.Input[i] = 0x8000 + uint16(i)
		s.Discrete[i] = i%3 == 0
	}
	return s
}

// SetHook makes h see every request PDU first. It returns a response PDU
// to send instead of the normal one, an empty non-nil slice to send
// nothing, or nil to carry on normally. Tests use it to inject exceptions,
// silence and delays. h runs without the slave's lock held.
func (s *Slave) SetHook(h func(pdu []byte) []byte) {
	s.Lock()
	s.hook = h
	s.Unlock()
}

// Requests returns how many requests the slave has answered.
func (s *Slave) Requests() int {
	s.Lock()
	defer s.Unlock()
	return s.requests
}

func exception(f byte, c modbus.ExceptionCode) []byte { return []byte{f | 0x80, byte(c)} }

// Exception is the exception response with code c to request pdu, for a
// hook to answer with.
func Exception(pdu []byte, c modbus.ExceptionCode) []byte { return exception(pdu[0], c) }

// ReadAt reports whether pdu is a read (functions 1 to 4) starting at
// address addr, for a hook to pick the requests it answers.
func ReadAt(pdu []byte, addr uint16) bool {
	return len(pdu) >= 5 && pdu[0] >= 1 && pdu[0] <= 4 && uint16(pdu[1])<<8|uint16(pdu[2]) == addr
}

// Handle answers one request PDU with a response PDU.
func (s *Slave) Handle(pdu []byte) []byte {
	s.Lock()
	h := s.hook
	s.Unlock()
	if h != nil {
		if r := h(pdu); r != nil {
			return r
		}
	}
	s.Lock()
	defer s.Unlock()
	s.requests++
	if len(pdu) == 0 {
		return nil
	}
	req, err := modbus.ParseRequest(pdu)
	if err != nil {
		if modbus.RequestLen(pdu) < 0 {
			return exception(pdu[0], modbus.IllegalFunction)
		}
		return exception(pdu[0], modbus.IllegalDataValue)
	}
	if err := req.Validate(); err != nil {
		return exception(pdu[0], modbus.IllegalDataValue)
	}
	f := byte(req.Function)
	in := func(n, addr, qty int) bool { return addr+qty <= n }
	out := []byte{f}
	switch req.Function {
	case modbus.FuncReadCoils, modbus.FuncReadDiscreteInputs:
		tab := s.Coils
		if req.Function == modbus.FuncReadDiscreteInputs {
			tab = s.Discrete
		}
		if !in(len(tab), int(req.Address), int(req.Quantity)) {
			return exception(f, modbus.IllegalDataAddress)
		}
		bits := tab[req.Address : int(req.Address)+int(req.Quantity)]
		out = append(out, byte((len(bits)+7)/8))
		var cur byte
		for i, v := range bits {
			if v {
				cur |= 1 << (i % 8)
			}
			if i%8 == 7 || i == len(bits)-1 {
				out = append(out, cur)
				cur = 0
			}
		}
	case modbus.FuncReadHoldingRegisters, modbus.FuncReadInputRegisters:
		tab := s.Holding
		if req.Function == modbus.FuncReadInputRegisters {
			tab = s.Input
		}
		if !in(len(tab), int(req.Address), int(req.Quantity)) {
			return exception(f, modbus.IllegalDataAddress)
		}
		out = append(out, byte(2*req.Quantity))
		for _, v := range tab[req.Address : int(req.Address)+int(req.Quantity)] {
			out = append(out, byte(v>>8), byte(v))
		}
	case modbus.FuncWriteSingleCoil, modbus.FuncWriteSingleRegister:
		if req.Function == modbus.FuncWriteSingleCoil {
			if !in(len(s.Coils), int(req.Address), 1) {
				return exception(f, modbus.IllegalDataAddress)
			}
			s.Coils[req.Address] = req.Coil
		} else {
			if !in(len(s.Holding), int(req.Address), 1) {
				return exception(f, modbus.IllegalDataAddress)
			}
			s.Holding[req.Address] = req.Value
		}
		out = append(out, pdu[1:5]...)
	case modbus.FuncWriteMultipleCoils:
		if !in(len(s.Coils), int(req.Address), len(req.Coils)) {
			return exception(f, modbus.IllegalDataAddress)
		}
		copy(s.Coils[req.Address:], req.Coils)
		out = append(out, pdu[1:5]...)
	case modbus.FuncWriteMultipleRegisters:
		if !in(len(s.Holding), int(req.Address), len(req.Registers)) {
			return exception(f, modbus.IllegalDataAddress)
		}
		copy(s.Holding[req.Address:], req.Registers)
		out = append(out, pdu[1:5]...)
	case modbus.FuncReadWriteMultipleRegisters:
		if !in(len(s.Holding), int(req.WriteAddress), len(req.Registers)) ||
			!in(len(s.Holding), int(req.Address), int(req.Quantity)) {
			return exception(f, modbus.IllegalDataAddress)
		}
		copy(s.Holding[req.WriteAddress:], req.Registers) // written first, as the specification says
		out = append(out, byte(2*req.Quantity))
		for _, v := range s.Holding[req.Address : int(req.Address)+int(req.Quantity)] {
			out = append(out, byte(v>>8), byte(v))
		}
	}
	return out
}

type deadliner interface {
	SetReadDeadline(time.Time) error
}

// ServeRTU answers RTU requests read from rw until ctx ends or rw fails. A
// frame is found by the length its function implies; one with a bad CRC or
// for another unit is ignored, as a device on a bus does. After a bad frame
// the slave waits for a 5 ms silence (when rw has read deadlines) to find
// the start of the next one.
func (s *Slave) ServeRTU(ctx context.Context, rw io.ReadWriter) error {
	dl, _ := rw.(deadliner)
	if dl != nil {
		stop := context.AfterFunc(ctx, func() { _ = dl.SetReadDeadline(time.Now()) })
		defer stop()
	}
	var buf [512]byte
	resync := func() {
		if dl == nil {
			return
		}
		for ctx.Err() == nil {
			_ = dl.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
			if n, err := rw.Read(buf[:]); n == 0 && err != nil {
				break
			}
		}
		_ = dl.SetReadDeadline(time.Time{})
	}
	for {
		n, need := 0, 2
		for n < need {
			k, err := rw.Read(buf[n:need])
			n += k
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				return fmt.Errorf("modbustest: rtu read: %w", err)
			}
			if n >= 2 {
				l := modbus.RequestLen(buf[1:n])
				switch {
				case l < 0:
					need = -1
				case l > 0:
					need = 1 + l + 2
				default:
					need = n + 1
				}
				if need < 0 || need > len(buf) {
					break
				}
			}
		}
		if need < 0 || need > len(buf) {
			resync()
			continue
		}
		frame := buf[:n]
		if modbus.CRC16(frame[:n-2]) != uint16(frame[n-2])|uint16(frame[n-1])<<8 {
			resync()
			continue
		}
		if frame[0] != s.Unit && frame[0] != 0 {
			continue
		}
		resp := s.Handle(frame[1 : n-2])
		if frame[0] == 0 || len(resp) == 0 {
			continue
		}
		out := modbus.AppendCRC(append([]byte{s.Unit}, resp...))
		if _, err := rw.Write(out); err != nil {
			return fmt.Errorf("modbustest: rtu write: %w", err)
		}
	}
}

// ServeTCP accepts connections on ln and answers Modbus TCP on each until
// ctx ends. Requests on one connection are answered in order.
func (s *Slave) ServeTCP(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("modbustest: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.ServeConn(ctx, c)
		}()
	}
}

// ServeConn answers Modbus TCP on one connection until it fails or ctx
// ends, then closes it. Units other than the slave's (and 0 and 255, which
// TCP devices commonly accept as "this device") get GATEWAY TARGET DEVICE
// FAILED TO RESPOND, as a gateway would answer.
func (s *Slave) ServeConn(ctx context.Context, c net.Conn) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var hdr [7]byte
	var body [260]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return err
		}
		n := int(hdr[4])<<8 | int(hdr[5])
		if hdr[2] != 0 || hdr[3] != 0 || n < 2 || n > 254 {
			return fmt.Errorf("modbustest: bad mbap header % x", hdr)
		}
		if _, err := io.ReadFull(c, body[:n-1]); err != nil {
			return err
		}
		var resp []byte
		if hdr[6] == s.Unit || hdr[6] == 0 || hdr[6] == 0xFF {
			resp = s.Handle(body[:n-1])
		} else {
			resp = exception(body[0], modbus.GatewayTargetDeviceFailedToRespond)
		}
		if len(resp) == 0 {
			continue
		}
		out := modbus.AppendMBAP(nil, uint16(hdr[0])<<8|uint16(hdr[1]), hdr[6], resp)
		if _, err := c.Write(out); err != nil {
			return err
		}
	}
}
