package collector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink"
)

// Sink holds records durably. Write stores the entries it does not hold
// yet and returns only once they are on stable storage; checking and
// recording what it holds happen under one lock, so Servers sharing a sink
// never write a sequence twice.
type Sink interface {
	Write(gateway string, entries []Entry) (WriteResult, error)
	// Holds reports whether seq of gateway is held (a cheap pre-check; Write
	// checks again).
	Holds(gateway string, seq uint64) bool
	// Resume takes the gateway's Hello.Floor as far as the sink can check
	// it and returns the mark for Welcome (see seqSet.claim).
	Resume(gateway string, floor uint64) Resumed
	// Alert stores one of the collector's own records.
	Alert(ev *event.Event) error
}

// WriteResult says what a Write did.
type WriteResult struct {
	Written   int // entries written; the others were held already
	Forgotten int // dedupe ranges dropped to keep the gateway's state within its cap
}

// SecureConn is an authenticated connection: TLS once its handshake is
// done, or an uplink/rudp DTLS stream, whose listener hands out conns
// already handshaken.
type SecureConn interface {
	net.Conn
	PeerCertificates() []*x509.Certificate
}

// Server accepts gateway sessions on any number of listeners.
type Server struct {
	cfg      Config
	tls      *tls.Config
	sink     Sink
	log      *slog.Logger
	rlog     *rateLog
	gate     *gate
	budget   *budget
	deny     *denyWatch
	quar     *quarantine
	metrics  *metrics
	alerts   *alertLimit
	decoders *decoders
	bufs     sync.Pool  // *batchBufs
	bundles  *Bundles   // nil: no configuration bundles served
	seals    *SealCheck // nil: logs not checked
}

// CheckSeals makes the server verify every gateway's Merkle log as its
// records are written (SealCheck). Call it before serving.
func (s *Server) CheckSeals(c *SealCheck) { s.seals = c }

// NewServer builds a server writing to sink. tc is used by Serve (TLS over
// TCP); it may be nil for a server that only uses ServeSecure. cfg is
// expected to pass Validate; zero fields take DefaultConfig's values.
func NewServer(cfg Config, tc *tls.Config, sink Sink, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, tls: tc, sink: sink, log: log, rlog: newRateLog(log, cfg.LogEvery, cfg.LogBurst),
		gate: newGate(cfg), budget: newBudget(cfg.MemoryBudget), deny: newDenyWatch(cfg.DenyList),
		quar: newQuarantine(cfg.QuarantineDir, cfg.QuarantineMaxFiles), alerts: newAlertLimit(time.Minute),
		decoders: newDecoders(uplink.PayloadBound(cfg.MaxBatchRecords, cfg.MaxBatchBytes), 8)}
	s.metrics = newMetrics(s)
	return s
}

// UseBundles serves the configuration bundles of b to version 4
// gateways. Call it before Serve.
func (s *Server) UseBundles(b *Bundles) { s.bundles = b }

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	dur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	num := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	dur(&c.HandshakeTimeout, d.HandshakeTimeout)
	dur(&c.IdleTimeout, d.IdleTimeout)
	dur(&c.MaxSessionAge, d.MaxSessionAge)
	dur(&c.BudgetWait, d.BudgetWait)
	dur(&c.DenyCheck, d.DenyCheck)
	dur(&c.LogEvery, d.LogEvery)
	num(&c.MaxHandshakes, d.MaxHandshakes)
	num(&c.MaxHandshakesPerAddr, d.MaxHandshakesPerAddr)
	num(&c.MaxConns, d.MaxConns)
	num(&c.MaxSessionsPerGateway, d.MaxSessionsPerGateway)
	num(&c.MaxBatchRecords, d.MaxBatchRecords)
	num(&c.MaxBatchBytes, d.MaxBatchBytes)
	num(&c.MemoryBudget, d.MemoryBudget)
	num(&c.QuarantineMaxFiles, d.QuarantineMaxFiles)
	num(&c.LogBurst, d.LogBurst)
	num(&c.MaxRanges, d.MaxRanges)
	return c
}

// Register adds the server's metrics to reg.
func (s *Server) Register(reg prometheus.Registerer) error {
	for _, c := range s.metrics.all {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("collector: register metrics: %w", err)
		}
	}
	return nil
}

// Serve accepts TCP connections on ln and runs TLS over them until ctx is
// done, then waits for sessions to end. Each connection takes a handshake
// slot (the global and per-address budgets) before anything is read from
// it, and gives it back when its handshake ends, before its session.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.tls == nil {
		return errors.New("collector: serve tls: no tls configuration")
	}
	return s.serve(ctx, ln, "tls", func(ctx context.Context, c net.Conn) (SecureConn, error) {
		key := addrKey(c.RemoteAddr())
		if why, ok := s.gate.enterHandshake(key); !ok {
			c.Close()
			s.metrics.handshakesRefused.WithLabelValues("tls", why).Inc()
			s.rlog.warn("handshake-budget", "connection refused before its handshake", "peer", c.RemoteAddr().String(),
				"transport", "tls", "reason", why)
			return nil, nil
		}
		defer s.gate.leaveHandshake(key)
		tc := tls.Server(c, s.tls)
		_ = tc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			tc.Close()
			return nil, err
		}
		return tlsConn{tc}, nil
	})
}

// ServeSecure accepts on a listener whose connections are authenticated
// already and implement SecureConn (rudp.Listener, which bounds its own
// handshakes).
func (s *Server) ServeSecure(ctx context.Context, ln net.Listener, transport string) error {
	return s.serve(ctx, ln, transport, func(_ context.Context, c net.Conn) (SecureConn, error) {
		sc, ok := c.(SecureConn)
		if !ok {
			c.Close()
			return nil, fmt.Errorf("%T carries no peer certificates", c)
		}
		return sc, nil
	})
}

type tlsConn struct{ *tls.Conn }

func (c tlsConn) PeerCertificates() []*x509.Certificate { return c.ConnectionState().PeerCertificates }

func (s *Server) serve(ctx context.Context, ln net.Listener, transport string,
	secure func(context.Context, net.Conn) (SecureConn, error)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	if s.deny != nil {
		wg.Go(func() { s.watchDeny(ctx) })
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				continue
			}
			// A listener whose handshakes happen inside Accept (DTLS)
			// reports a failed handshake here; that ends no listener.
			if transport != "tls" && !errors.Is(err, net.ErrClosed) {
				s.HandshakeRefused(transport)(nil, err)
				continue
			}
			return fmt.Errorf("collector: accept %s: %w", transport, err)
		}
		wg.Go(func() {
			peer := c.RemoteAddr().String()
			defer func() {
				// A panic in a handshake (or anywhere outside a session,
				// which has its own) closes this connection only.
				if r := recover(); r != nil {
					c.Close()
					s.metrics.panics.Inc()
					s.rlog.error("panic", "connection closed after a panic; the collector carries on", "peer", peer,
						"transport", transport, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				}
			}()
			sc, err := secure(ctx, c)
			if err != nil {
				s.HandshakeRefused(transport)(c.RemoteAddr(), err)
				return
			}
			if sc == nil {
				return // refused and counted by secure
			}
			s.handle(ctx, sc, transport)
		})
	}
}

// HandshakeRefused counts and logs (rate-limited) a handshake that a
// listener refused before the server saw the connection
// (rudp.Options.OnHandshakeError), with its reason, as refusals on TLS
// are.
func (s *Server) HandshakeRefused(transport string) func(remote net.Addr, err error) {
	return func(remote net.Addr, err error) {
		reason := uplink.Classify(err)
		s.metrics.handshakesRefused.WithLabelValues(transport, string(reason)).Inc()
		peer := ""
		if remote != nil {
			peer = remote.String()
		}
		s.rlog.warn("handshake", "handshake refused", "peer", peer, "transport", transport, "reason", reason, "err", err)
	}
}

// watchDeny ends the open sessions of gateways the deny list revokes, as
// soon as the list is re-read.
func (s *Server) watchDeny(ctx context.Context) {
	t := time.NewTicker(s.cfg.DenyCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		list, _, err := s.deny.current()
		for _, sess := range s.gate.open() {
			if err != nil {
				sess.end(uplink.ErrSessionEnd, "the collector's deny list does not read", "deny_list_unreadable")
				continue
			}
			if why, denied := list.Denied(sess.id, sess.leaf); denied {
				sess.end(uplink.ErrSessionEnd, why, "revoked")
			}
		}
		if err != nil {
			s.rlog.error("deny-list", "deny list unreadable: every gateway is refused until it is fixed", "path", s.cfg.DenyList, "err", err)
		}
	}
}

// alertLimit lets one critical record per gateway through per interval;
// Reported in the dedupe state already stops the same floor being
// reported twice, this stops a stolen key writing one per Hello.
type alertLimit struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

func newAlertLimit(every time.Duration) *alertLimit {
	return &alertLimit{every: every, last: map[string]time.Time{}}
}

func (a *alertLimit) allow(gateway string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.last[gateway]; ok && now.Sub(t) < a.every {
		return false
	}
	a.last[gateway] = now
	return true
}
