package sender

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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

// State of the sender or of one endpoint, for status output.
type State string

const (
	StateDisabled   State = "disabled"
	StateConnecting State = "connecting"
	StateConnected  State = "connected"
	StateBackoff    State = "backoff"
	StateStandby    State = "standby" // failover: healthy at the last probe, not in use
)

// Status is a snapshot of the sender.
type Status struct {
	State        State       `json:"state"`
	Mode         uplink.Mode `json:"mode,omitempty"`
	Endpoint     string      `json:"endpoint,omitempty"` // the endpoints in use, comma-separated
	ConnectedAt  time.Time   `json:"connected_at,omitzero"`
	LastAckSeq   uint64      `json:"last_ack_seq"`
	LastAckAt    time.Time   `json:"last_ack_at,omitzero"`
	RecordsSent  uint64      `json:"records_sent"`
	RecordsAcked uint64      `json:"records_acked"`
	// RecordsAhead: critical records sent ahead of the backlog.
	RecordsAhead    uint64           `json:"records_sent_ahead"`
	BatchesInFlight int              `json:"batches_in_flight"`
	Connects        uint64           `json:"connects"`
	LastError       string           `json:"last_error,omitempty"`
	LastReason      uplink.Reason    `json:"last_reason,omitempty"`
	CertExpiry      time.Time        `json:"cert_expiry,omitzero"`   // own certificate
	CAExpiry        time.Time        `json:"ca_expiry,omitzero"`     // earliest in the CA bundle
	CertWarning     string           `json:"cert_warning,omitempty"` // set within uplink.cert_expiry_warning
	Endpoints       []EndpointStatus `json:"endpoints,omitempty"`
}

// Sender delivers spooled records to the configured collectors.
type Sender struct {
	cfg        uplink.Config
	gateway    string
	bootID     string
	sp         Spool
	log        *slog.Logger
	id         *uplink.Identity
	transports Transports
	eps        []*endpointStats
	fleet      Fleet // remote configuration; nil: none
	// pause waits between attempts (sleep; tests record the waits).
	pause func(ctx context.Context, d time.Duration) bool

	mu     sync.Mutex
	status Status
	disp   *dispatcher // set by Run, under mu
}

// New checks cfg and builds a sender for gateway.
func New(cfg uplink.Config, gateway, bootID string, sp Spool, log *slog.Logger) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Sender{cfg: cfg, gateway: gateway, bootID: bootID, sp: sp, log: log, id: uplink.NewIdentity(cfg.TLS),
		transports: DefaultTransports(cfg, log), pause: sleep}
	s.status.State, s.status.Mode = StateDisabled, cfg.Mode
	for _, ep := range cfg.Endpoints {
		s.eps = append(s.eps, newEndpointStats(ep, time.Now))
	}
	return s, nil
}

// SetTransport replaces the dialer of one transport (tests, and wiring a
// transport from a package that imports this one).
func (s *Sender) SetTransport(t uplink.Transport, tr Transport) { s.transports[t] = tr }

// Status returns a snapshot; safe to call while Run runs.
func (s *Sender) Status() Status {
	s.mu.Lock()
	st := s.status
	d := s.disp
	s.mu.Unlock()
	if d != nil {
		d.mu.Lock()
		st.RecordsAhead = d.aheadRecs
		d.mu.Unlock()
	}
	var active []string
	st.BatchesInFlight = 0
	for _, e := range s.eps {
		es := e.snapshot()
		if es.Active {
			active = append(active, es.Endpoint)
			st.BatchesInFlight += es.BatchesInFlight
		}
		st.Endpoints = append(st.Endpoints, es)
	}
	if len(s.eps) > 0 {
		st.Endpoint = strings.Join(active, ",")
		if st.State != StateDisabled {
			st.State = StateBackoff
			if len(active) > 0 {
				st.State = StateConnected
			}
		}
	}
	if len(s.eps) > 0 {
		st.CertExpiry, st.CAExpiry = s.id.Expiry()
		st.CertWarning = s.certWarning(st.CertExpiry, st.CAExpiry, time.Now())
	}
	return st
}

func (s *Sender) certWarning(own, ca, now time.Time) string {
	var w []string
	for _, c := range []struct {
		what string
		at   time.Time
	}{{"own certificate", own}, {"CA certificate", ca}} {
		if c.at.IsZero() {
			continue
		}
		left := c.at.Sub(now)
		switch {
		case left <= 0:
			w = append(w, fmt.Sprintf("%s expired %s", c.what, c.at.Format(time.DateOnly)))
		case left < s.cfg.CertExpiryWarning:
			w = append(w, fmt.Sprintf("%s expires in %d days (%s)", c.what, int(left.Hours()/24), c.at.Format(time.DateOnly)))
		}
	}
	return strings.Join(w, "; ")
}

func (s *Sender) update(f func(*Status)) {
	s.mu.Lock()
	f(&s.status)
	s.mu.Unlock()
}

// Run sends until ctx is done.
func (s *Sender) Run(ctx context.Context) error {
	if !s.cfg.Enabled() {
		<-ctx.Done()
		return nil
	}
	s.update(func(st *Status) { st.State = StateConnecting })
	d, err := newDispatcher(s.sp, s.cfg.BatchMaxRecords, s.cfg.BatchMaxBytes, s.cfg.FlushInterval)
	if err != nil {
		return err
	}
	d.flushIdle = s.cfg.FlushWhenIdle
	s.update(func(*Status) { s.disp = d })
	d.onAhead = func(collector, last uint64) {
		// The collector holds sequences this spool never assigned: the spool
		// was replaced by one seeded from a clock that runs behind. Nothing
		// here is lost by saying so; new records above its mark still flow.
		s.log.Error("collector is ahead of this spool: records numbered at or below its mark will be treated as duplicates there",
			"collector_seq", collector, "spool_last_seq", last)
	}
	defer s.update(func(st *Status) { st.State = StateDisabled })
	if s.cfg.Mode == uplink.ModeBalance {
		var wg sync.WaitGroup
		for i := range s.cfg.Endpoints {
			wg.Go(func() { s.runEndpoint(ctx, d, i) })
		}
		wg.Wait()
		return nil
	}
	s.runFailover(ctx, d)
	return nil
}

// runEndpoint keeps one endpoint's session up (balance mode).
func (s *Sender) runEndpoint(ctx context.Context, d *dispatcher, i int) {
	backoff := s.cfg.ReconnectMin
	for {
		before, start := s.acked(i), time.Now()
		connected, err := s.session(ctx, d, i)
		if ctx.Err() != nil {
			return
		}
		if s.acked(i) > before || time.Since(start) > s.cfg.ReconnectMax {
			backoff = s.cfg.ReconnectMin // the link worked; start over gently
		}
		wait := backoff
		if refusedDial(connected, err) {
			wait = s.cfg.ReconnectMin
		} else {
			backoff = min(2*backoff, s.cfg.ReconnectMax)
		}
		s.log.Warn("uplink session ended", "endpoint", s.cfg.Endpoints[i].Name(), "err", err, "retry_in", wait)
		if !s.pause(ctx, wait) {
			return
		}
	}
}

var errFailBack = errors.New("uplink: an earlier endpoint is healthy again: failing back")

// runFailover uses the first endpoint that works, probing the ones before
// it while it runs on a later one, and failing back when one answers.
func (s *Sender) runFailover(ctx context.Context, d *dispatcher) {
	backoff := s.cfg.ReconnectMin
	for {
		anyUp, refused := false, true
		for i := range s.cfg.Endpoints {
			sctx, cancel := context.WithCancelCause(ctx)
			var wg sync.WaitGroup
			if i > 0 {
				wg.Go(func() { s.probeEarlier(sctx, cancel, d, i) })
			}
			before, start := s.acked(i), time.Now()
			connected, err := s.session(sctx, d, i)
			failBack := errors.Is(context.Cause(sctx), errFailBack)
			cancel(nil)
			wg.Wait()
			if ctx.Err() != nil {
				return
			}
			if failBack {
				s.log.Info("uplink failing back", "from", s.cfg.Endpoints[i].Name())
				anyUp, backoff = true, s.cfg.ReconnectMin
				break
			}
			s.log.Warn("uplink session ended", "endpoint", s.cfg.Endpoints[i].Name(), "err", err)
			refused = refused && refusedDial(connected, err)
			if connected {
				// Start over from the first endpoint: at once if the session
				// carried records or lasted, else after a backoff, so a
				// collector that accepts and drops every session is not
				// hammered.
				anyUp = s.acked(i) > before || time.Since(start) > s.cfg.ReconnectMax
				if anyUp {
					backoff = s.cfg.ReconnectMin
				}
				break
			}
		}
		if anyUp {
			continue
		}
		if refused {
			// Every endpoint refused: retry at the shortest interval.
			if !s.pause(ctx, s.cfg.ReconnectMin) {
				return
			}
			continue
		}
		if !s.pause(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, s.cfg.ReconnectMax)
	}
}

// refusedDial reports whether a session failed at its dial because the
// collector's host said nothing listens there (TCP reset, ICMP port
// unreachable) or the gateway has no route to it. Such a failure is
// retried every reconnect_min rather than backed off: it cost the
// collector nothing (its kernel answered, or nothing reached it), and a
// collector being restarted is the commonest outage, so a gateway backed
// off to reconnect_max would sleep through its return for up to a minute.
// Failures that cost the collector work (handshakes refused or timed out,
// sessions dropped) back off as before, so a busy or refusing collector is
// not hammered.
func refusedDial(connected bool, err error) bool {
	return !connected && uplink.Classify(err) == uplink.ReasonRefused
}

// probeEarlier checks endpoints before i every probe interval and cancels
// the running session with errFailBack once one completes a handshake.
func (s *Sender) probeEarlier(ctx context.Context, cancel context.CancelCauseFunc, d *dispatcher, i int) {
	t := time.NewTicker(s.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for j := range i {
			if _, err := s.hello(ctx, d, j); err == nil {
				cancel(errFailBack)
				return
			}
		}
	}
}

// hello dials endpoint i and completes Hello/Welcome (a health probe).
func (s *Sender) hello(ctx context.Context, d *dispatcher, i int) (uint64, error) {
	link, br, welcome, err := s.open(ctx, d, i, nil)
	if err != nil {
		return 0, err
	}
	link.Close()
	_ = br
	s.eps[i].update(func(st *EndpointStatus) {
		st.Handshakes++
		if st.State != StateConnected {
			st.State = StateStandby
		}
	})
	return welcome.Highest, nil
}

// open dials endpoint i and completes the handshake and Hello/Welcome;
// failures are counted as handshake failures with their reason. first,
// if not nil, is called between sending Hello and awaiting Welcome.
func (s *Sender) open(ctx context.Context, d *dispatcher, i int, first func(*frameWriter) error) (Link, *bufio.Reader, *uplink.Welcome, error) {
	ep, es := s.cfg.Endpoints[i], s.eps[i]
	start := es.now()
	link, err := s.transports.dial(ctx, ep, s.id, s.cfg.ConnectTimeout)
	if err != nil && ctx.Err() != nil {
		return nil, nil, nil, err // stopped, not failed: the last real failure stays the one shown
	}
	if err != nil {
		err = s.explain(err)
		es.failed(err, true)
		return nil, nil, nil, err
	}
	end := es.now()
	es.handshook(end.Sub(start), end)
	welcome, br, err := s.greet(link, d.floor(), first)
	if err != nil {
		link.Close()
		err = s.explain(fmt.Errorf("uplink: %s: %w", ep.Name(), err))
		es.failed(err, true)
		return nil, nil, nil, err
	}
	return link, br, welcome, nil
}

func (s *Sender) greet(link Link, floor uint64, first func(*frameWriter) error) (*uplink.Welcome, *bufio.Reader, error) {
	br := bufio.NewReaderSize(link, 64<<10)
	w := frameWriter{conn: link, timeout: s.cfg.ConnectTimeout}
	hello := uplink.Hello{Version: uplink.ProtocolVersion, Gateway: s.gateway, BootID: s.bootID, Floor: floor,
		MaxRecords: uint64(s.cfg.BatchMaxRecords), MaxBytes: uint64(s.cfg.BatchMaxBytes)}
	if err := w.write(&hello); err != nil {
		return nil, nil, fmt.Errorf("send hello: %w", err)
	}
	if first != nil {
		if err := first(&w); err != nil {
			return nil, nil, err
		}
	}
	_ = link.SetReadDeadline(time.Now().Add(s.cfg.ConnectTimeout))
	m, err := readMessage(br, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("await welcome: %w", err)
	}
	_ = link.SetReadDeadline(time.Time{})
	welcome, ok := m.(*uplink.Welcome)
	if !ok {
		return nil, nil, fmt.Errorf("answered hello with %s, want welcome", msgName(m))
	}
	if welcome.Version >= 3 && (welcome.MaxRecords < 1 || welcome.MaxBytes < uplink.MinBatchBytes) {
		return nil, nil, fmt.Errorf("collector set batch limits of %d records, %d bytes: below the protocol's 1, %d",
			welcome.MaxRecords, welcome.MaxBytes, uplink.MinBatchBytes)
	}
	return welcome, br, nil
}

// limits are the batch limits of a session: the configured ones, lowered
// to what the collector set in its Welcome (a version 2 collector sets
// none).
func (s *Sender) limits(w *uplink.Welcome) (records, bytes int) {
	records, bytes = s.cfg.BatchMaxRecords, s.cfg.BatchMaxBytes
	if w.Version >= 3 {
		records = int(min(uint64(records), w.MaxRecords))
		bytes = int(min(uint64(bytes), w.MaxBytes))
	}
	return records, bytes
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
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

// explain refines a peer's bare "bad certificate" (pion's DTLS server
// sends no other alert; a TLS 1.3 client learns of a refusal only after its
// handshake) with what the gateway can find wrong with its own certificate.
func (s *Sender) explain(err error) error {
	if uplink.Classify(err) != uplink.ReasonBadCertificate {
		return err
	}
	if r, why := s.id.CheckOwn(time.Now()); r != uplink.ReasonNone && why != nil {
		return &uplink.ReasonError{Reason: r, Err: fmt.Errorf("%w (probably: %v)", err, why)}
	}
	return err
}

// acked is endpoint i's count of acknowledged batches' records.
func (s *Sender) acked(i int) uint64 {
	s.eps[i].mu.Lock()
	defer s.eps[i].mu.Unlock()
	return s.eps[i].st.RecordsAcked
}
