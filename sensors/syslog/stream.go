package syslog

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"
)

// streamBuf is the read buffer of a stream connection.
const streamBuf = 32 << 10

// accept serves a TCP or TLS listener until it is closed. A connection
// is admitted when its peer holds fewer than max_connections_per_address
// streams on this listener and, for TCP, a connection slot is free or held
// by a silent peer (see slots); a TLS connection waits for a handshake
// slot instead, and takes a connection slot once its handshake is done.
func (r *run) accept(ctx context.Context, ln net.Listener, i int) {
	s := r.s
	st := &s.stats[i]
	pool := s.conns[i]
	if i == iTLS {
		pool = s.handshakes
	}
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
		key := addrKey(addrPort(c.RemoteAddr()).Addr())
		if !s.perAddr[i].take(key) {
			r.refuse(c, i, "max_connections_per_address", s.cfg.MaxConnectionsPerAddress)
			continue
		}
		sl, evicted, ok := pool.take(c)
		if !ok {
			s.perAddr[i].release(key)
			if i == iTLS {
				r.refuse(c, i, "tls.max_handshakes", s.cfg.TLS.MaxHandshakes)
			} else {
				r.refuse(c, i, "max_connections", s.cfg.MaxConnections)
			}
			continue
		}
		r.evict(evicted, i)
		if !r.track(c) {
			pool.release(sl)
			s.perAddr[i].release(key)
			_ = c.Close()
			return
		}
		st.connsTotal.Add(1)
		r.streams.Go(func() {
			defer func() {
				r.untrack(c)
				_ = c.Close()
				s.perAddr[i].release(key)
			}()
			r.serveStream(ctx, c, i, sl)
		})
	}
}

// refuse closes a connection over a limit and counts it.
func (r *run) refuse(c net.Conn, i int, limit string, n int) {
	r.s.stats[i].connsRefused.Add(1)
	r.s.log.Debug("connection refused", "transport", transportNames[i], "peer", c.RemoteAddr(), "limit", limit, "max", n)
	_ = c.Close()
}

// evict closes a silent connection (or handshake) whose slot went to a
// newcomer, and counts it.
func (r *run) evict(c net.Conn, i int) {
	if c == nil {
		return
	}
	st := &r.s.stats[i]
	st.connsEvicted.Add(1)
	if st.warnAllowed() {
		r.s.log.Warn("every slot taken; closed the oldest connection that had sent nothing (further ones within 10s are only counted)",
			"transport", transportNames[i], "peer", c.RemoteAddr())
	}
	_ = c.Close()
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

// serveStream does a TLS connection's handshake, then reads messages
// from the connection until it ends, idles out or is closed. sl is its
// slot: for TLS, the handshake's.
func (r *run) serveStream(ctx context.Context, c net.Conn, i int, sl *slot) {
	s := r.s
	st := &s.stats[i]
	ap := addrPort(c.RemoteAddr())
	ip := ap.Addr().Unmap()
	meta := Meta{Peer: ap.String(), PeerIP: ip.String(), Transport: transportNames[i]}
	log := s.log.With("transport", meta.Transport, "peer", meta.Peer)
	var pc *pacer // nil: the rate limit drops

	if i == iTLS {
		hs := sl
		tc := tls.Server(&heardConn{Conn: c, heard: func() { s.handshakes.hear(hs) }}, s.tls)
		// The deadline bounds the handshake; shutdown closes the
		// connection, which ends it too.
		_ = c.SetDeadline(time.Now().Add(s.cfg.TLS.HandshakeTimeout))
		err := tc.Handshake()
		evicted := s.handshakes.release(hs)
		switch {
		case err != nil && evicted:
			log.Debug("TLS handshake closed for a newcomer", "err", err)
			return
		case err != nil:
			st.handshakeErrors.Add(1)
			if st.warnAllowed() {
				log.Warn("TLS handshake failed (further failures within 10s are only counted)", "err", err)
			} else {
				log.Debug("TLS handshake failed", "err", err)
			}
			return
		}
		_ = c.SetDeadline(time.Time{})
		var ev net.Conn
		var ok bool
		if sl, ev, ok = s.conns[iTLS].take(c); !ok {
			r.refuse(c, i, "max_connections", s.cfg.MaxConnections)
			return
		}
		r.evict(ev, i)
		cs := tc.ConnectionState()
		meta.TLSPeer = peerName(cs)
		if authenticated(cs) && s.pace != nil {
			pc = &pacer{lim: s.pace, ctx: ctx, st: st, log: log.With("tls_peer", meta.TLSPeer)}
		}
		c = tc
	}
	st.connsOpen.Add(1)
	s.open.Add(1)
	defer func() {
		s.conns[i].release(sl)
		st.connsOpen.Add(-1)
		s.open.Add(-1)
	}()
	log.Debug("connection open", "tls_peer", meta.TLSPeer)

	in := &idleReader{c: c, first: min(s.cfg.FirstByteTimeout, s.cfg.IdleTimeout), idle: s.cfg.IdleTimeout,
		heard: func() { s.conns[i].hear(sl) }}
	fr := newFramer(bufio.NewReaderSize(in, streamBuf), s.cfg.MaxMessageBytes)
	p := Parser{Source: s.cfg.Name, Priority: s.priority, Loc: s.loc}
	for {
		msg, fl, err := fr.next()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			case errors.Is(err, io.ErrUnexpectedEOF):
				log.Debug("stream ended inside an octet-counted frame's header")
			case errors.Is(err, os.ErrDeadlineExceeded) && !in.got:
				log.Debug("silent stream closed", "first_byte_timeout", in.first)
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
		r.handle(&p, msg, ip, &m, st, fl.partial, pc)
	}
}

// handle rate-limits, parses and queues one message. With a pacer (a
// sender that authenticated) the rate limit waits, else it drops.
func (r *run) handle(p *Parser, msg []byte, ip netip.Addr, meta *Meta, st *listenerStats, partial bool, pc *pacer) {
	msg = trimTrailer(msg)
	if len(msg) == 0 && !meta.Truncated {
		return
	}
	if pc != nil {
		pc.wait(ip)
	} else if !r.s.lim.allow(ip, time.Now()) {
		st.limited.Add(1)
		return
	}
	now := time.Now()
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

// pacer holds one authenticated stream to the rate limit by making its
// reader wait for a token instead of dropping the message: meanwhile
// nothing is read from the connection, so TCP's window fills and the
// sender is held back, with nothing dropped and nothing buffered here
// beyond the message in hand and the read buffer. A message waits at
// most one token's refill per connection of its sender, and the bucket is
// the sender's own, so a flooding sender is slowed to rate_limit while
// the others are not.
type pacer struct {
	lim   *limiter
	ctx   context.Context
	st    *listenerStats
	log   *slog.Logger
	timer *time.Timer
	told  bool // this connection's first wait was logged
}

// wait takes a token for ip, waiting as long as the bucket needs to
// refill to it. Shutdown ends the wait: the message, already read, is
// still handed on.
func (p *pacer) wait(ip netip.Addr) {
	if p.ctx.Err() != nil {
		return // shutting down: hand on what was read without delay
	}
	d := p.lim.reserve(ip, time.Now())
	if d <= 0 {
		return
	}
	p.st.paced.Add(1)
	p.st.pacedNanos.Add(uint64(d))
	if !p.told {
		p.told = true
		p.log.Info("sender over rate_limit: reading from it is paced (held back, nothing dropped)",
			"messages_per_second", p.lim.rate, "burst", p.lim.burst)
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-p.timer.C:
	case <-p.ctx.Done():
		p.timer.Stop()
	}
}

// idleReader sets the read deadline before every read: first until the
// first byte arrived (then heard is called), idle after, so a stream that
// sends nothing is closed, while one held back by a slow sink (no read
// pending) is not.
type idleReader struct {
	c           net.Conn
	first, idle time.Duration
	heard       func()
	got         bool
}

func (r *idleReader) Read(b []byte) (int, error) {
	d := r.idle
	if !r.got {
		d = r.first
	}
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	n, err := r.c.Read(b)
	if n > 0 && !r.got {
		r.got = true
		r.heard()
	}
	return n, err
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
