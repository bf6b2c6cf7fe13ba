package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Port is what an RTU master needs of a serial line: bytes both ways and a
// read deadline, because the end of an RTU frame is found by length and by
// silence, both measured in milliseconds (termios VTIME counts tenths of
// seconds). serialport.Port, *os.File on a tty and net.Conn all qualify.
type Port interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
}

// RTUConfig configures an RTU master.
type RTUConfig struct {
	// Name names the line in errors and logs, e.g. "/dev/ttyS1".
	Name string `mapstructure:"name" yaml:"name"`
	// Baud sets the character time from which the inter-frame silence
	// (3.5 characters; 1.75 ms above 19200 baud) is derived.
	Baud int `mapstructure:"baud" yaml:"baud"`
	// CharBits is the bits per character on the wire: start, data, parity
	// and stop bits. 0 means 11 (8E1 or 8N2, as the specification asks).
	CharBits int `mapstructure:"char_bits" yaml:"char_bits"`
	// Timeout is how long to wait for the first byte of an answer after the
	// request has left the line; the rest must follow without a gap longer
	// than the silence. 0 means 1 s.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
	// Retries is how many more attempts a timed-out or damaged transaction
	// gets. Exceptions are never retried.
	Retries int `mapstructure:"retries" yaml:"retries"`
	// Silence overrides the inter-frame silence derived from Baud. A
	// negative value turns silence off, for RTU carried over a byte stream
	// that keeps frames apart itself (RTU-over-TCP, in-memory tests); the
	// overlong-frame check needs silence and is off with it.
	Silence time.Duration `mapstructure:"silence" yaml:"silence"`
	// BroadcastDelay is how long the line stays quiet after a broadcast
	// (unit 0) write, so slow devices can act on it. 0 means 100 ms.
	BroadcastDelay time.Duration `mapstructure:"broadcast_delay" yaml:"broadcast_delay"`
}

// Validate checks the configuration; errors name the key.
func (c RTUConfig) Validate() error {
	switch {
	case c.Baud < 0:
		return fmt.Errorf("baud: %d is negative", c.Baud)
	case c.Baud == 0 && c.Silence == 0:
		return errors.New("baud: needed to derive the inter-frame silence (or set silence)")
	case c.CharBits != 0 && (c.CharBits < 7 || c.CharBits > 12):
		return fmt.Errorf("char_bits: %d out of range 7..12", c.CharBits)
	case c.Timeout < 0:
		return fmt.Errorf("timeout: %s is negative", c.Timeout)
	case c.Retries < 0 || c.Retries > 10:
		return fmt.Errorf("retries: %d out of range 0..10", c.Retries)
	case c.BroadcastDelay < 0:
		return fmt.Errorf("broadcast_delay: %s is negative", c.BroadcastDelay)
	}
	return nil
}

func (c RTUConfig) charTime() time.Duration {
	bits := c.CharBits
	if bits == 0 {
		bits = 11
	}
	if c.Baud <= 0 {
		return 0
	}
	return time.Duration(bits) * time.Second / time.Duration(c.Baud)
}

// silence returns the inter-frame silence: 3.5 character times, fixed at
// 1.75 ms above 19200 baud where the specification stops scaling it
// (interrupt load on the slaves would otherwise dominate).
func (c RTUConfig) silence() time.Duration {
	switch {
	case c.Silence < 0:
		return 0
	case c.Silence > 0:
		return c.Silence
	case c.Baud > 19200:
		return 1750 * time.Microsecond
	}
	return c.charTime() * 7 / 2
}

// NewRTU returns a master on port. The master does not own the port: Close
// leaves it open.
func NewRTU(port Port, cfg RTUConfig) (*Master, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("modbus: rtu %s: %w", cfg.Name, err)
	}
	t := &rtu{port: port, cfg: cfg, silence: cfg.silence(), charTime: cfg.charTime(), timeout: cfg.Timeout,
		bcast: cfg.BroadcastDelay}
	if t.timeout == 0 {
		t.timeout = time.Second
	}
	if t.bcast == 0 {
		t.bcast = 100 * time.Millisecond
	}
	if cfg.Name == "" {
		t.cfg.Name = "rtu"
	}
	return newMaster(t, cfg.Retries), nil
}

// rtu is the RTU transport. mu makes transactions strictly one at a time:
// it is held from the silence before a request until the silence after its
// answer.
type rtu struct {
	mu       sync.Mutex
	port     Port
	cfg      RTUConfig
	silence  time.Duration
	charTime time.Duration
	timeout  time.Duration
	bcast    time.Duration
	idleAt   time.Time // the line is free from then on
	dirty    bool      // the last transaction failed: drain the line first
	closed   bool
	wbuf     [256]byte
	rbuf     [512]byte // twice an ADU, so an overlong frame shows as one
}

func (t *rtu) name() string { return t.cfg.Name }

func (t *rtu) close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if ctx.Done() == nil {
		time.Sleep(d)
		return nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *rtu) roundTrip(ctx context.Context, unit byte, req *Request, pdu, buf []byte) (resp []byte, sent, recv time.Time, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, sent, recv, ErrClosed
	}
	if unit == 0 && !isWrite(req.Function) {
		return nil, sent, recv, errors.New("unit 0 is broadcast, which is for writes only")
	}
	if len(pdu) > maxPDU {
		return nil, sent, recv, fmt.Errorf("pdu of %d bytes", len(pdu))
	}
	if t.dirty {
		if err := t.drain(ctx); err != nil {
			return nil, sent, recv, err
		}
	}
	if err := sleepCtx(ctx, time.Until(t.idleAt)); err != nil {
		return nil, sent, recv, err
	}
	adu := append(t.wbuf[:0], unit)
	adu = append(adu, pdu...)
	adu = AppendCRC(adu)
	sent = time.Now()
	if _, err := t.port.Write(adu); err != nil {
		t.dirty = true
		return nil, sent, recv, fmt.Errorf("write: %w", err)
	}
	// The request takes this long to leave a real UART; the answer cannot
	// start before, so the timeout runs from then.
	onWire := time.Duration(len(adu)) * t.charTime
	if unit == 0 {
		t.idleAt = time.Now().Add(onWire + t.bcast)
		return nil, sent, sent, nil
	}
	frame, recv, err := t.readFrame(ctx, req, sent.Add(onWire+t.timeout))
	t.idleAt = time.Now()
	if err != nil {
		t.dirty = true
		return nil, sent, recv, err
	}
	pduResp, err := DecodeRTU(unit, req, frame)
	if err != nil {
		t.dirty = true
		return nil, sent, recv, err
	}
	// Copied out of rbuf because the next transaction may start as soon as
	// mu is released, before the caller has parsed this one.
	return append(buf[:0], pduResp...), sent, recv, nil
}

func isWrite(f FunctionCode) bool {
	switch f {
	case FuncWriteSingleCoil, FuncWriteSingleRegister, FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
		return true
	}
	return false
}

// rtuFrameLen is the length of the RTU response frame to req given its
// first two bytes: 5 for an exception, else unit + the PDU the request
// implies + CRC. The length is never taken from the frame's byte count, so
// a bit flipped there cannot make the reader wait for, or accept, a frame
// of another size.
func rtuFrameLen(req *Request, head []byte) int {
	if len(head) >= 2 && head[1]&exceptionBit != 0 {
		return 5
	}
	return 1 + req.ResponseLen() + 2
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// readFrame reads one response: up to deadline for the first byte, then by
// the length the request implies, then (with silence on) one silence more
// to catch an overlong frame. recv is the time the last byte arrived.
func (t *rtu) readFrame(ctx context.Context, req *Request, deadline time.Time) (frame []byte, recv time.Time, err error) {
	ctxBound := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxBound = d, true
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = t.port.SetReadDeadline(time.Now()) })
		defer stop()
	}
	defer func() { _ = t.port.SetReadDeadline(time.Time{}) }()
	n, need := 0, 5
	// Between bytes of one frame a gap of more than the silence ends it; we
	// are lenient (a few ms at least) because USB adapters and ptys deliver
	// in bursts, and the length check is what decides.
	gap := max(4*t.silence, 20*time.Millisecond)
	for n < need {
		dl := deadline
		if n > 0 {
			dl = recv.Add(gap)
		}
		if err := t.port.SetReadDeadline(dl); err != nil {
			return nil, recv, fmt.Errorf("set read deadline: %w", err)
		}
		k, err := t.port.Read(t.rbuf[n:])
		if k > 0 {
			n += k
			recv = time.Now()
			if n >= 2 {
				need = rtuFrameLen(req, t.rbuf[:n])
			}
			continue
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil, recv, ctx.Err()
		}
		if isTimeout(err) && n == 0 && ctxBound {
			// Our deadline was the context's, which may fire a hair later.
			return nil, recv, context.DeadlineExceeded
		}
		if isTimeout(err) {
			if n == 0 {
				return nil, recv, ErrTimeout
			}
			return nil, recv, frameErr(FrameShort, t.rbuf[:n], "%d bytes, want %d", n, need)
		}
		return nil, recv, fmt.Errorf("read: %w", err)
	}
	if t.silence > 0 {
		// Anything arriving within one silence after the expected end
		// belongs to this frame (or is noise): the frame is overlong.
		for n < len(t.rbuf) {
			if err := t.port.SetReadDeadline(time.Now().Add(t.silence)); err != nil {
				return nil, recv, fmt.Errorf("set read deadline: %w", err)
			}
			k, err := t.port.Read(t.rbuf[n:])
			if k > 0 {
				n += k
				recv = time.Now()
				continue
			}
			if err != nil {
				break
			}
		}
	}
	if n > need {
		return nil, recv, frameErr(FrameOverlong, t.rbuf[:n], "%d bytes, want %d", n, need)
	}
	return t.rbuf[:n], recv, nil
}

// drain discards whatever is on the line until it has been quiet for a
// silence, after a failed transaction: a late or overlong answer must not
// be read as the answer to the next request. Bounded by the timeout.
func (t *rtu) drain(ctx context.Context) error {
	quiet := max(t.silence, 2*time.Millisecond)
	end := time.Now().Add(t.timeout)
	defer func() { _ = t.port.SetReadDeadline(time.Time{}) }()
	for time.Now().Before(end) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := t.port.SetReadDeadline(time.Now().Add(quiet)); err != nil {
			return fmt.Errorf("set read deadline: %w", err)
		}
		k, err := t.port.Read(t.rbuf[:])
		if k == 0 && err != nil {
			if isTimeout(err) {
				break
			}
			return fmt.Errorf("read: %w", err)
		}
	}
	t.dirty = false
	t.idleAt = time.Now()
	return nil
}

// DecodeRTU checks an RTU response frame to a request sent to unit and
// returns its PDU (aliasing frame). The CRC is checked first, so a flipped
// bit anywhere, the unit id included, is reported as a CRC error. It does
// not look inside the PDU beyond the function code and length; see
// [ParseResponse].
func DecodeRTU(unit byte, req *Request, frame []byte) ([]byte, error) {
	if len(frame) < 5 {
		return nil, frameErr(FrameShort, frame, "%d bytes", len(frame))
	}
	if ok, got, want := checkCRC(frame); !ok {
		return nil, frameErr(FrameCRC, frame, "got 0x%04x, want 0x%04x", got, want)
	}
	if frame[0] != unit {
		return nil, frameErr(FrameWrongUnit, frame, "unit %d, want %d", frame[0], unit)
	}
	if frame[1]&^exceptionBit != byte(req.Function) {
		return nil, frameErr(FrameWrongFunction, frame, "function 0x%02X, want 0x%02X", frame[1], byte(req.Function))
	}
	want := rtuFrameLen(req, frame)
	if len(frame) < want {
		return nil, frameErr(FrameShort, frame, "%d bytes, want %d", len(frame), want)
	}
	if len(frame) > want {
		return nil, frameErr(FrameOverlong, frame, "%d bytes, want %d", len(frame), want)
	}
	return frame[1 : len(frame)-2], nil
}
