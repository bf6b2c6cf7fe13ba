//lint:file-ignore SA1019 pion's *dtls.Config is this package's API until pion v4 (see dtls.go)

package rudp

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
)

// Listener accepts DTLS sessions; Accept returns each after its handshake.
type Listener struct {
	inner    net.Listener
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
	inner, err := dtls.Listen("udp", laddr, tune(cfg, opt))
	if err != nil {
		return nil, fmt.Errorf("rudp: listen on %s: %w", addr, err)
	}
	l := &Listener{inner: inner, opt: opt, accepted: make(chan *Conn, opt.AcceptBacklog), done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// acceptLoop runs each handshake in its own goroutine, so a slow or
// hostile client does not hold up the others.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		raw, err := l.inner.Accept()
		if err != nil {
			l.Close()
			return
		}
		dc, ok := raw.(*dtls.Conn)
		if !ok {
			raw.Close()
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.handshake(dc)
		}()
	}
}

func (l *Listener) handshake(dc *dtls.Conn) {
	ctx, cancel := context.WithTimeout(l.ctx, l.opt.HandshakeTimeout)
	defer cancel()
	start := time.Now()
	if err := dc.HandshakeContext(ctx); err != nil {
		dc.Close()
		err = fmt.Errorf("rudp: handshake with %s: %w", dc.RemoteAddr(), err)
		l.opt.Logger.Warn("rudp: handshake failed", "peer", dc.RemoteAddr().String(), "err", err)
		if l.opt.OnHandshakeError != nil {
			l.opt.OnHandshakeError(dc.RemoteAddr(), err)
		}
		return
	}
	c := newDTLSConn(dc, l.opt, time.Since(start))
	select {
	case l.accepted <- c:
	case <-l.done:
		c.Close()
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

// Close stops listening. Sessions already accepted stay open.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		l.cancel()
		err = l.inner.Close()
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
	return err
}

// Addr returns the UDP address listened on.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }
