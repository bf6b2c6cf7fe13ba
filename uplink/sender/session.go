package sender

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/weirgw/weir/uplink"
)

type inflight struct {
	span
	records, bytes, wire uint64
	sent                 time.Time
	delivered            uint64    // batches the session had acked when this one was sent
	deliveredAt          time.Time // when the last of them was
}

// reply is what the reading goroutine passes on.
type reply struct {
	at     time.Time // when it was read
	ack    uint64
	pong   *uplink.Pong
	offer  *uplink.ConfigOffer
	bundle *uplink.ConfigBundle
}

// session runs one connection to endpoint i, taking batches from d;
// connected reports whether the handshake and Hello/Welcome completed.
func (s *Sender) session(ctx context.Context, d *dispatcher, i int) (connected bool, err error) {
	ep, es := s.cfg.Endpoints[i], s.eps[i]
	es.update(func(st *EndpointStatus) { st.State = StateConnecting })
	comp, err := uplink.NewCompressor(s.cfg.Codec(), s.cfg.CompressionLevel)
	if err != nil {
		return false, err
	}
	defer comp.Close()
	var (
		plain  = make([]byte, 0, s.cfg.BatchMaxBytes+64)
		packed []byte
		early  *inflight // the batch sent with Hello
		first  func(*frameWriter) error
	)
	// The first batch goes right behind Hello, not after Welcome, so the
	// first ack comes one round trip (and the collector's fsync) after the
	// handshake rather than two. Its limits are those the collector set in
	// its last Welcome, known only after one session; a session that
	// reaches Hello takes them, so one that fails before its Welcome makes
	// the next wait for Welcome again. It holds earlyBatchBytes at most, to
	// fit in the transport's first flight.
	first = func(w *frameWriter) error {
		recs, bytes := es.takeWelcomeLimits()
		if recs == 0 {
			return nil
		}
		b, _, err := d.takeFor(recs, min(bytes, earlyBatchBytes), true)
		if err != nil || b == nil {
			return err
		}
		var msg uplink.Data
		msg, plain, packed = packBatch(comp, b, plain, packed)
		early = &inflight{span: b.span, records: msg.Count, bytes: b.bytes, wire: uint64(len(packed)), sent: time.Now(), deliveredAt: time.Now()}
		if err := w.write(&msg); err != nil {
			return fmt.Errorf("send data %d..%d with hello: %w", b.first, b.last, err)
		}
		s.update(func(st *Status) { st.RecordsSent += msg.Count })
		return nil
	}
	link, br, welcome, err := s.open(ctx, d, i, first)
	if err != nil {
		if early != nil {
			d.fail([]span{early.span})
		}
		if ctx.Err() == nil {
			s.update(func(st *Status) { st.LastError, st.LastReason = err.Error(), uplink.Classify(err) })
		}
		return false, err
	}
	defer link.Close()
	stop := context.AfterFunc(ctx, func() { link.Close() })
	defer stop()

	var peerExpiry time.Time
	if chain := link.PeerCertificates(); len(chain) > 0 {
		peerExpiry = chain[0].NotAfter
	}
	es.connected(link.Describe(), peerExpiry)
	es.update(func(st *EndpointStatus) { st.Active = true })
	s.update(func(st *Status) {
		st.ConnectedAt, st.LastError, st.LastReason = time.Now(), "", ""
		st.Connects++
	})
	s.log.Info("uplink connected", "endpoint", ep.Name(), "negotiated", link.Describe(), "collector_seq", welcome.Highest,
		"protocol", welcome.Version)

	var flight []inflight
	if early != nil {
		flight = append(flight, *early)
	}
	if recs, bytes := s.limits(welcome); welcome.Version >= 3 {
		es.setWelcomeLimits(recs, bytes)
	}
	defer func() {
		spans := make([]span, len(flight))
		for j, f := range flight {
			spans[j] = f.span
		}
		d.fail(spans)
		if ctx.Err() != nil {
			es.update(func(st *EndpointStatus) {
				st.State, st.Active, st.BatchesInFlight, st.Window = StateStandby, false, 0, 0
			})
			return
		}
		es.failed(err, false)
		s.update(func(st *Status) { st.LastError, st.LastReason = err.Error(), uplink.Classify(err) })
	}()

	if err := d.resume(welcome.Highest); err != nil {
		return true, err
	}
	maxRecs, maxBytes := s.limits(welcome)
	replies := make(chan reply, s.cfg.Window+8)
	rerr := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() { rerr <- readReplies(br, replies, done) }()

	w := frameWriter{conn: link, timeout: s.cfg.AckTimeout}
	fl, err := s.startFleet(&w, welcome, ep.Name())
	if err != nil {
		return true, err
	}
	var (
		rtt      rttEstimator
		nonce    uint64
		pingSent = map[uint64]time.Time{}
		flushAt  time.Time
		sizer    = newWindowSizer(s.cfg.Window, time.Now())
		window   = sizer.size(time.Now())
	)
	es.update(func(st *EndpointStatus) { st.Window = window })
	ping := func() error {
		nonce++
		pingSent[nonce] = time.Now()
		return w.write(&uplink.Ping{Nonce: nonce})
	}
	if err := ping(); err != nil {
		return true, fmt.Errorf("uplink: %s: send ping: %w", ep.Name(), err)
	}
	// handle takes a reply. Acks are matched and timed when they arrived,
	// not when the loop got to them.
	handle := func(r reply) error {
		if r.offer != nil || r.bundle != nil {
			return fl.reply(&w, r)
		}
		if r.pong != nil {
			if at, ok := pingSent[r.pong.Nonce]; ok {
				rtt.add(r.at.Sub(at))
				delete(pingSent, r.pong.Nonce)
				seg, ok := link.Segments()
				es.segments(seg, ok, rtt.srtt, rtt.rttvar)
			}
			return nil
		}
		// The collector acks each batch in the order it came, naming
		// the batch's last sequence. In balance mode a resent batch may
		// be numbered below the ones sent before it on this session, so
		// acks are matched in send order, not by comparing sequences.
		k := -1
		for j, f := range flight {
			if f.last == r.ack {
				k = j
				break
			}
		}
		if k < 0 {
			return fmt.Errorf("uplink: %s acked %d, which ends no batch in flight", ep.Name(), r.ack)
		}
		now := r.at
		for _, f := range flight[:k+1] {
			if err := d.ack(f.span); err != nil {
				return err
			}
			sizer.acked(now, f.sent, f.delivered, f.deliveredAt)
			es.acked(f.records, f.bytes, f.wire, now.Sub(f.sent), now)
			s.update(func(st *Status) {
				st.RecordsAcked += f.records
				st.LastAckSeq, st.LastAckAt = max(st.LastAckSeq, f.last), time.Now()
			})
		}
		flight = flight[k+1:]
		n := len(flight)
		window = sizer.size(now)
		es.update(func(st *EndpointStatus) { st.BatchesInFlight, st.Window = n, window })
		return nil
	}
	lastPing := time.Now()
	tick := time.NewTicker(min(sampleEvery, s.cfg.Keepalive))
	defer tick.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Take the wake-up channels before reading, so an append or a
		// queued batch between the read and the wait is never missed.
		appended, kicked, critical := s.sp.Appended(), d.kicked(), d.criticalAppended()
		flushAt = time.Time{}
		for len(flight) < window {
			// Take the acks that came while the window was being filled
			// first: while a deep window fills, or its writes wait for the
			// transport, an ack held back would delay the spool's mark,
			// the window's measure of the path and the next batch.
			select {
			case r := <-replies:
				if err := handle(r); err != nil {
					return true, err
				}
				continue
			default:
			}
			b, due, err := d.takeFor(maxRecs, maxBytes, len(flight) == 0)
			if err != nil {
				return true, err
			}
			if b == nil {
				flushAt = due
				break
			}
			var msg uplink.Data
			msg, plain, packed = packBatch(comp, b, plain, packed)
			f := inflight{span: b.span, records: msg.Count, bytes: b.bytes, wire: uint64(len(packed)), sent: time.Now()}
			f.delivered, f.deliveredAt = sizer.sent()
			flight = append(flight, f)
			if err := w.write(&msg); err != nil {
				return true, fmt.Errorf("uplink: send data %d..%d to %s: %w", b.first, b.last, ep.Name(), err)
			}
			n := len(flight)
			s.update(func(st *Status) { st.RecordsSent += msg.Count })
			es.update(func(st *EndpointStatus) { st.BatchesInFlight = n })
		}
		var wake, kick, crit <-chan struct{}
		if len(flight) < window {
			kick, crit = kicked, critical // a critical record does not wait for a batch to fill
			if flushAt.IsZero() {
				wake = appended
			}
		}
		next := time.Time{}
		if len(flight) > 0 {
			next = flight[0].sent.Add(s.cfg.AckTimeout)
		}
		if !flushAt.IsZero() && (next.IsZero() || flushAt.Before(next)) {
			next = flushAt
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return true, context.Cause(ctx)
		case err := <-rerr:
			return true, fmt.Errorf("uplink: %s: %w", ep.Name(), err)
		case <-wake:
		case <-kick:
		case <-fl.changes():
			if err := fl.report(&w); err != nil {
				return true, err
			}
		case <-crit:
		case <-timer.C:
			if len(flight) > 0 && time.Since(flight[0].sent) >= s.cfg.AckTimeout {
				return true, fmt.Errorf("uplink: %s sent no ack for %d within %s", ep.Name(), flight[0].last, s.cfg.AckTimeout)
			}
		case <-tick.C:
			seg, ok := link.Segments()
			es.segments(seg, ok, rtt.srtt, rtt.rttvar)
			// The idle timeout of this side: a collector that answers no
			// Ping within ack_timeout is gone, even with nothing in flight.
			for n, at := range pingSent {
				if time.Since(at) >= s.cfg.AckTimeout {
					return true, fmt.Errorf("uplink: %s answered no ping (%d) within %s", ep.Name(), n, s.cfg.AckTimeout)
				}
			}
			if time.Since(lastPing) >= s.cfg.Keepalive {
				if err := ping(); err != nil {
					return true, fmt.Errorf("uplink: %s: send ping: %w", ep.Name(), err)
				}
				lastPing = time.Now()
			}
		case r := <-replies:
			if err := handle(r); err != nil {
				return true, err
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// earlyBatchBytes bounds the records of the batch sent with Hello: with
// Hello it fits in the first flight of either transport (TCP's initial
// window of 10 segments, rudp's of 16) even when it does not compress.
const earlyBatchBytes = 12 << 10

// packBatch packs and compresses b's records into a Data message, in the
// buffers plain and packed, which it returns for reuse.
func packBatch(comp *uplink.Compressor, b *batch, plain, packed []byte) (uplink.Data, []byte, []byte) {
	plain = plain[:0]
	for _, r := range b.recs {
		plain = uplink.AppendRecord(plain, r.Data)
	}
	packed = comp.Compress(packed[:0], plain)
	return uplink.Data{First: b.first, Count: b.last - b.first + 1, Codec: comp.Codec(), Payload: packed}, plain, packed
}

// readReplies passes on Acks, Pongs and the configuration messages; an
// Error from the collector ends the session with its reason. Each frame
// is bounded by its type before it is read.
func readReplies(br *bufio.Reader, out chan<- reply, done <-chan struct{}) error {
	fr := uplink.NewFrameReader(br, uplink.DefaultMaxFrame)
	fr.Limit = uplink.ControlFrameMax
	for {
		t, body, err := fr.Next()
		if err != nil {
			return err
		}
		fr.Shrink(64 << 10)
		m, err := uplink.Decode(t, body)
		if err != nil {
			return err
		}
		var r reply
		switch m := m.(type) {
		case *uplink.Ack:
			r = reply{ack: m.Cumulative}
		case *uplink.Pong:
			r = reply{pong: m}
		case *uplink.ConfigOffer:
			r = reply{offer: m}
		case *uplink.ConfigBundle:
			m.Bundle = bytes.Clone(m.Bundle) // the body is the reader's buffer
			r = reply{bundle: m}
		case *uplink.Error:
			return m
		default:
			return fmt.Errorf("unexpected %s message", msgName(m))
		}
		r.at = time.Now()
		select {
		case out <- r:
		case <-done:
			return nil
		}
	}
}

// frameWriter writes whole frames with a deadline, reusing one buffer.
type frameWriter struct {
	conn    net.Conn
	timeout time.Duration
	buf     []byte
}

func (w *frameWriter) write(m uplink.Message) error {
	w.buf = uplink.AppendFrame(w.buf[:0], m)
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := w.conn.Write(w.buf)
	return err
}
