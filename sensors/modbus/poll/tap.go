package poll

import (
	"encoding/hex"
	"net"
	"sync"
	"time"

	"github.com/weirgw/weir/sensors/modbus"
)

// Frame is bytes seen on a line during a diagnostic read: tx what the
// master wrote, rx what came back (consecutive reads joined).
type Frame struct {
	Dir string    `json:"dir"` // tx or rx
	At  time.Time `json:"at"`
	Hex string    `json:"hex"`
}

// tap records the bytes crossing a line while capturing is on; one-off
// reads for field diagnosis show them.
type tap struct {
	mu     sync.Mutex
	on     bool
	frames []Frame
	raw    []byte
}

func (t *tap) start() {
	t.mu.Lock()
	t.on, t.frames, t.raw = true, nil, nil
	t.mu.Unlock()
}

func (t *tap) stop() []Frame {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flush()
	t.on = false
	return t.frames
}

func (t *tap) flush() {
	if n := len(t.frames); n > 0 && t.raw != nil {
		t.frames[n-1].Hex = hex.EncodeToString(t.raw)
	}
}

func (t *tap) record(dir string, b []byte) {
	if len(b) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.on {
		return
	}
	if n := len(t.frames); n == 0 || t.frames[n-1].Dir != dir {
		t.flush()
		t.frames = append(t.frames, Frame{Dir: dir, At: time.Now()})
		t.raw = t.raw[:0:0]
	}
	t.raw = append(t.raw, b...)
	t.flush()
}

// tapPort taps an RTU line.
type tapPort struct {
	modbus.Port
	t *tap
}

func (p tapPort) Read(b []byte) (int, error) {
	n, err := p.Port.Read(b)
	p.t.record("rx", b[:n])
	return n, err
}

// Write records the bytes before writing them: on a fast line the answer
// can be read (and recorded) before the write call has returned.
func (p tapPort) Write(b []byte) (int, error) {
	p.t.record("tx", b)
	return p.Port.Write(b)
}

// tapConn taps a TCP connection.
type tapConn struct {
	net.Conn
	t *tap
}

func (c tapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.t.record("rx", b[:n])
	return n, err
}

func (c tapConn) Write(b []byte) (int, error) {
	c.t.record("tx", b)
	return c.Conn.Write(b)
}
