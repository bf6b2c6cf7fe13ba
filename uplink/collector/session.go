package collector

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

// session is one authenticated gateway connection.
type session struct {
	srv       *Server
	conn      SecureConn
	transport string
	peer      string
	id        string
	leaf      *x509.Certificate
	log       *slog.Logger
	w         writer

	// The frame being handled, kept for the quarantine should it panic.
	frameType uplink.MsgType
	frame     []byte

	endOnce sync.Once
	mu      sync.Mutex
	ended   string      // why the collector ended the session, if it did
	failed  atomic.Bool // a batch's write failed, and was answered

	cfg sessionConfig // remote configuration (version 4)
}

// end closes the session on purpose: an Error frame saying why, then the
// connection. Safe from any goroutine; the first call wins.
func (s *session) end(code uplink.ErrorCode, msg, reason string) {
	s.endOnce.Do(func() {
		s.mu.Lock()
		s.ended = reason
		s.mu.Unlock()
		s.srv.metrics.sessionsEnded.WithLabelValues(reason).Inc()
		s.w.refuse(code, msg)
		s.conn.Close()
	})
}

func (s *session) endedWhy() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// handle runs an authenticated connection: identity, deny list, a session
// slot, Hello and Welcome, then batches until the connection ends. A panic
// anywhere in it closes this session and is counted, logged and its frame
// quarantined; the collector carries on.
func (s *Server) handle(ctx context.Context, conn SecureConn, transport string) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	peer := conn.RemoteAddr().String()
	log := s.log.With("peer", peer, "transport", transport)
	_ = conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	sess := &session{srv: s, conn: conn, transport: transport, peer: peer, log: log,
		w: writer{conn: conn, timeout: s.cfg.HandshakeTimeout}}

	certs := conn.PeerCertificates()
	if len(certs) == 0 {
		sess.refuse(uplink.ErrIdentity, "no client certificate", string(uplink.ReasonRefusedID), "session refused: no client certificate")
		return
	}
	sess.leaf = certs[0]
	id, err := pki.GatewayID(sess.leaf)
	if err != nil {
		sess.refuse(uplink.ErrIdentity, "the client certificate names no gateway", string(uplink.ReasonRefusedID),
			"session refused: client certificate names no gateway", "err", err)
		return
	}
	sess.id = id
	sess.log = log.With("gateway", id)
	list, _, err := s.deny.current()
	if err != nil {
		sess.refuse(uplink.ErrIdentity, "the collector cannot read its deny list", "deny_list_unreadable",
			"session refused: deny list unreadable; every gateway is refused until it is fixed", "gateway", id, "err", err)
		return
	}
	if why, denied := list.Denied(id, sess.leaf); denied {
		sess.refuse(uplink.ErrIdentity, why, "revoked", "session refused: revoked", "gateway", id, "why", why)
		return
	}
	if now := time.Now(); now.After(sess.leaf.NotAfter) {
		sess.refuse(uplink.ErrIdentity, "the client certificate expired", "cert_expired", "session refused: certificate expired",
			"gateway", id, "not_after", sess.leaf.NotAfter)
		return
	}
	if why, ok := s.gate.enterSession(sess); !ok {
		sess.refuse(uplink.ErrBusy, fmt.Sprintf("too many sessions (%s); retry later", why), why,
			"session refused: too many sessions", "gateway", id, "max_conns", s.cfg.MaxConns,
			"max_sessions_per_gateway", s.cfg.MaxSessionsPerGateway)
		return
	}
	defer s.gate.leaveSession(sess)
	defer s.recoverSession(sess)
	sess.run(ctx)
}

// recoverSession turns a panic in a session into a closed session: counted,
// logged (rate-limited), the frame it was handling kept for analysis.
func (s *Server) recoverSession(sess *session) {
	r := recover()
	if r == nil {
		return
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(sess.frame)+1))
	frame = append(append(frame, byte(sess.frameType)), sess.frame...)
	s.sessionPanicked(sess, r, debug.Stack(), sess.frameType, frame)
}

// sessionPanicked closes a session after a panic on frame, which it
// keeps in the quarantine.
func (s *Server) sessionPanicked(sess *session, r any, stack []byte, frameType uplink.MsgType, frame []byte) {
	s.metrics.panics.Inc()
	kept, qerr := s.quar.keep(sess.id, sess.peer, frame, fmt.Sprintf("panic: %v\n\n%s", r, stack))
	args := []any{"peer", sess.peer, "transport", sess.transport, "gateway", sess.id, "panic", fmt.Sprint(r),
		"frame_type", frameType, "frame_bytes", len(frame)}
	if kept != "" {
		args = append(args, "frame_kept", kept)
	}
	if qerr != nil {
		args = append(args, "quarantine_err", qerr)
	}
	s.rlog.error("panic", "session closed after a panic; the collector carries on", append(args, "stack", string(stack))...)
	sess.end(uplink.ErrProtocol, "the collector failed on this session's last message", "panic")
}

func (sess *session) run(ctx context.Context) {
	s := sess.srv
	fr := uplink.NewFrameReader(bufio.NewReaderSize(sess.conn, 16<<10), uplink.HelloMaxFrame)
	fr.Reserve = func(n int) error { return s.budget.acquire(ctx, n, s.cfg.BudgetWait) }
	defer func() { s.budget.release(fr.Held()) }()

	t, body, err := fr.Next()
	if err != nil {
		if errors.Is(err, uplink.ErrFrameTooLarge) {
			sess.refuse(uplink.ErrProtocol, err.Error(), "bad_hello", "session refused: hello frame too large", "err", err)
			return
		}
		s.rlog.warn("hello", "session ended before hello", "peer", sess.peer, "gateway", sess.id, "err", err)
		return
	}
	sess.frameType, sess.frame = t, body
	m, err := uplink.Decode(t, body)
	if err != nil {
		sess.refuse(uplink.ErrProtocol, err.Error(), "bad_hello", "session refused: bad hello", "err", err)
		return
	}
	hello, ok := m.(*uplink.Hello)
	if !ok {
		sess.refuse(uplink.ErrProtocol, "first message must be hello", "bad_hello", "session refused: first message is not hello", "type", t)
		return
	}
	if hello.Version < uplink.MinProtocolVersion || hello.Version > uplink.ProtocolVersion {
		sess.refuse(uplink.ErrVersion, fmt.Sprintf("protocol version %d not supported (collector speaks %d to %d)",
			hello.Version, uplink.MinProtocolVersion, uplink.ProtocolVersion), "version",
			"session refused: unsupported protocol version", "version", hello.Version)
		return
	}
	if hello.Gateway != sess.id {
		sess.refuse(uplink.ErrIdentity, fmt.Sprintf("hello names gateway %q but the client certificate is for %q", clip(hello.Gateway), sess.id),
			string(uplink.ReasonRefusedID), "session refused: gateway id does not match the client certificate",
			"hello_gateway", clip(hello.Gateway), "cert_gateway", sess.id)
		return
	}
	maxRecs, maxBytes := s.cfg.MaxBatchRecords, s.cfg.MaxBatchBytes
	if hello.Version >= 3 {
		if hello.MaxRecords < 1 || hello.MaxRecords > uplink.MaxBatchRecords ||
			hello.MaxBytes < uplink.MinBatchBytes || hello.MaxBytes > uplink.MaxBatchBytes {
			sess.refuse(uplink.ErrProtocol, fmt.Sprintf("batch limits %d records, %d bytes are outside 1..%d, %d..%d",
				hello.MaxRecords, hello.MaxBytes, uplink.MaxBatchRecords, uplink.MinBatchBytes, uplink.MaxBatchBytes),
				"bad_hello", "session refused: batch limits out of range", "max_records", hello.MaxRecords, "max_bytes", hello.MaxBytes)
			return
		}
		maxRecs, maxBytes = min(maxRecs, int(hello.MaxRecords)), min(maxBytes, int(hello.MaxBytes))
	}
	res := s.sink.Resume(sess.id, hello.Floor)
	if res.Verdict.Refused() {
		s.floorRefused(sess, hello.Floor, res)
	}
	welcome := &uplink.Welcome{Version: min(hello.Version, uplink.ProtocolVersion), Highest: res.Highest,
		MaxRecords: uint64(maxRecs), MaxBytes: uint64(maxBytes)}
	if err := sess.w.write(welcome); err != nil {
		sess.note(slog.LevelWarn, "send welcome", "err", err)
		return
	}
	sess.note(slog.LevelInfo, "gateway connected", "boot_id", clip(hello.BootID), "floor", hello.Floor, "floor_verdict", res.Verdict,
		"highest_seq", res.Highest, "protocol", welcome.Version, "max_records", maxRecs, "max_bytes", maxBytes)
	_ = sess.conn.SetDeadline(time.Time{})

	// The session ends at its certificate's NotAfter or its maximum age,
	// whichever comes first: a certificate must not outlive itself on a
	// connection pings keep open.
	ends, why, reason := time.Now().Add(s.cfg.MaxSessionAge), "the session reached its maximum age; reconnect", "max_age"
	if na := sess.leaf.NotAfter; na.Before(ends) {
		ends, why, reason = na, "the client certificate expired", "cert_expired"
	}
	timer := time.AfterFunc(time.Until(ends), func() { sess.end(uplink.ErrSessionEnd, why, reason) })
	defer timer.Stop()

	fr.Max = uplink.FrameBound(maxRecs, maxBytes)
	fr.Limit = controlLimit(&fr.Max)
	config := welcome.Version >= 4
	if config && s.bundles != nil {
		s.bundles.subscribe(sess)
		defer s.bundles.unsubscribe(sess)
	}
	b := newBatcher(s, sess.id, maxRecs, maxBytes)
	defer b.close()
	// A batch is written, fsynced and acked by a goroutine of its own
	// while this loop reads and decodes the next, so a session goes at the
	// pace of the slower of the two, not of their sum. Batches are written
	// one at a time and in order: each sees what the one before it wrote.
	var pending chan written
	finish := func() bool {
		if pending == nil {
			return true
		}
		w := <-pending
		pending = nil
		return sess.written(w)
	}
	defer func() {
		if pending == nil {
			return
		}
		// The session is ending: the batch under way is still written,
		// and acked if the connection takes it (the gateway resends it
		// otherwise, so an ack that did not go is no news).
		if w := <-pending; w.ackErr == nil {
			sess.written(w)
		}
	}()
	for {
		sess.frame = nil
		_ = sess.conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		t, body, err := fr.Next()
		if why := sess.endedWhy(); why != "" {
			sess.note(slog.LevelInfo, "gateway session ended by the collector", "reason", why)
			return
		}
		if err != nil {
			if errors.Is(err, errOverBudget) {
				sess.endBusy(err)
				return
			}
			if errors.Is(err, uplink.ErrFrameTooLarge) {
				sess.w.refuse(uplink.ErrLimit, err.Error())
				s.metrics.batchesRefused.WithLabelValues(sess.id, "frame_size").Inc()
				s.rlog.warn("batch-frame_size", "frame refused before it was read; session closed", "peer", sess.peer,
					"gateway", sess.id, "err", err)
				return
			}
			if ctx.Err() == nil && !sess.failed.Load() {
				sess.note(slog.LevelInfo, "gateway session ended", "err", err)
			}
			return
		}
		sess.frameType, sess.frame = t, body
		m, err := uplink.Decode(t, body)
		if err != nil {
			sess.refuse(uplink.ErrProtocol, err.Error(), "bad_message", "session closed: bad message", "err", err)
			return
		}
		switch m := m.(type) {
		case *uplink.Ping:
			if err := sess.w.write(&uplink.Pong{Nonce: m.Nonce}); err != nil {
				sess.note(slog.LevelWarn, "send pong", "err", err)
				return
			}
		case *uplink.Data:
			p, err := b.prepare(ctx, m)
			s.budget.release(fr.Shrink(64 << 10))
			if !finish() {
				if p != nil {
					p.release()
				}
				return
			}
			if err != nil {
				sess.batchFailed(m.First, m.Count, err)
				return
			}
			pending = make(chan written, 1)
			go sess.write(b, p, pending)
		case *uplink.ConfigStatus, *uplink.ConfigPull:
			if !config {
				sess.refuse(uplink.ErrProtocol, fmt.Sprintf("unexpected %s before protocol version 4", t), "bad_message",
					"session closed: unexpected message", "type", t)
				return
			}
			if !sess.configMessage(m) {
				return
			}
		default:
			sess.refuse(uplink.ErrProtocol, fmt.Sprintf("unexpected %s", t), "bad_message", "session closed: unexpected message", "type", t)
			return
		}
	}
}

// written is what became of a batch handed to write.
type written struct {
	p        *prepared
	err      error // not written
	ackErr   error // written, not acked
	panicked any
	stack    []byte
	handled  bool // answered by write itself
}

// write writes p durably and acks it, on a goroutine of its own.
func (sess *session) write(b *batcher, p *prepared, out chan<- written) {
	w := written{p: p}
	defer func() {
		if r := recover(); r != nil {
			w.panicked, w.stack = r, debug.Stack()
		}
		sess.writeFailed(&w)
		p.release()
		out <- w
	}()
	if w.err = b.commit(p); w.err == nil {
		w.ackErr = sess.w.write(&uplink.Ack{Cumulative: p.first + p.count - 1})
	}
}

// write's failures are answered at once, not when the loop next looks:
// it may be waiting for a frame the gateway will not send before the
// answer. The connection is closed to end that wait.
func (sess *session) writeFailed(w *written) {
	if w.panicked == nil && w.err == nil {
		return
	}
	sess.written(*w)
	w.handled = true
	sess.failed.Store(true)
	sess.conn.Close()
}

// written takes what became of a batch; it reports whether the session
// goes on.
func (sess *session) written(w written) bool {
	switch {
	case w.handled:
		return false
	case w.panicked != nil:
		// The frame kept is the batch as it was decoded: the one read
		// from the wire is gone with the reads after it.
		frame := uplink.AppendFrame(nil, &uplink.Data{First: w.p.first, Count: w.p.count, Codec: uplink.CodecNone, Payload: w.p.payload})
		sess.srv.sessionPanicked(sess, w.panicked, w.stack, uplink.MsgData, frame)
		return false
	case w.err != nil:
		sess.batchFailed(w.p.first, w.p.count, w.err)
		return false
	case w.ackErr != nil:
		sess.note(slog.LevelWarn, "send ack", "err", w.ackErr)
		return false
	}
	return true
}

// batchFailed answers a batch that was not written: refused with an Error
// frame, or the session ended as busy; the session ends either way.
func (sess *session) batchFailed(first, count uint64, err error) {
	s := sess.srv
	var be *batchError
	switch {
	case errors.Is(err, errOverBudget):
		sess.endBusy(err)
	case errors.As(err, &be):
		sess.w.refuse(be.code, be.Error())
		s.metrics.batchesRefused.WithLabelValues(sess.id, be.reason).Inc()
		s.rlog.warn("batch-"+be.reason, "batch refused, nothing of it written; session closed", "peer", sess.peer,
			"gateway", sess.id, "first", first, "count", count, "reason", be.reason, "err", be.err)
	default:
		sess.w.refuse(uplink.ErrSink, "collector cannot store records now")
		sess.log.Error("records not stored; gateway will resend", "first", first, "count", count, "err", err)
	}
}

// note logs a line about the session within its gateway's log budget: a
// stolen key can open and close sessions as fast as handshakes go, and
// each would otherwise write its "connected" and "ended" lines.
func (sess *session) note(level slog.Level, msg string, args ...any) {
	sess.srv.rlog.logAt(level, "session/"+sess.id, msg, append([]any{"peer", sess.peer, "transport", sess.transport,
		"gateway", sess.id}, args...)...)
}

func (sess *session) endBusy(err error) {
	sess.srv.rlog.warn("busy", "session closed: collector over its memory budget", "peer", sess.peer, "gateway", sess.id, "err", err)
	sess.end(uplink.ErrBusy, "collector over its memory budget; retry later", "busy")
}

// refuse answers a Hello or message with an Error, counts and logs it
// (rate-limited); the caller then closes the session.
func (sess *session) refuse(code uplink.ErrorCode, msg, reason, logMsg string, args ...any) {
	s := sess.srv
	sess.w.refuse(code, msg)
	s.metrics.sessionsRefused.WithLabelValues(reason).Inc()
	s.rlog.warn("session-"+reason, logMsg, append([]any{"peer", sess.peer, "transport", sess.transport, "gateway", sess.id,
		"reason", reason}, args...)...)
}

// floorRefused counts a resume floor the sink would not take and raises a
// critical record about it (one per gateway per minute at most).
func (s *Server) floorRefused(sess *session, floor uint64, res Resumed) {
	s.metrics.floorsRefused.WithLabelValues(sess.id, res.Verdict.String()).Inc()
	if !res.Verdict.Report() || !s.alerts.allow(sess.id, time.Now()) {
		return
	}
	var what string
	switch res.Verdict {
	case FloorBeyond:
		what = fmt.Sprintf("beyond the highest sequence the collector holds from it (%d)", res.Held)
	default:
		what = fmt.Sprintf("over sequence %d, which the collector never received", res.Hole)
	}
	msg := fmt.Sprintf("gateway %s declared resume floor %d %s; not applied: either the gateway lost records before sending them, "+
		"or someone else holds its key", sess.id, floor, what)
	s.log.Error("resume floor refused", "gateway", sess.id, "peer", sess.peer, "floor", floor, "verdict", res.Verdict,
		"held", res.Held, "hole", res.Hole)
	ev := &event.Event{
		Time: time.Now().UnixNano(), Quality: event.Quality{Source: event.TimeSystem, ErrorBound: -1},
		Source: "weir-collector", Kind: event.KindAlert, Severity: event.SevCritical, Priority: event.PriorityCritical,
		Message: msg,
		Fields: []event.Field{
			{Key: "gateway_id", Value: event.Value{Type: event.TypeString, Str: sess.id}},
			{Key: "declared_floor", Value: event.Value{Type: event.TypeUint, Num: floor}},
			{Key: "held_up_to", Value: event.Value{Type: event.TypeUint, Num: res.Held}},
			{Key: "verdict", Value: event.Value{Type: event.TypeString, Str: res.Verdict.String()}},
			{Key: "peer", Value: event.Value{Type: event.TypeString, Str: sess.peer}},
			{Key: "cert_serial", Value: event.Value{Type: event.TypeString, Str: sess.leaf.SerialNumber.Text(16)}},
		},
	}
	if err := s.sink.Alert(ev); err != nil {
		s.log.Error("critical record not stored", "gateway", sess.id, "err", err)
	}
}

type writer struct {
	mu      sync.Mutex
	conn    net.Conn
	timeout time.Duration
	buf     []byte
}

func (w *writer) write(m uplink.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = uplink.AppendFrame(w.buf[:0], m)
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := w.conn.Write(w.buf)
	return err
}

func (w *writer) refuse(code uplink.ErrorCode, msg string) {
	_ = w.write(&uplink.Error{Code: code, Message: msg})
}

// clip shortens peer-supplied text quoted in logs and errors.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
