package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// TCPConfig configures a Modbus TCP master.
type TCPConfig struct {
	// Address is host:port of the device or gateway, e.g. "10.0.0.7:502".
	Address string `mapstructure:"address" yaml:"address"`
	// Timeout bounds each attempt from sending the request to its answer.
	// 0 means 1 s.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
	// DialTimeout bounds connecting. 0 means the Timeout.
	DialTimeout time.Duration `mapstructure:"dial_timeout" yaml:"dial_timeout"`
	// Retries is how many more attempts a timed-out or damaged transaction
	// gets.
	Retries int `mapstructure:"retries" yaml:"retries"`
	// MaxInFlight is how many requests may await their answers on the
	// connection at once. Many devices and most TCP-to-RTU gateways handle
	// one at a time and drop or mix up the rest; 0 means 1.
	MaxInFlight int `mapstructure:"max_in_flight" yaml:"max_in_flight"`
	// Dial opens the connection; nil means net.Dialer. Tests use it to run
	// over net.Pipe.
	Dial func(ctx context.Context, network, address string) (net.Conn, error) `mapstructure:"-" yaml:"-"`
}

// Validate checks the configuration; errors name the key.
func (c TCPConfig) Validate() error {
	switch {
	case c.Address == "":
		return errors.New("address: empty")
	case c.Timeout < 0:
		return fmt.Errorf("timeout: %s is negative", c.Timeout)
	case c.DialTimeout < 0:
		return fmt.Errorf("dial_timeout: %s is negative", c.DialTimeout)
	case c.Retries < 0 || c.Retries > 10:
		return fmt.Errorf("retries: %d out of range 0..10", c.Retries)
	case c.MaxInFlight < 0 || c.MaxInFlight > 64:
		return fmt.Errorf("max_in_flight: %d out of range 1..64", c.MaxInFlight)
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return fmt.Errorf("address: %w", err)
	}
	return nil
}

// NewTCP returns a master for the device at cfg.Address. It connects on the
// first request and again after any connection failure, so a device that
// restarts is picked up by the next poll.
func NewTCP(cfg TCPConfig) (*Master, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("modbus: tcp %s: %w", cfg.Address, err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = cfg.Timeout
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 1
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	t := &tcp{cfg: cfg, slots: make(chan *slot, cfg.MaxInFlight), pending: make(map[uint16]*slot)}
	for range cfg.MaxInFlight {
		tm := time.NewTimer(time.Hour)
		tm.Stop()
		t.slots <- &slot{done: make(chan result, 1), timer: tm}
	}
	m := newMaster(t, cfg.Retries)
	t.stats = &m.stats
	return m, nil
}

// slot is one request in flight. The slots channel is both the pool of
// their buffers and the semaphore bounding requests in flight.
type slot struct {
	txid  uint16
	unit  byte
	req   *Request
	buf   [260]byte
	done  chan result
	timer *time.Timer // reused: a timer per transaction would be the master's largest allocation
}

type result struct {
	pdu  []byte // aliases slot.buf
	recv time.Time
	err  error
}

type tcp struct {
	cfg   TCPConfig
	stats *counters
	slots chan *slot

	mu      sync.Mutex // guards everything below
	conn    net.Conn
	gen     int // connections dialled
	nextID  uint16
	pending map[uint16]*slot
	closed  bool
	dialing chan struct{} // closed when the dial under way ends

	wmu  sync.Mutex // one writer at a time on conn
	wbuf [260]byte
}

func (t *tcp) name() string { return t.cfg.Address }

func (t *tcp) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.conn != nil {
		return t.conn.Close()
	}
	return nil
}

// connect returns the current connection, dialling one if there is none.
// Concurrent callers wait for one dial rather than each opening their own.
func (t *tcp) connect(ctx context.Context) (net.Conn, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		if t.conn != nil {
			c := t.conn
			t.mu.Unlock()
			return c, nil
		}
		if t.dialing != nil {
			ch := t.dialing
			t.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		t.dialing = ch
		t.mu.Unlock()

		dctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout)
		c, err := t.cfg.Dial(dctx, "tcp", t.cfg.Address)
		cancel()

		t.mu.Lock()
		t.dialing = nil
		close(ch)
		if err != nil {
			t.mu.Unlock()
			return nil, fmt.Errorf("connect: %w", err)
		}
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return nil, ErrClosed
		}
		t.conn = c
		t.gen++
		if t.gen > 1 {
			t.stats.reconnects.Add(1)
		}
		t.mu.Unlock()
		go t.readLoop(c)
		return c, nil
	}
}

// drop closes c if it is still the current connection and fails every
// request waiting on it, so they retry on a new one.
func (t *tcp) drop(c net.Conn, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != c {
		return
	}
	c.Close()
	t.conn = nil
	for id, s := range t.pending {
		delete(t.pending, id)
		s.done <- result{err: err}
	}
}

// readLoop reads MBAP frames from c and hands each to the request waiting
// for its transaction id. A stream that loses framing (bad header) cannot be
// resynchronised, so the connection is dropped.
func (t *tcp) readLoop(c net.Conn) {
	var hdr [7]byte
	var body [260]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.drop(c, fmt.Errorf("read: %w", err))
			return
		}
		n, err := mbapLen(hdr[:])
		if err != nil {
			// Not counted here: every request it fails counts it.
			t.drop(c, err)
			return
		}
		if _, err := io.ReadFull(c, body[:n]); err != nil {
			t.drop(c, fmt.Errorf("read: %w", err))
			return
		}
		recv := time.Now()
		id := u16(hdr[:])
		t.mu.Lock()
		s, ok := t.pending[id]
		if !ok {
			t.mu.Unlock()
			// A late answer to a request that timed out: counted, dropped.
			t.stats.countFrame(FrameWrongTransaction)
			continue
		}
		delete(t.pending, id)
		var r result
		r.recv = recv
		switch {
		case hdr[6] != s.unit:
			raw := append(append([]byte(nil), hdr[:]...), body[:n]...)
			r.err = frameErr(FrameWrongUnit, raw, "unit %d, want %d", hdr[6], s.unit)
		case body[0]&^exceptionBit != byte(s.req.Function):
			raw := append(append([]byte(nil), hdr[:]...), body[:n]...)
			r.err = frameErr(FrameWrongFunction, raw, "function 0x%02X, want 0x%02X", body[0], byte(s.req.Function))
		default:
			r.pdu = s.buf[:copy(s.buf[:], body[:n])]
		}
		s.done <- r
		t.mu.Unlock()
	}
}

// mbapLen checks an MBAP header and returns the PDU length it announces.
func mbapLen(hdr []byte) (int, error) {
	proto, length := u16(hdr[2:]), int(u16(hdr[4:]))
	if proto != 0 {
		return 0, frameErr(FrameBadHeader, hdr, "protocol id %d", proto)
	}
	if length < 2 || length > maxPDU+1 {
		return 0, frameErr(FrameBadHeader, hdr, "length %d", length)
	}
	return length - 1, nil
}

// DecodeTCP splits one MBAP frame (header and PDU) and checks it against a
// request with transaction id txid to unit. It returns the PDU, aliasing
// frame. Like [DecodeRTU] it checks framing only; see [ParseResponse].
func DecodeTCP(txid uint16, unit byte, req *Request, frame []byte) ([]byte, error) {
	if len(frame) < 8 {
		return nil, frameErr(FrameShort, frame, "%d bytes", len(frame))
	}
	n, err := mbapLen(frame)
	if err != nil {
		return nil, err
	}
	switch {
	case len(frame) < 7+n:
		return nil, frameErr(FrameShort, frame, "%d bytes, header says %d", len(frame), 7+n)
	case len(frame) > 7+n:
		return nil, frameErr(FrameOverlong, frame, "%d bytes, header says %d", len(frame), 7+n)
	case u16(frame) != txid:
		return nil, frameErr(FrameWrongTransaction, frame, "transaction %d, want %d", u16(frame), txid)
	case frame[6] != unit:
		return nil, frameErr(FrameWrongUnit, frame, "unit %d, want %d", frame[6], unit)
	case frame[7]&^exceptionBit != byte(req.Function):
		return nil, frameErr(FrameWrongFunction, frame, "function 0x%02X, want 0x%02X", frame[7], byte(req.Function))
	}
	return frame[7:], nil
}

// AppendMBAP appends an MBAP frame of pdu for unit with transaction id
// txid to b.
func AppendMBAP(b []byte, txid uint16, unit byte, pdu []byte) []byte {
	b = appendU16(b, txid)
	b = appendU16(b, 0)
	b = appendU16(b, uint16(len(pdu)+1))
	b = append(b, unit)
	return append(b, pdu...)
}

func (t *tcp) roundTrip(ctx context.Context, unit byte, req *Request, pdu, buf []byte) (resp []byte, sent, recv time.Time, err error) {
	var s *slot
	select {
	case s = <-t.slots:
	case <-ctx.Done():
		return nil, sent, recv, ctx.Err()
	}
	defer func() { t.slots <- s }()
	c, err := t.connect(ctx)
	if err != nil {
		return nil, sent, recv, err
	}
	t.mu.Lock()
	if t.conn != c { // dropped while we were getting here
		t.mu.Unlock()
		return nil, sent, recv, errors.New("connection lost")
	}
	t.nextID++
	for t.pending[t.nextID] != nil {
		t.nextID++
	}
	s.txid, s.unit, s.req = t.nextID, unit, req
	t.pending[s.txid] = s
	t.mu.Unlock()

	// Since Go 1.23 Reset and Stop leave no stale tick in the channel.
	timer := s.timer
	timer.Reset(t.cfg.Timeout)
	defer timer.Stop()

	t.wmu.Lock()
	frame := AppendMBAP(t.wbuf[:0], s.txid, unit, pdu)
	_ = c.SetWriteDeadline(time.Now().Add(t.cfg.Timeout))
	sent = time.Now()
	_, werr := c.Write(frame)
	t.wmu.Unlock()
	if werr != nil {
		t.drop(c, werr)
		t.forget(s)
		return nil, sent, recv, fmt.Errorf("write: %w", werr)
	}
	select {
	case r := <-s.done:
		if r.err != nil {
			return nil, sent, r.recv, r.err
		}
		return append(buf[:0], r.pdu...), sent, r.recv, nil
	case <-timer.C:
		// The connection is kept: a late answer no longer matches a
		// pending id and is counted and dropped by the reader.
		t.forget(s)
		return nil, sent, recv, ErrTimeout
	case <-ctx.Done():
		t.forget(s)
		return nil, sent, recv, ctx.Err()
	}
}

// forget removes s from the pending requests and empties its channel, so
// the slot can be reused without a stale answer in it.
func (t *tcp) forget(s *slot) {
	t.mu.Lock()
	if t.pending[s.txid] == s {
		delete(t.pending, s.txid)
	}
	select {
	case <-s.done:
	default:
	}
	t.mu.Unlock()
}
