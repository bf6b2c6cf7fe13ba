package collector

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

// Sink holds records durably. Write stores the entries it does not hold
// yet and returns only once they are on stable storage; checking and
// recording what it holds happen under one lock, so Servers sharing a sink
// never write a sequence twice.
type Sink interface {
	Write(gateway string, entries []Entry) error
	// Holds reports whether seq of gateway is held (a cheap pre-check; Write
	// checks again).
	Holds(gateway string, seq uint64) bool
	// Resume takes the gateway's Hello.Floor and returns the mark up to
	// which every sequence is held, for Welcome.
	Resume(gateway string, floor uint64) uint64
}

// Config tunes the server.
type Config struct {
	HandshakeTimeout time.Duration // TLS handshake plus Hello
	IdleTimeout      time.Duration // a session with no message for this long is closed
	MaxConns         int
	MaxFrame         int // bound on one frame and on a decompressed payload
}

// DefaultConfig suits a head-end serving a few hundred gateways.
func DefaultConfig() Config {
	return Config{HandshakeTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute, MaxConns: 1024, MaxFrame: uplink.DefaultMaxFrame}
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
	cfg  Config
	tls  *tls.Config
	sink Sink
	log  *slog.Logger

	conns chan struct{}
}

// NewServer builds a server writing to sink. tc is used by Serve (TLS over
// TCP); it may be nil for a server that only uses ServeSecure.
func NewServer(cfg Config, tc *tls.Config, sink Sink, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = uplink.DefaultMaxFrame
	}
	return &Server{cfg: cfg, tls: tc, sink: sink, log: log, conns: make(chan struct{}, max(cfg.MaxConns, 1))}
}

// Serve accepts TCP connections on ln and runs TLS over them until ctx is
// done, then waits for sessions to end.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.tls == nil {
		return errors.New("collector: serve tls: no tls configuration")
	}
	return s.serve(ctx, ln, "tls", func(ctx context.Context, c net.Conn) (SecureConn, error) {
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
// already and implement SecureConn (rudp.Listener).
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
				s.log.Warn("handshake refused", "transport", transport, "reason", uplink.Classify(err), "err", err)
				continue
			}
			return fmt.Errorf("collector: accept %s: %w", transport, err)
		}
		select {
		case s.conns <- struct{}{}:
		default:
			s.log.Warn("connection refused: too many sessions", "peer", c.RemoteAddr(), "max", s.cfg.MaxConns)
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.conns }()
			log := s.log.With("peer", c.RemoteAddr().String(), "transport", transport)
			sc, err := secure(ctx, c)
			if err != nil {
				log.Warn("handshake refused", "reason", uplink.Classify(err), "err", err)
				return
			}
			s.handle(ctx, sc, log)
		}()
	}
}

func (s *Server) handle(ctx context.Context, conn SecureConn, log *slog.Logger) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	w := writer{conn: conn, timeout: s.cfg.HandshakeTimeout}

	certs := conn.PeerCertificates()
	if len(certs) == 0 {
		log.Warn("session refused: no client certificate")
		return
	}
	id, err := pki.GatewayID(certs[0])
	if err != nil {
		w.refuse(uplink.ErrIdentity, "the client certificate names no gateway")
		log.Warn("session refused: client certificate names no gateway", "reason", uplink.ReasonRefusedID, "err", err)
		return
	}
	log = log.With("gateway", id)
	br := bufio.NewReaderSize(conn, 64<<10)
	var buf []byte
	t, body, buf, err := uplink.ReadFrame(br, buf, s.cfg.MaxFrame)
	if err != nil {
		log.Warn("session ended before hello", "err", err)
		return
	}
	m, err := uplink.Decode(t, body)
	if err != nil {
		w.refuse(uplink.ErrProtocol, err.Error())
		log.Warn("session refused: bad hello", "err", err)
		return
	}
	hello, ok := m.(*uplink.Hello)
	if !ok {
		w.refuse(uplink.ErrProtocol, "first message must be hello")
		log.Warn("session refused: first message is not hello", "type", t)
		return
	}
	if hello.Version != uplink.ProtocolVersion {
		w.refuse(uplink.ErrVersion, fmt.Sprintf("protocol version %d not supported (collector speaks %d)", hello.Version, uplink.ProtocolVersion))
		log.Warn("session refused: unsupported protocol version", "reason", uplink.ReasonVersion, "version", hello.Version)
		return
	}
	if hello.Gateway != id {
		w.refuse(uplink.ErrIdentity, fmt.Sprintf("hello names gateway %q but the client certificate is for %q", hello.Gateway, id))
		log.Warn("session refused: gateway id does not match the client certificate", "reason", uplink.ReasonRefusedID,
			"hello_gateway", hello.Gateway, "cert_gateway", id)
		return
	}
	highest := s.sink.Resume(id, hello.Floor)
	if err := w.write(&uplink.Welcome{Version: uplink.ProtocolVersion, Highest: highest}); err != nil {
		log.Warn("send welcome", "err", err)
		return
	}
	log.Info("gateway connected", "boot_id", hello.BootID, "floor", hello.Floor, "highest_seq", highest)
	_ = conn.SetDeadline(time.Time{})

	b := newBatcher(s.cfg.MaxFrame)
	defer b.close()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		t, body, buf, err = uplink.ReadFrame(br, buf, s.cfg.MaxFrame)
		if err != nil {
			if ctx.Err() == nil {
				log.Info("gateway session ended", "err", err)
			}
			return
		}
		m, err := uplink.Decode(t, body)
		if err != nil {
			w.refuse(uplink.ErrProtocol, err.Error())
			log.Warn("session closed: bad message", "err", err)
			return
		}
		switch m := m.(type) {
		case *uplink.Ping:
			if err := w.write(&uplink.Pong{Nonce: m.Nonce}); err != nil {
				log.Warn("send pong", "err", err)
				return
			}
			continue
		case *uplink.Data:
			err = b.accept(id, m, s.sink)
			if errors.Is(err, errBadPayload) {
				w.refuse(uplink.ErrPayload, err.Error())
				log.Warn("session closed: bad data payload", "first", m.First, "count", m.Count, "err", err)
				return
			}
			if err != nil {
				w.refuse(uplink.ErrSink, "collector cannot store records now")
				log.Error("records not stored; gateway will resend", "first", m.First, "count", m.Count, "err", err)
				return
			}
			if err := w.write(&uplink.Ack{Cumulative: m.First + m.Count - 1}); err != nil {
				log.Warn("send ack", "err", err)
				return
			}
		default:
			w.refuse(uplink.ErrProtocol, fmt.Sprintf("unexpected %s", t))
			log.Warn("session closed: unexpected message", "type", t)
			return
		}
	}
}

type writer struct {
	conn    net.Conn
	timeout time.Duration
	buf     []byte
}

func (w *writer) write(m uplink.Message) error {
	w.buf = uplink.AppendFrame(w.buf[:0], m)
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := w.conn.Write(w.buf)
	return err
}

func (w *writer) refuse(code uplink.ErrorCode, msg string) {
	_ = w.write(&uplink.Error{Code: code, Message: msg})
}

var errBadPayload = errors.New("malformed data payload")

// batcher turns Data messages into sink entries; it owns the buffers one
// session reuses.
type batcher struct {
	dec     *uplink.Decompressor
	decErr  error
	plain   []byte
	entries []Entry
	evs     []event.Event
}

func newBatcher(maxFrame int) *batcher {
	d, err := uplink.NewDecompressor(maxFrame)
	return &batcher{dec: d, decErr: err}
}

func (b *batcher) close() {
	if b.dec != nil {
		b.dec.Close()
	}
}

// accept decompresses a batch (bounded), drops what the sink holds already
// (a resent batch, or one overlapping the mark), and writes the rest
// durably.
func (b *batcher) accept(id string, d *uplink.Data, sink Sink) error {
	if b.decErr != nil {
		return b.decErr
	}
	payload, err := b.dec.Decompress(d.Codec, d.Payload, b.plain)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadPayload, err)
	}
	if d.Codec != uplink.CodecNone {
		b.plain = payload[:0]
	}
	// Each record takes at least its one-byte length: a count beyond the
	// payload's size is a lie, refused before anything is sized by it.
	if d.Count > uint64(len(payload)) {
		return fmt.Errorf("%w: %d records announced in %d bytes", errBadPayload, d.Count, len(payload))
	}
	if cap(b.evs) < int(d.Count) {
		b.evs = make([]event.Event, d.Count)
	}
	evs := b.evs[:d.Count]
	entries := b.entries[:0]
	err = uplink.SplitRecords(payload, d.Count, func(i uint64, rec []byte) error {
		seq := d.First + i
		if sink.Holds(id, seq) {
			return nil // a resent record the sink holds already: ack, don't write
		}
		e := &evs[i]
		*e = event.Event{}
		if err := e.UnmarshalBinary(rec); err != nil {
			entries = append(entries, Entry{Seq: seq, Raw: append([]byte(nil), rec...), DecodeErr: err})
			return nil
		}
		e.Seq = seq
		e.Gateway = id // the certificate, not the payload, says who sent it
		entries = append(entries, Entry{Seq: seq, Event: e})
		return nil
	})
	b.entries = entries
	if err != nil {
		return fmt.Errorf("%w: %w", errBadPayload, err)
	}
	return sink.Write(id, entries)
}

// HandshakeRefused logs a handshake that a listener refused before the
// server saw the connection (rudp.Options.OnHandshakeError), with its
// reason, the same way refusals on TLS are logged.
func (s *Server) HandshakeRefused(transport string) func(remote net.Addr, err error) {
	return func(remote net.Addr, err error) {
		s.log.Warn("handshake refused", "peer", remote.String(), "transport", transport, "reason", uplink.Classify(err), "err", err)
	}
}
