package syslog

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"time"
)

// streamBuf is the read buffer of a stream connection.
const streamBuf = 32 << 10

// accept serves a TCP or TLS listener until it is closed.
func (r *run) accept(ctx context.Context, ln net.Listener, i int) {
	s := r.s
	st := &s.stats[i]
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait, as net/http does.
			st.readErrors.Add(1)
			s.log.Warn("accept failed", "transport", transportNames[i], "err", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if n := s.open.Add(1); n > int64(s.cfg.MaxConnections) {
			s.open.Add(-1)
			st.connsRefused.Add(1)
			s.log.Debug("connection refused", "transport", transportNames[i], "peer", c.RemoteAddr(), "max_connections", s.cfg.MaxConnections)
			_ = c.Close()
			continue
		}
		if !r.track(c) {
			s.open.Add(-1)
			_ = c.Close()
			return
		}
		st.connsTotal.Add(1)
		st.connsOpen.Add(1)
		r.streams.Go(func() {
			defer func() {
				r.untrack(c)
				_ = c.Close()
				st.connsOpen.Add(-1)
				s.open.Add(-1)
			}()
			r.serveStream(ctx, c, i)
		})
	}
}

// track registers a connection so shutdown can close it; false when
// shutdown has begun.
func (r *run) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *run) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// closeConns closes every connection and refuses new ones. Messages
// already framed are still handed on; a frame cut by the close is kept
// flagged partial.
func (r *run) closeConns() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for c := range r.conns {
		_ = c.Close()
	}
}

// serveStream reads messages from one connection until it ends, idles
// out or is closed.
func (r *run) serveStream(ctx context.Context, c net.Conn, i int) {
	s := r.s
	st := &s.stats[i]
	ap := addrPort(c.RemoteAddr())
	ip := ap.Addr().Unmap()
	meta := Meta{Peer: ap.String(), PeerIP: ip.String(), Transport: transportNames[i]}
	log := s.log.With("transport", meta.Transport, "peer", meta.Peer)

	if i == iTLS {
		tc := tls.Server(c, s.tls)
		// The deadline bounds the handshake; shutdown closes the
		// connection, which ends it too.
		_ = c.SetDeadline(time.Now().Add(min(handshakeWait, s.cfg.IdleTimeout)))
		err := tc.Handshake()
		if err != nil {
			st.handshakeErrors.Add(1)
			if st.warnAllowed() {
				log.Warn("TLS handshake failed (further failures within 10s are only counted)", "err", err)
			} else {
				log.Debug("TLS handshake failed", "err", err)
			}
			return
		}
		_ = c.SetDeadline(time.Time{})
		meta.TLSPeer = peerName(tc.ConnectionState())
		c = tc
	}
	log.Debug("connection open", "tls_peer", meta.TLSPeer)

	fr := newFramer(bufio.NewReaderSize(&idleReader{c: c, idle: s.cfg.IdleTimeout}, streamBuf), s.cfg.MaxMessageBytes)
	p := Parser{Source: s.cfg.Name, Priority: s.priority, Loc: s.loc}
	for {
		msg, fl, err := fr.next()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			case errors.Is(err, io.ErrUnexpectedEOF):
				log.Debug("stream ended inside an octet-counted frame's header")
			case errors.Is(err, os.ErrDeadlineExceeded):
				log.Debug("idle stream closed", "idle_timeout", s.cfg.IdleTimeout)
			default:
				st.readErrors.Add(1)
				log.Debug("stream read failed", "err", err)
			}
			return
		}
		m := meta
		m.Truncated, m.OriginalBytes = fl.truncated, fl.original
		r.handle(&p, msg, ip, &m, st, fl.partial)
	}
}

// handle rate-limits, parses and queues one message.
func (r *run) handle(p *Parser, msg []byte, ip netip.Addr, meta *Meta, st *listenerStats, partial bool) {
	msg = trimTrailer(msg)
	if len(msg) == 0 && !meta.Truncated {
		return
	}
	now := time.Now()
	if !r.s.lim.allow(ip, now) {
		st.limited.Add(1)
		return
	}
	st.received.Add(1)
	st.bytes.Add(uint64(len(msg)))
	if meta.Truncated {
		st.truncated.Add(1)
	}
	ev, err := p.Parse(msg, now, meta)
	if err != nil {
		st.parseErrors.Add(1)
	}
	if partial {
		ev.Fields = append(ev.Fields, partialField)
	}
	r.submit(ev)
}

// idleReader sets the idle deadline before every read, so a stream that
// sends nothing for idle_timeout is closed, while one held back by a slow
// sink (no read pending) is not.
type idleReader struct {
	c    net.Conn
	idle time.Duration
}

func (r *idleReader) Read(b []byte) (int, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(r.idle))
	return r.c.Read(b)
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
