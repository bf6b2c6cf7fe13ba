package rudp

import (
	"container/heap"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// linkCfg describes one direction of an emulated path.
type linkCfg struct {
	loss    float64       // probability a datagram is dropped
	dup     float64       // probability a datagram is delivered twice
	reorder float64       // probability a datagram is held back by an extra delay
	delay   time.Duration // one-way propagation delay
	rate    float64       // bottleneck bytes/s; 0: unlimited
	queue   time.Duration // drop-tail queue, as time at rate; 0: unlimited
	seed    uint64
}

type pkt struct {
	at   time.Time
	n    uint64 // arrival order, keeps equal times FIFO
	data []byte
}

type pktHeap []pkt

func (h pktHeap) Len() int { return len(h) }
func (h pktHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].n < h[j].n
	}
	return h[i].at.Before(h[j].at)
}
func (h pktHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pktHeap) Push(x any)   { *h = append(*h, x.(pkt)) }
func (h *pktHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}

// link carries datagrams one way with loss, duplication, reordering,
// delay and a rate-limited drop-tail queue.
type link struct {
	mu      sync.Mutex
	cfg     linkCfg
	rng     *rand.Rand
	h       pktHeap
	n       uint64
	busy    time.Time
	dst     *pipeEnd
	wake    chan struct{}
	stop    chan struct{}
	dropped int
}

func (l *link) send(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rng.Float64() < l.cfg.loss {
		l.dropped++
		return
	}
	now := time.Now()
	at := now
	if l.cfg.rate > 0 {
		if l.busy.Before(now) {
			l.busy = now
		}
		if l.cfg.queue > 0 && l.busy.Sub(now) > l.cfg.queue {
			l.dropped++
			return
		}
		l.busy = l.busy.Add(time.Duration(float64(len(p)) / l.cfg.rate * 1e9))
		at = l.busy
	}
	at = at.Add(l.cfg.delay)
	copies := 1
	if l.rng.Float64() < l.cfg.dup {
		copies = 2
	}
	for i := 0; i < copies; i++ {
		t := at
		if l.rng.Float64() < l.cfg.reorder {
			t = t.Add(time.Duration(1+l.rng.IntN(3)) * max(l.cfg.delay/2, time.Millisecond))
		}
		l.n++
		heap.Push(&l.h, pkt{at: t, n: l.n, data: append([]byte(nil), p...)})
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *link) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.mu.Lock()
		now := time.Now()
		for len(l.h) > 0 && !l.h[0].at.After(now) {
			p := heap.Pop(&l.h).(pkt)
			select {
			case l.dst.in <- p.data:
			default: // a full socket buffer drops
			}
		}
		d := time.Hour
		if len(l.h) > 0 {
			d = l.h[0].at.Sub(now)
		}
		l.mu.Unlock()
		timer.Reset(d)
		select {
		case <-l.wake:
		case <-timer.C:
		case <-l.stop:
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// pipeEnd is one side of an in-memory datagram connection.
type pipeEnd struct {
	in       chan []byte
	out      *link
	peer     *pipeEnd
	closed   chan struct{}
	once     sync.Once
	peerGone chan struct{} // the peer closed: Read ends with io.EOF, as DTLS does on close_notify
	addr     net.Addr
}

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// newPipe returns two connected ends; ab carries a→b, ba carries b→a.
func newPipe(ab, ba linkCfg) (*pipeEnd, *pipeEnd) {
	a := &pipeEnd{in: make(chan []byte, 8192), closed: make(chan struct{}), peerGone: make(chan struct{}), addr: pipeAddr("a")}
	b := &pipeEnd{in: make(chan []byte, 8192), closed: make(chan struct{}), peerGone: make(chan struct{}), addr: pipeAddr("b")}
	a.peer, b.peer = b, a
	stop := make(chan struct{})
	a.out = &link{cfg: ab, rng: rand.New(rand.NewPCG(ab.seed, 1)), dst: b, wake: make(chan struct{}, 1), stop: stop}
	b.out = &link{cfg: ba, rng: rand.New(rand.NewPCG(ba.seed, 2)), dst: a, wake: make(chan struct{}, 1), stop: stop}
	go a.out.run()
	go b.out.run()
	var once sync.Once
	stopBoth := func() { once.Do(func() { close(stop) }) }
	go func() {
		<-a.closed
		<-b.closed
		stopBoth()
	}()
	return a, b
}

func (p *pipeEnd) Read(b []byte) (int, error) {
	select {
	case d := <-p.in:
		return copy(b, d), nil
	case <-p.closed:
		return 0, net.ErrClosed
	case <-p.peerGone:
		select {
		case d := <-p.in:
			return copy(b, d), nil
		default:
			return 0, io.EOF
		}
	}
}

func (p *pipeEnd) Write(b []byte) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	default:
	}
	p.out.send(b)
	return len(b), nil
}

func (p *pipeEnd) Close() error {
	p.once.Do(func() {
		close(p.closed)
		close(p.peer.peerGone)
	})
	return nil
}

func (p *pipeEnd) LocalAddr() net.Addr              { return p.addr }
func (p *pipeEnd) RemoteAddr() net.Addr             { return p.peer.addr }
func (p *pipeEnd) SetDeadline(time.Time) error      { return os.ErrNoDeadline }
func (p *pipeEnd) SetReadDeadline(time.Time) error  { return os.ErrNoDeadline }
func (p *pipeEnd) SetWriteDeadline(time.Time) error { return os.ErrNoDeadline }
func newConnPair(ab, ba linkCfg, opt Options) (*Conn, *Conn) {
	a, b := newPipe(ab, ba)
	opt = opt.withDefaults()
	return newConn(a, opt), newConn(b, opt)
}
