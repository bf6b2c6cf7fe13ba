package rudp

import (
	"encoding/binary"
	"net"
	"os"
	"testing"
	"time"
)

// nullLower is a lower layer the fuzzer never reads from or writes to:
// it drives the engine's receive and acknowledgement paths directly.
type nullLower struct{}

func (nullLower) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (nullLower) Write(b []byte) (int, error)      { return len(b), nil }
func (nullLower) Close() error                     { return nil }
func (nullLower) LocalAddr() net.Addr              { return pipeAddr("fuzz-local") }
func (nullLower) RemoteAddr() net.Addr             { return pipeAddr("fuzz-peer") }
func (nullLower) SetDeadline(time.Time) error      { return os.ErrNoDeadline }
func (nullLower) SetReadDeadline(time.Time) error  { return os.ErrNoDeadline }
func (nullLower) SetWriteDeadline(time.Time) error { return os.ErrNoDeadline }

// FuzzSegments feeds datagrams from the network to a Conn with data of its
// own in flight: reassembly of out-of-order data, the SACK runs it
// reports, and the sender's processing of acks and SACK blocks (delivery,
// loss detection, retransmission). Whatever arrives, the engine keeps its
// invariants and its memory within the receive window.
func FuzzSegments(f *testing.F) {
	seg := func(s segment) []byte { return appendSegment(nil, &s) }
	frame := func(ds ...[]byte) []byte {
		var b []byte
		for _, d := range ds {
			b = binary.BigEndian.AppendUint16(b, uint16(len(d)))
			b = append(b, d...)
		}
		return b
	}
	f.Add(frame(
		seg(segment{kind: kindData, seq: 0, wnd: 64, tsval: 1, payload: []byte("hello")}),
		seg(segment{kind: kindData, seq: 2, wnd: 64, tsval: 2, payload: []byte("out of order")}),
		seg(segment{kind: kindAck, ack: 3, wnd: 64, tsval: 3, tsecr: 1, blocks: []sackBlock{{5, 7}, {9, 12}}}),
		seg(segment{kind: kindData, seq: 1, wnd: 64, tsval: 4, payload: []byte("fills the hole")}),
		seg(segment{kind: kindFin, seq: 3, wnd: 64, tsval: 5}),
	))
	f.Add(frame(
		seg(segment{kind: kindAck, ack: 0, wnd: 1 << 31, tsval: 1, blocks: []sackBlock{{1, 2}, {3, 4}, {5, 40}}}),
		seg(segment{kind: kindAck, ack: 40, wnd: 0, tsval: 2}),
		seg(segment{kind: kindPing, tsval: 3}),
	))
	f.Add(frame(seg(segment{kind: kindData, seq: 1 << 40, wnd: 1, tsval: 9, payload: []byte("far ahead")})))
	f.Fuzz(func(t *testing.T, in []byte) {
		opt := Options{RecvWindow: 32, MTU: 600}.withDefaults()
		now := time.Unix(1e9, 0)
		c := makeConn(nullLower{}, opt, now)
		c.pbuf = make([]byte, 20*c.mss) // data of our own, so acks have something to act on
		bufs := make([][]byte, burst)
		for i := range bufs {
			bufs[i] = make([]byte, 0, opt.MTU)
		}
		var s segment
		c.mu.Lock()
		defer c.mu.Unlock()
		c.fillLocked(now, bufs)
		for len(in) >= 2 {
			n := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			if n > len(in) {
				n = len(in)
			}
			d := in[:n]
			in = in[n:]
			now = now.Add(time.Millisecond)
			if err := decodeSegment(d, &s); err != nil {
				continue
			}
			c.onSegmentLocked(now, &s)
			c.fillLocked(now, bufs)
			checkInvariants(t, c)
		}
	})
}

func checkInvariants(t *testing.T, c *Conn) {
	t.Helper()
	if c.sndUna > c.sndNxt || uint64(len(c.out)) != c.sndNxt-c.sndUna {
		t.Fatalf("send window: una %d nxt %d with %d segments out", c.sndUna, c.sndNxt, len(c.out))
	}
	if c.inflight < 0 || c.outBytes < 0 {
		t.Fatalf("inflight %d, outBytes %d", c.inflight, c.outBytes)
	}
	if len(c.ooo) > c.opt.RecvWindow {
		t.Fatalf("%d out-of-order segments buffered, window %d", len(c.ooo), c.opt.RecvWindow)
	}
	for q := range c.ooo {
		if q <= c.rcvNxt {
			t.Fatalf("out-of-order segment %d at or below rcvNxt %d", q, c.rcvNxt)
		}
	}
	prev := c.rcvNxt
	for i, r := range c.ranges {
		if r.start <= prev || r.end <= r.start {
			t.Fatalf("SACK run %d [%d, %d) after %d: not ascending, disjoint and above the cumulative point", i, r.start, r.end, prev)
		}
		prev = r.end
	}
	if q := len(c.rbuf) - c.roff; q > (c.opt.RecvWindow+1)*c.mss {
		t.Fatalf("%d bytes queued for Read, window %d segments of %d", q, c.opt.RecvWindow, c.mss)
	}
	for _, b := range c.reportBlocksLocked() {
		if b.start <= c.rcvNxt || b.end <= b.start {
			t.Fatalf("reported SACK block [%d, %d) with rcvNxt %d", b.start, b.end, c.rcvNxt)
		}
	}
}
