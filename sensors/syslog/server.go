package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// Sink is what the server hands its records to: the gateway, which stamps
// time and clock quality, encodes and appends them to the spool. Emit may
// block (back-pressure: stream reads stop meanwhile); it must not keep the
// slice after it returns. Syslog has no read position, so checkpoints are
// always nil.
type Sink interface {
	Emit(ctx context.Context, events []event.Event, checkpoints []spool.Checkpoint) error
}

// Transports, as named in records (field transport) and Status.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	TransportTLS = "tls"
)

// Batching: one Emit carries at most maxBatch records and stops taking
// more at maxBatchBytes (a batch is below it or one record); a record
// waits at most linger for its batch to fill.
const (
	maxBatch      = 512
	maxBatchBytes = 64 << 10
	linger        = 50 * time.Millisecond
)

// queueLen bounds the records parsed and waiting for the batcher: when
// the sink is slow the queue fills and readers block, so TCP senders are
// held back and UDP datagrams wait in (and overflow from) the socket
// buffer, where the kernel counts them.
const queueLen = 1024

// Retry and shutdown of emits.
const (
	maxRetryWait  = 10 * time.Second
	finalEmitWait = 5 * time.Second
	topSenders    = 10
)

// Server is syslog intake: its listeners, parsers and batcher.
type Server struct {
	cfg      Config
	loc      *time.Location
	priority event.Priority
	lim      *limiter // drops: UDP, TCP, TLS without a verified client certificate
	pace     *limiter // waits: TLS with a verified client certificate
	log      *slog.Logger
	tls      *tls.Config
	running  atomic.Bool

	// listeners, in the order udp, tcp, tls; bound by Listen.
	mu        sync.Mutex // guards the listener sockets and lastError
	udpConn   *net.UDPConn
	tcpLn     net.Listener
	tlsLn     net.Listener
	lastError string

	stats      [3]listenerStats // by transport index
	conns      [3]*slots        // TCP and TLS connections (handshake done), by transport index
	handshakes *slots           // TLS handshakes in progress
	perAddr    [3]*perAddress   // TCP and TLS streams by peer, handshakes included
	open       atomic.Int64     // TCP and TLS connections open
	emitted    atomic.Uint64
	emitErrs   atomic.Uint64
	lost       atomic.Uint64
	queued     atomic.Int64
	reportSeq  atomic.Uint64
}

const (
	iUDP = iota
	iTCP
	iTLS
)

var transportNames = [...]string{TransportUDP, TransportTCP, TransportTLS}

// New makes a Server for cfg; zero values take their defaults. It reads
// the time zone database and, with TLS on, checks the certificate, key
// and CA files once. A nil logger discards.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("syslog: %w", err)
	}
	cfg = cfg.withDefaults()
	prio, err := event.ParsePriority(cfg.Priority)
	if err != nil {
		return nil, fmt.Errorf("syslog: priority: %w", err)
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, fmt.Errorf("syslog: timezone: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, loc: loc, priority: prio,
		lim: newLimiter(cfg.RateLimit), pace: newLimiter(cfg.RateLimit),
		log: logger.With("source", cfg.Name),
	}
	if cfg.TLS.Listen != "" {
		if s.tls, err = newTLSConfig(cfg.TLS); err != nil {
			return nil, fmt.Errorf("syslog: %w", err)
		}
	}
	for _, i := range [...]int{iTCP, iTLS} {
		s.conns[i] = newSlots(cfg.MaxConnections)
		s.perAddr[i] = newPerAddress(cfg.MaxConnectionsPerAddress)
	}
	s.handshakes = newSlots(cfg.TLS.MaxHandshakes)
	s.stats[iUDP].addr.Store(cfg.UDP.Listen)
	s.stats[iTCP].addr.Store(cfg.TCP.Listen)
	s.stats[iTLS].addr.Store(cfg.TLS.Listen)
	return s, nil
}

// Listen binds the configured listeners, so that an address in use fails
// at start; Run calls it when it was not called before. It may be called
// again after Run returned.
func (s *Server) Listen(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lc net.ListenConfig
	var errs []error
	if s.cfg.UDP.Listen != "" && s.udpConn == nil {
		pc, err := lc.ListenPacket(ctx, "udp", s.cfg.UDP.Listen)
		if err != nil {
			errs = append(errs, fmt.Errorf("udp.listen %s: %w", s.cfg.UDP.Listen, err))
		} else {
			s.udpConn = pc.(*net.UDPConn)
			s.setupUDP(s.udpConn)
			s.stats[iUDP].addr.Store(s.udpConn.LocalAddr().String())
		}
	}
	for _, l := range [...]struct {
		i    int
		key  string
		addr string
		ln   *net.Listener
	}{{iTCP, "tcp.listen", s.cfg.TCP.Listen, &s.tcpLn}, {iTLS, "tls.listen", s.cfg.TLS.Listen, &s.tlsLn}} {
		if l.addr == "" || *l.ln != nil {
			continue
		}
		ln, err := lc.Listen(ctx, "tcp", l.addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", l.key, l.addr, err))
			continue
		}
		*l.ln = ln
		s.stats[l.i].addr.Store(ln.Addr().String())
	}
	if err := errors.Join(errs...); err != nil {
		s.closeListeners()
		return fmt.Errorf("syslog: %w", err)
	}
	return nil
}

// closeListeners closes what Listen bound; s.mu is held.
func (s *Server) closeListeners() {
	if s.udpConn != nil {
		_ = s.udpConn.Close()
		s.udpConn = nil
	}
	for _, ln := range [...]*net.Listener{&s.tcpLn, &s.tlsLn} {
		if *ln != nil {
			_ = (*ln).Close()
			*ln = nil
		}
	}
}

// Addr returns the bound address of a transport's listener (udp, tcp or
// tls), nil when it is off or not bound. With port 0 in the
// configuration, it tells which port the system chose.
func (s *Server) Addr(transport string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch transport {
	case TransportUDP:
		if s.udpConn != nil {
			return s.udpConn.LocalAddr()
		}
	case TransportTCP:
		if s.tcpLn != nil {
			return s.tcpLn.Addr()
		}
	case TransportTLS:
		if s.tlsLn != nil {
			return s.tlsLn.Addr()
		}
	}
	return nil
}

// Run serves until ctx is done, then closes the listeners and every
// connection, hands what was already received to the sink (waiting up to
// 5 s for it) and returns nil. It returns an error only when a listener
// cannot be bound. A failing sink is retried with the same batch, and
// meanwhile reading stops (back-pressure) rather than dropping.
func (s *Server) Run(ctx context.Context, sink Sink) error {
	if sink == nil {
		return fmt.Errorf("syslog: %s: no sink", s.cfg.Name)
	}
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("syslog: %s: already running", s.cfg.Name)
	}
	defer s.running.Store(false)
	if err := s.Listen(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	udpConn, tcpLn, tlsLn := s.udpConn, s.tcpLn, s.tlsLn
	s.mu.Unlock()

	r := &run{s: s, in: make(chan event.Event, queueLen), conns: map[net.Conn]struct{}{}}
	batcherDone := make(chan struct{})
	go func() {
		defer close(batcherDone)
		r.batch(ctx, sink)
	}()

	var readers sync.WaitGroup
	if udpConn != nil {
		readers.Go(func() { r.readUDP(udpConn) })
	}
	if tcpLn != nil {
		readers.Go(func() { r.accept(ctx, tcpLn, iTCP) })
	}
	if tlsLn != nil {
		readers.Go(func() { r.accept(ctx, tlsLn, iTLS) })
	}
	s.log.Info("syslog intake listening", "udp", s.Addr(TransportUDP), "tcp", s.Addr(TransportTCP), "tls", s.Addr(TransportTLS))

	<-ctx.Done()
	s.mu.Lock()
	s.closeListeners()
	s.mu.Unlock()
	r.closeConns()
	readers.Wait()
	r.streams.Wait()
	close(r.in)
	<-batcherDone
	return nil
}

// run is the state of one call to Run.
type run struct {
	s       *Server
	in      chan event.Event
	streams sync.WaitGroup

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool
}

// submit queues a record for the batcher; it blocks while the queue is
// full. The batcher reads until Run closes the queue, after every reader
// has returned, so a record given here always reaches the sink's Emit.
func (r *run) submit(ev event.Event) {
	r.s.queued.Add(1)
	r.in <- ev
}

// batch collects records into batches for the sink until the queue is
// closed, and adds a drop report every drop_report_interval when
// something was dropped.
func (r *run) batch(ctx context.Context, sink Sink) {
	s := r.s
	evs := make([]event.Event, 0, maxBatch)
	size := 0
	timer := time.NewTimer(linger)
	timer.Stop()
	armed := false
	report := time.NewTicker(s.cfg.DropReportInterval)
	defer report.Stop()
	var last dropCounts

	flush := func() {
		if len(evs) == 0 {
			return
		}
		s.emit(ctx, sink, evs)
		clear(evs) // drop references to the strings
		evs, size = evs[:0], 0
		if armed {
			timer.Stop()
			armed = false
		}
	}
	for {
		select {
		case ev, ok := <-r.in:
			if !ok {
				if ev, ok := s.dropReport(&last); ok {
					evs = append(evs, ev)
				}
				flush()
				return
			}
			s.queued.Add(-1)
			n := recordSize(&ev)
			if len(evs) > 0 && size+n > maxBatchBytes {
				flush()
			}
			evs = append(evs, ev)
			size += n
			if len(evs) >= maxBatch || size >= maxBatchBytes {
				flush()
			} else if !armed {
				timer.Reset(linger)
				armed = true
			}
		case <-timer.C:
			armed = false
			flush()
		case <-report.C:
			if ev, ok := s.dropReport(&last); ok {
				flush()
				evs = append(evs, ev)
				flush()
			}
		}
	}
}

// recordSize estimates a record's encoded size.
func recordSize(ev *event.Event) int {
	n := 32 + len(ev.Message) + len(ev.Host) + len(ev.Source)
	for i := range ev.Fields {
		n += 4 + len(ev.Fields[i].Key) + len(ev.Fields[i].Value.Str)
	}
	return n
}

// emit hands one batch to the sink, retrying it until it is taken. Once
// ctx is done (shutdown), it tries once more without ctx's cancellation,
// for up to finalEmitWait, and counts the batch lost if that fails too.
func (s *Server) emit(ctx context.Context, sink Sink, evs []event.Event) {
	wait := 100 * time.Millisecond
	for {
		if ctx.Err() != nil {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalEmitWait)
			err := sink.Emit(fctx, evs, nil)
			cancel()
			if err != nil {
				s.lost.Add(uint64(len(evs)))
				s.recordError(err)
				s.log.Error("emit at shutdown failed; records lost", "records", len(evs), "err", err)
				return
			}
			s.emitted.Add(uint64(len(evs)))
			return
		}
		err := sink.Emit(ctx, evs, nil)
		if err == nil {
			s.emitted.Add(uint64(len(evs)))
			return
		}
		if ctx.Err() != nil {
			continue
		}
		s.emitErrs.Add(1)
		s.recordError(err)
		s.log.Warn("emit failed; retrying the same records, reading paused", "records", len(evs), "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, maxRetryWait)
	}
}

func (s *Server) recordError(err error) {
	s.mu.Lock()
	s.lastError = err.Error()
	s.mu.Unlock()
}
