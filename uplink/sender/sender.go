package sender

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink"
)

// Spool is what the sender needs of the store-and-forward queue.
type Spool interface {
	Read(cursor uint64, max, maxBytes int) ([]spool.Record, error)
	Ack(upTo uint64) error
	Appended() <-chan struct{}
	Stats() spool.Stats
}

// State of the sender, for status output.
type State string

const (
	StateDisabled   State = "disabled"
	StateConnecting State = "connecting"
	StateConnected  State = "connected"
	StateBackoff    State = "backoff"
)

// Status is a snapshot of the sender.
type Status struct {
	State           State     `json:"state"`
	Endpoint        string    `json:"endpoint,omitempty"`
	ConnectedAt     time.Time `json:"connected_at,omitzero"`
	LastAckSeq      uint64    `json:"last_ack_seq"`
	LastAckAt       time.Time `json:"last_ack_at,omitzero"`
	RecordsSent     uint64    `json:"records_sent"`
	RecordsAcked    uint64    `json:"records_acked"`
	BatchesInFlight int       `json:"batches_in_flight"`
	Connects        uint64    `json:"connects"`
	LastError       string    `json:"last_error,omitempty"`
}

// Sender delivers spooled records to the first reachable collector.
type Sender struct {
	cfg     uplink.Config
	gateway string
	bootID  string
	sp      Spool
	log     *slog.Logger

	mu     sync.Mutex
	status Status
}

// New checks cfg and builds a sender for gateway.
func New(cfg uplink.Config, gateway, bootID string, sp Spool, log *slog.Logger) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Sender{cfg: cfg, gateway: gateway, bootID: bootID, sp: sp, log: log}
	s.status.State = StateDisabled
	return s, nil
}

// Status returns a snapshot; safe to call while Run runs.
func (s *Sender) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *Sender) update(f func(*Status)) {
	s.mu.Lock()
	f(&s.status)
	s.mu.Unlock()
}

// Run sends until ctx is done, reconnecting with exponential backoff and
// trying the endpoints in order.
func (s *Sender) Run(ctx context.Context) error {
	if !s.cfg.Enabled() {
		<-ctx.Done()
		return nil
	}
	backoff := s.cfg.ReconnectMin
	for i := 0; ; i++ {
		ep := s.cfg.Endpoints[i%len(s.cfg.Endpoints)]
		s.update(func(st *Status) { st.State, st.Endpoint = StateConnecting, ep.Address })
		acked, err := s.session(ctx, ep)
		if ctx.Err() != nil {
			s.update(func(st *Status) { st.State = StateDisabled })
			return nil
		}
		if acked {
			backoff = s.cfg.ReconnectMin // the link worked; start over gently
		}
		s.log.Warn("uplink session ended", "endpoint", ep.Address, "err", err, "retry_in", backoff)
		s.update(func(st *Status) { st.State, st.LastError = StateBackoff, err.Error() })
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.ReconnectMax)
	}
}

type inflight struct {
	last uint64
	sent time.Time
}

// session runs one connection; acked reports whether anything was acked.
func (s *Sender) session(ctx context.Context, ep uplink.Endpoint) (acked bool, err error) {
	conn, err := s.dial(ctx, ep)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	br := bufio.NewReaderSize(conn, 64<<10)
	w := frameWriter{conn: conn, timeout: s.cfg.AckTimeout}
	if err := w.write(&uplink.Hello{Version: uplink.ProtocolVersion, Gateway: s.gateway, BootID: s.bootID}); err != nil {
		return false, fmt.Errorf("uplink: send hello to %s: %w", ep.Address, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.ConnectTimeout))
	m, err := readMessage(br, nil)
	if err != nil {
		return false, fmt.Errorf("uplink: await welcome from %s: %w", ep.Address, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	welcome, ok := m.(*uplink.Welcome)
	if !ok {
		return false, fmt.Errorf("uplink: %s answered hello with %s, want welcome", ep.Address, msgName(m))
	}
	cursor, err := s.resume(welcome.Highest, ep)
	if err != nil {
		return false, err
	}
	s.update(func(st *Status) {
		st.State, st.ConnectedAt, st.LastError = StateConnected, time.Now(), ""
		st.Connects++
	})
	s.log.Info("uplink connected", "endpoint", ep.Address, "resume_seq", cursor)

	acks := make(chan uint64, s.cfg.Window+1)
	rerr := make(chan error, 1)
	go func() { rerr <- s.readAcks(br, acks) }()

	var flight []inflight
	lastSent, ackMark, sentAny := cursor-1, cursor-1, false
	payload := make([]byte, 0, s.cfg.BatchMaxBytes+64)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Take the wake-up channel before reading, so an append between the
		// read and the wait is never missed.
		appended := s.sp.Appended()
		for len(flight) < s.cfg.Window {
			recs, err := s.sp.Read(cursor, s.cfg.BatchMaxRecords, s.cfg.BatchMaxBytes)
			if err != nil {
				return acked, fmt.Errorf("uplink: read spool at %d: %w", cursor, err)
			}
			if len(recs) == 0 {
				break
			}
			d := uplink.Data{First: recs[0].Seq, Codec: uplink.CodecNone}
			payload = payload[:0]
			for _, r := range recs {
				if r.Seq != d.First+d.Count {
					break // a gap left by eviction or expiry: the next batch starts after it
				}
				payload = uplink.AppendRecord(payload, r.Data)
				d.Count++
			}
			d.Payload = payload
			if err := w.write(&d); err != nil {
				return acked, fmt.Errorf("uplink: send data %d..%d to %s: %w", d.First, d.First+d.Count-1, ep.Address, err)
			}
			if !sentAny {
				ackMark, sentAny = d.First-1, true // the spool's numbering starts above 1
			}
			lastSent = d.First + d.Count - 1
			cursor = lastSent + 1
			flight = append(flight, inflight{last: lastSent, sent: time.Now()})
			s.update(func(st *Status) { st.RecordsSent += d.Count; st.BatchesInFlight = len(flight) })
		}
		var wake <-chan struct{}
		if len(flight) < s.cfg.Window {
			wake = appended
		}
		if len(flight) > 0 {
			timer.Reset(time.Until(flight[0].sent.Add(s.cfg.AckTimeout)))
		}
		select {
		case <-ctx.Done():
			return acked, ctx.Err()
		case err := <-rerr:
			return acked, fmt.Errorf("uplink: %s: %w", ep.Address, err)
		case <-wake:
		case <-timer.C:
			if len(flight) > 0 && time.Since(flight[0].sent) >= s.cfg.AckTimeout {
				return acked, fmt.Errorf("uplink: %s sent no ack for %d within %s", ep.Address, flight[0].last, s.cfg.AckTimeout)
			}
		case upTo := <-acks:
			if upTo > lastSent {
				return acked, fmt.Errorf("uplink: %s acked %d, beyond the last sequence sent (%d)", ep.Address, upTo, lastSent)
			}
			if err := s.sp.Ack(upTo); err != nil {
				return acked, fmt.Errorf("uplink: ack spool up to %d: %w", upTo, err)
			}
			acked = true
			var n uint64
			if upTo > ackMark {
				n, ackMark = upTo-ackMark, upTo
			}
			for len(flight) > 0 && flight[0].last <= upTo {
				flight = flight[1:]
			}
			s.update(func(st *Status) {
				st.RecordsAcked += n
				st.LastAckSeq, st.LastAckAt, st.BatchesInFlight = upTo, time.Now(), len(flight)
			})
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// resume acks what the collector already holds and returns the first
// sequence to send.
func (s *Sender) resume(highest uint64, ep uplink.Endpoint) (uint64, error) {
	st := s.sp.Stats()
	last := st.NextSeq - 1
	if highest > last {
		// The collector holds sequences this spool never assigned: the spool
		// was replaced by one seeded from a clock that runs behind. Nothing
		// here is lost by saying so; new records above highest still flow.
		s.log.Error("collector is ahead of this spool: records numbered at or below its mark will be treated as duplicates there",
			"endpoint", ep.Address, "collector_seq", highest, "spool_last_seq", last)
	}
	if upTo := min(highest, last); upTo > st.AckedUpTo {
		if err := s.sp.Ack(upTo); err != nil {
			return 0, fmt.Errorf("uplink: ack spool up to collector's %d: %w", upTo, err)
		}
	}
	return max(highest, st.AckedUpTo) + 1, nil
}

func (s *Sender) readAcks(br *bufio.Reader, acks chan<- uint64) error {
	var buf []byte
	for {
		t, body, b, err := uplink.ReadFrame(br, buf, uplink.DefaultMaxFrame)
		buf = b
		if err != nil {
			return err
		}
		m, err := uplink.Decode(t, body)
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *uplink.Ack:
			acks <- m.Cumulative
		case *uplink.Error:
			return m
		default:
			return fmt.Errorf("unexpected %s message", msgName(m))
		}
	}
}

func (s *Sender) dial(ctx context.Context, ep uplink.Endpoint) (net.Conn, error) {
	name := ep.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(ep.Address)
	}
	tc, err := uplink.ClientTLS(s.cfg.TLS, name)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: tc}
	conn, err := d.DialContext(dctx, "tcp", ep.Address)
	if err != nil {
		return nil, fmt.Errorf("uplink: connect to %s: %w", ep.Address, err)
	}
	return conn, nil
}

func readMessage(br *bufio.Reader, buf []byte) (uplink.Message, error) {
	t, body, _, err := uplink.ReadFrame(br, buf, uplink.DefaultMaxFrame)
	if err != nil {
		return nil, err
	}
	m, err := uplink.Decode(t, body)
	if err != nil {
		return nil, err
	}
	if e, ok := m.(*uplink.Error); ok {
		return nil, e
	}
	return m, nil
}

func msgName(m uplink.Message) string {
	if m == nil {
		return "nothing"
	}
	return m.Type().String()
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
