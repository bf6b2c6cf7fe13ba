package syslogtls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/siem"
)

// Options configure a Target.
type Options struct {
	Address    string // host:port
	ServerName string // the name the receiver's certificate must carry; default: the host of Address
	Identity   *uplink.Identity
	Format     siem.Format
	Encoding   siem.EncodingConfig
	// Timeout bounds the dial and handshake, each write, and the wait for
	// the receiver's TCP to acknowledge a batch.
	Timeout time.Duration
}

// Target is a syslog-over-TLS receiver.
type Target struct {
	opt  Options
	enc  siem.Encoder
	wrap *siem.RFC5424 // the header around CEF, LEEF and ECS
	buf  []byte
	msg  []byte

	mu     sync.Mutex
	conn   *conn
	closed bool
}

// New builds a target; nothing is dialled until the first Deliver.
func New(opt Options) (*Target, error) {
	enc, err := siem.New(opt.Format, opt.Encoding)
	if err != nil {
		return nil, err
	}
	if opt.ServerName == "" {
		host, _, err := net.SplitHostPort(opt.Address)
		if err != nil {
			return nil, fmt.Errorf("syslogtls: address %q: %w", opt.Address, err)
		}
		opt.ServerName = host
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	w, _ := siem.New(siem.FormatRFC5424, opt.Encoding)
	return &Target{opt: opt, enc: enc, wrap: w.(*siem.RFC5424)}, nil
}

// conn is one connection and what its reader saw: a receiver sends
// nothing, so anything read, or the end of the stream, means it is gone.
type conn struct {
	tc   *tls.Conn
	mu   sync.Mutex
	dead error
}

func (c *conn) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

func (c *conn) read() {
	var b [512]byte
	for {
		n, err := c.tc.Read(b[:])
		c.mu.Lock()
		switch {
		case n > 0:
			c.dead = errors.New("syslog receiver sent data, which RFC 5425 receivers never do; closing")
		case err != nil:
			c.dead = fmt.Errorf("syslog receiver closed the connection: %w", err)
		}
		dead := c.dead != nil
		c.mu.Unlock()
		if dead {
			c.tc.Close()
			return
		}
	}
}

func (t *Target) connect(ctx context.Context) (*conn, error) {
	if t.conn != nil {
		if err := t.conn.failed(); err == nil {
			return t.conn, nil
		}
		t.conn.tc.Close()
		t.conn = nil
	}
	cfg, err := t.opt.Identity.ClientConfig(t.opt.ServerName)
	if err != nil {
		return nil, fmt.Errorf("syslogtls: %s: identity: %w", t.opt.Address, err)
	}
	dctx, cancel := context.WithTimeout(ctx, t.opt.Timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: cfg}
	nc, err := d.DialContext(dctx, "tcp", t.opt.Address)
	if err != nil {
		return nil, fmt.Errorf("syslogtls: connect %s: %w", t.opt.Address, err)
	}
	c := &conn{tc: nc.(*tls.Conn)}
	go c.read()
	t.conn = c
	return c, nil
}

// Deliver writes the batch, octet-counted, and returns once the
// receiver's TCP acknowledged every byte and the connection did not fail.
func (t *Target) Deliver(ctx context.Context, evs []*event.Event) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("syslogtls: closed")
	}
	c, err := t.connect(ctx)
	if err != nil {
		return err
	}
	t.buf = t.buf[:0]
	for _, e := range evs {
		t.msg = t.encode(t.msg[:0], e)
		t.buf = siem.AppendFrame(t.buf, t.msg)
	}
	fail := func(err error) error {
		c.tc.Close()
		t.conn = nil
		return fmt.Errorf("syslogtls: %s: %w", t.opt.Address, err)
	}
	_ = c.tc.SetWriteDeadline(time.Now().Add(t.opt.Timeout))
	if _, err := c.tc.Write(t.buf); err != nil {
		return fail(fmt.Errorf("write %d records: %w", len(evs), err))
	}
	if err := drain(ctx, c.tc, t.opt.Timeout); err != nil {
		return fail(err)
	}
	if err := c.failed(); err != nil {
		return fail(err)
	}
	return nil
}

// encode writes one record: RFC 5424 as it is, the other formats as the
// MSG of an RFC 5424 header without structured data.
func (t *Target) encode(b []byte, e *event.Event) []byte {
	if t.enc.Format() == siem.FormatRFC5424 {
		return t.enc.Append(b, e)
	}
	b = t.wrap.AppendHeader(b, e)
	b = append(b, " - "...)
	return t.enc.Append(b, e)
}

// Close closes the connection.
func (t *Target) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.conn != nil {
		t.conn.tc.Close()
		t.conn = nil
	}
	return nil
}

// unacked is how many bytes the kernel holds for the peer; ok is false
// where it cannot say.
func unacked(tc *tls.Conn) (n int, ok bool) {
	tcp, isTCP := tc.NetConn().(*net.TCPConn)
	if !isTCP {
		return 0, false
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		return 0, false
	}
	return outq(rc)
}

// drain waits until the peer's TCP has acknowledged everything written.
func drain(ctx context.Context, tc *tls.Conn, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	wait := 200 * time.Microsecond
	for {
		n, ok := unacked(tc)
		if !ok || n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the receiver's TCP did not acknowledge %d bytes within %s", n, timeout)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}
