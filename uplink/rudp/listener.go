//lint:file-ignore SA1019 pion's *dtls.Config is this package's API until pion v4 (see dtls.go)

package rudp

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/weirgw/weir/uplink"
)

// Listener accepts DTLS sessions; Accept returns each after its handshake.
// Handshakes are bounded before anything is known of the peer: at most
// Options.HandshakeBudget under way, Options.HandshakesPerPrefix from one
// source prefix, each for at most Options.HandshakeTimeout; when a budget
// is spent the oldest handshake whose peer never proved its address makes
// room (see mux).
type Listener struct {
	mux      *mux
	cfg      *dtls.Config
	opt      Options
	ctx      context.Context // cancelled by Close, ending handshakes under way
	cancel   context.CancelFunc
	accepted chan *Conn
	done     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

// Listen listens on the UDP address addr.
func Listen(addr string, cfg *dtls.Config, opt Options) (*Listener, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	laddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("rudp: resolve %s: %w", addr, err)
	}
	pc, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("rudp: listen on %s: %w", addr, err)
	}
	sizeBuffers(pc, 4<<20)
	l := &Listener{cfg: tune(cfg, opt), opt: opt, accepted: make(chan *Conn, opt.AcceptBacklog), done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.mux = newMux(pc, opt.HandshakeBudget, opt.HandshakesPerPrefix, func(vc *vconn) {
		l.wg.Add(1)
		go l.handshake(vc)
	}, l.refused)
	l.mux.start()
	return l, nil
}

func (l *Listener) refused(remote net.Addr, reason string) {
	if l.opt.OnHandshakeError != nil {
		l.opt.OnHandshakeError(remote, &uplink.ReasonError{Reason: uplink.ReasonBusy,
			Err: fmt.Errorf("rudp: ClientHello from %s refused: %s budget spent by handshakes that proved their address", remote, reason)})
	}
}

// handshake runs the handshake of a session the mux admitted, in its own
// goroutine, so a slow or hostile client does not hold up the others.
func (l *Listener) handshake(vc *vconn) {
	defer l.wg.Done()
	// Each session gets a configuration of its own whose connection ID is
	// the one the mux routes by.
	cfg := *l.cfg
	if cfg.ConnectionIDGenerator != nil {
		cfg.ConnectionIDGenerator = func() []byte { return vc.cid[:] }
	}
	dc, err := dtls.Server(vc, vc.raddr, &cfg)
	if err != nil {
		vc.Close()
		l.failed(vc, err)
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.opt.HandshakeTimeout)
	defer cancel()
	start := time.Now()
	if err := dc.HandshakeContext(ctx); err != nil {
		dc.Close()
		vc.Close()
		l.failed(vc, err)
		return
	}
	l.mux.established(vc)
	c := newDTLSConn(dc, l.opt, time.Since(start))
	select {
	case l.accepted <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *Listener) failed(vc *vconn, err error) {
	err = fmt.Errorf("rudp: handshake with %s: %w", vc.raddr, err)
	if vc.evicted.Load() {
		err = &uplink.ReasonError{Reason: uplink.ReasonBusy, Err: fmt.Errorf("rudp: handshake with %s: %w", vc.raddr, errEvicted)}
	}
	// Anyone can start a handshake; the caller counts and logs failures
	// within its own limits.
	l.opt.Logger.Debug("rudp: handshake failed", "peer", vc.raddr.String(), "err", err)
	if l.opt.OnHandshakeError != nil {
		l.opt.OnHandshakeError(vc.raddr, err)
	}
}

// Accept returns the next session whose handshake completed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accepted:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("rudp: accept on %s: %w", l.Addr(), net.ErrClosed)
	}
}

// AcceptRUDP is Accept returning the concrete type.
func (l *Listener) AcceptRUDP() (*Conn, error) {
	c, err := l.Accept()
	if err != nil {
		return nil, err
	}
	return c.(*Conn), nil
}

// Close stops listening. Sessions already accepted stay open; the socket
// closes with the last of them.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.cancel()
		l.mux.close()
		// Sessions handshaken but never accepted would leak otherwise.
		go func() {
			l.wg.Wait()
			for {
				select {
				case c := <-l.accepted:
					c.Close()
				default:
					return
				}
			}
		}()
	})
	return nil
}

// Addr returns the UDP address listened on.
func (l *Listener) Addr() net.Addr { return l.mux.pc.LocalAddr() }

// Handshakes is the number of handshakes under way.
func (l *Listener) Handshakes() int { return l.mux.pendingCount() }
