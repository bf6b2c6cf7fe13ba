package collector

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/weirgw/weir/gateway/event"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

// Sink holds records durably. Write returns only once they are on stable
// storage; Highest is the dedupe mark it holds per gateway.
type Sink interface {
	Write(gateway string, entries []Entry) error
	Highest(gateway string) uint64
}

// Config tunes the server.
type Config struct {
	HandshakeTimeout time.Duration // TLS handshake plus Hello
	IdleTimeout      time.Duration // a session with no message for this long is closed
	MaxConns         int
	MaxFrame         int
}

// DefaultConfig suits a head-end serving a few hundred gateways.
func DefaultConfig() Config {
	return Config{HandshakeTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute, MaxConns: 1024, MaxFrame: uplink.DefaultMaxFrame}
}

// Server accepts gateway sessions.
type Server struct {
	cfg  Config
	tls  *tls.Config
	sink Sink
	log  *slog.Logger

	// One lock per gateway: a reconnecting gateway's new session must not
	// interleave writes with its old one still draining.
	locks sync.Map // gateway id → *sync.Mutex
	conns chan struct{}
}

// NewServer builds a server writing to sink.
func NewServer(cfg Config, tc *tls.Config, sink Sink, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{cfg: cfg, tls: tc, sink: sink, log: log, conns: make(chan struct{}, cfg.MaxConns)}
}

// Serve accepts on ln until ctx is done, then waits for sessions to end.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
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
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("collector: accept: %w", err)
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
			s.handle(ctx, c)
		}()
	}
}

func (s *Server) handle(ctx context.Context, raw net.Conn) {
	conn := tls.Server(raw, s.tls)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	peer := raw.RemoteAddr().String()
	log := s.log.With("peer", peer)

	_ = conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	if err := conn.HandshakeContext(ctx); err != nil {
		log.Warn("tls handshake failed", "err", err)
		return
	}
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		log.Warn("no client certificate")
		return
	}
	id, err := pki.GatewayID(certs[0])
	if err != nil {
		log.Warn("client certificate names no gateway", "err", err)
		return
	}
	log = log.With("gateway", id)
	br := bufio.NewReaderSize(conn, 64<<10)
	w := writer{conn: conn, timeout: s.cfg.HandshakeTimeout}
	var buf []byte
	t, body, buf, err := uplink.ReadFrame(br, buf, s.cfg.MaxFrame)
	if err != nil {
		log.Warn("no hello", "err", err)
		return
	}
	m, err := uplink.Decode(t, body)
	if err != nil {
		w.refuse(uplink.ErrProtocol, err.Error())
		log.Warn("bad hello", "err", err)
		return
	}
	hello, ok := m.(*uplink.Hello)
	if !ok {
		w.refuse(uplink.ErrProtocol, "first message must be hello")
		return
	}
	if hello.Version != uplink.ProtocolVersion {
		w.refuse(uplink.ErrVersion, fmt.Sprintf("protocol version %d not supported (collector speaks %d)", hello.Version, uplink.ProtocolVersion))
		log.Warn("unsupported protocol version", "version", hello.Version)
		return
	}
	if hello.Gateway != id {
		w.refuse(uplink.ErrIdentity, fmt.Sprintf("hello names gateway %q but the client certificate is for %q", hello.Gateway, id))
		log.Warn("gateway id does not match certificate; closing", "hello_gateway", hello.Gateway)
		return
	}
	lock := s.lock(id)
	lock.Lock()
	highest := s.sink.Highest(id)
	lock.Unlock()
	if err := w.write(&uplink.Welcome{Version: uplink.ProtocolVersion, Highest: highest}); err != nil {
		log.Warn("send welcome", "err", err)
		return
	}
	log.Info("gateway connected", "boot_id", hello.BootID, "highest_seq", highest)
	_ = conn.SetDeadline(time.Time{})

	var entries []Entry
	var evs []event.Event
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
			log.Warn("bad message", "err", err)
			return
		}
		d, ok := m.(*uplink.Data)
		if !ok {
			w.refuse(uplink.ErrProtocol, fmt.Sprintf("unexpected %T", m))
			return
		}
		lock.Lock()
		entries, evs, err = s.accept(id, d, entries[:0], evs)
		lock.Unlock()
		if errors.Is(err, errBadPayload) {
			w.refuse(uplink.ErrProtocol, err.Error())
			log.Warn("bad data payload", "first", d.First, "count", d.Count, "err", err)
			return
		}
		if err != nil {
			w.refuse(uplink.ErrSink, "collector cannot store records now")
			log.Error("records not stored; gateway will resend", "first", d.First, "count", d.Count, "err", err)
			return
		}
		if err := w.write(&uplink.Ack{Cumulative: d.First + d.Count - 1}); err != nil {
			log.Warn("send ack", "err", err)
			return
		}
	}
}

// accept decodes a batch, drops what the sink already holds, and writes
// the rest durably.
func (s *Server) accept(id string, d *uplink.Data, entries []Entry, evs []event.Event) ([]Entry, []event.Event, error) {
	highest := s.sink.Highest(id)
	if cap(evs) < int(d.Count) {
		evs = make([]event.Event, d.Count)
	}
	evs = evs[:d.Count]
	err := uplink.SplitRecords(d.Payload, d.Count, func(i uint64, rec []byte) error {
		seq := d.First + i
		if seq <= highest {
			return nil // a resent record the sink holds already: ack, don't write
		}
		e := &evs[i]
		if err := e.UnmarshalBinary(rec); err != nil {
			entries = append(entries, Entry{Seq: seq, Raw: append([]byte(nil), rec...), DecodeErr: err})
			return nil
		}
		e.Seq = seq
		e.Gateway = id // the certificate, not the payload, says who sent it
		entries = append(entries, Entry{Seq: seq, Event: e})
		return nil
	})
	if err != nil {
		return entries, evs, fmt.Errorf("%w: %w", errBadPayload, err)
	}
	return entries, evs, s.sink.Write(id, entries)
}

var errBadPayload = errors.New("malformed data payload")

func (s *Server) lock(id string) *sync.Mutex {
	l, _ := s.locks.LoadOrStore(id, &sync.Mutex{})
	return l.(*sync.Mutex)
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
