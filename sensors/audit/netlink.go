package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// netlinkKey is the spool checkpoint key of the netlink source.
const netlinkKey = checkpointPrefix + "netlink"

// Bounds of the queue between the goroutine reading the socket and the
// one grouping and emitting. A burst the queue cannot take waits up to
// maxQueueWait for room: the kernel waits meanwhile and its backlog takes
// the burst (beyond backlog_limit it counts records lost). Past that
// (the sink holds back: a full spool), messages are dropped and counted
// until the queue is half empty again, so the kernel never waits on
// Weir for long.
const (
	maxQueuedMessages = 16384
	maxQueuedBytes    = 8 << 20
	maxQueueWait      = time.Second
)

// finalEmitWait bounds the last Emit at shutdown, made after the run's
// context is done: the events read from the kernel are not read again.
const finalEmitWait = 5 * time.Second

// defaultStatusEvery is how often the kernel's audit status (its lost
// counter) is read.
const defaultStatusEvery = 5 * time.Second

// kernelStatus is what the run uses of the kernel's audit status.
type kernelStatus struct {
	Enabled, Failure, PID                  uint32
	RateLimit, BacklogLimit, Lost, Backlog uint32
	BacklogWaitTime                        uint32
}

// kernelStream is one session with the kernel's audit socket: the
// unicast socket Weir registered on, or the multicast group. It puts the
// datagrams it reads, in order, in the queue it was opened with, and
// closes the queue's channel once Stop has read what was left or reading
// failed (Err says why).
type kernelStream interface {
	// Mode is unicast or multicast.
	Mode() string
	// BootID names the kernel's boot, which its lost counter counts from.
	BootID() string
	Err() error
	// Status reads the kernel's audit status.
	Status() (kernelStatus, error)
	// Overflows counts the times the socket's buffer overflowed: the
	// kernel dropped the messages that did not fit (multicast only; in
	// unicast the kernel waits, then counts them lost).
	Overflows() uint64
	// Stop releases the kernel (unicast: Weir is no longer its audit
	// daemon), reads what it had sent, and closes the queue's channel.
	Stop()
	// Close frees the sockets (releasing the kernel if Stop did not).
	Close() error
}

// msgQueue is the bounded queue the socket reader fills.
type msgQueue struct {
	ch      chan []byte
	wait    time.Duration // maxQueueWait; tests make it short
	bytes   atomic.Int64
	dropped atomic.Uint64
	// shedding says a wait for room timed out: put drops until the queue
	// is half empty. Only the putting goroutine uses it.
	shedding bool
}

func newMsgQueue() *msgQueue {
	return &msgQueue{ch: make(chan []byte, maxQueuedMessages), wait: maxQueueWait}
}

// put queues b, waiting up to maxQueueWait for room, or drops it and
// counts it.
func (q *msgQueue) put(b []byte) bool {
	if q.bytes.Load()+int64(len(b)) > maxQueuedBytes {
		q.dropped.Add(1)
		return false
	}
	if q.shedding {
		if len(q.ch) > cap(q.ch)/2 {
			q.dropped.Add(1)
			return false
		}
		q.shedding = false
	}
	select {
	case q.ch <- b:
		q.bytes.Add(int64(len(b)))
		return true
	default:
	}
	t := time.NewTimer(q.wait)
	defer t.Stop()
	select {
	case q.ch <- b:
		q.bytes.Add(int64(len(b)))
		return true
	case <-t.C:
		q.shedding = true
		q.dropped.Add(1)
		return false
	}
}

// took accounts for b taken from the queue.
func (q *msgQueue) took(b []byte) { q.bytes.Add(-int64(len(b))) }

// lossPosition is the netlink source's checkpoint: the kernel's lost
// counter as last reported in a record, and the boot it counts from. A
// restart reports what the counter gained meanwhile; nothing else of a
// kernel stream can be resumed.
type lossPosition struct {
	BootID string `json:"boot_id"`
	Lost   uint32 `json:"lost"`
}

func parseLossPosition(b []byte) (lossPosition, error) {
	var p lossPosition
	if err := json.Unmarshal(b, &p); err != nil {
		return lossPosition{}, fmt.Errorf("checkpoint %q is not an audit netlink position: %w", b, err)
	}
	return p, nil
}

// nlRun is the state of one netlink session of Reader.Run; only its
// goroutine uses it.
type nlRun struct {
	rd     *Reader
	sink   Sink
	k      kernelStream
	q      *msgQueue
	g      *Grouper
	b      *builder
	bootID string

	line []byte // scratch for a record's line
	seq  int64  // messages fed: the Offset of their records, for the grouper

	ready      []Group
	batch      []event.Event
	batchBytes int

	// The loss already reported: the kernel's lost counter (known once
	// read), and the drops counted here.
	lostSeen              uint32
	lostKnown             bool
	droppedSeen, overSeen uint64
	statusErr             string // the last status error logged

	lastErr string
}

func newNLRun(rd *Reader, sink Sink, k kernelStream, q *msgQueue) *nlRun {
	b := newBuilder(rd.cfg.Name, rd.cfg.Raw == RawLines)
	b.netlink = k.Mode()
	return &nlRun{rd: rd, sink: sink, k: k, q: q, g: NewGrouper(rd.cfg.EventTimeout), b: b, bootID: k.BootID()}
}

// loop reads the session until ctx is done (nil) or reading fails (its
// error). Warnings found while the session was set up (rules the kernel
// refused...) are emitted first.
func (n *nlRun) loop(ctx context.Context, warnings []event.Event) error {
	k := n.k
	n.rd.update(func(s *Status) {
		s.State, s.Netlink.Mode = StateReading, k.Mode()
	})
	n.batch = append(n.batch, warnings...)
	n.checkStatus(ctx)
	tick := time.NewTicker(n.rd.cfg.PollInterval)
	defer tick.Stop()
	status := time.NewTicker(n.rd.statusEvery)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			n.shutdown(ctx)
			return nil
		case m, ok := <-n.q.ch:
			n.q.took(m)
			if !ok {
				n.flush(ctx)
				if err := k.Err(); err != nil {
					return err
				}
				return errors.New("audit: netlink: the socket stopped delivering")
			}
			if err := n.feed(m, time.Now()); err != nil {
				n.flush(ctx)
				return err
			}
			if !n.drain(ctx) {
				continue // ctx is done: the next round shuts down
			}
		case <-tick.C:
			n.g.Expire(time.Now())
			if n.drain(ctx) && len(n.batch) > 0 {
				n.emit(ctx)
			}
			n.publish()
		case <-status.C:
			n.checkStatus(ctx)
		}
	}
}

// feed turns one datagram into records for the grouper. An error ends
// the session: the kernel refused what the session asked of it.
func (n *nlRun) feed(b []byte, now time.Time) error {
	m, err := decodeNetlink(b)
	if err != nil {
		n.addRecord(Record{Line: fmt.Sprintf("%q", b), Err: err}, now)
		return nil
	}
	switch {
	case m.Type == nlmsgError:
		if err := m.errno(); err != nil {
			return fmt.Errorf("audit: netlink: the kernel refused request %d: %w", m.Seq, err)
		}
		return nil
	case !m.isRecord():
		return nil // a reply or probe: not a record
	}
	n.line = appendLine(n.line[:0], m)
	if max := n.rd.cfg.MaxLineBytes; len(n.line) > max {
		// As the file reader does with an overlong line: in pieces,
		// flagged, never dropped.
		for p := 0; p < len(n.line); p += max {
			n.addRecord(Record{Line: string(n.line[p:min(p+max, len(n.line))]), Err: errLineTooLong}, now)
		}
		return nil
	}
	rec, err := ParseLine(string(n.line))
	if err != nil {
		rec.Err = err
	}
	if m.Type == auditEOE && err == nil {
		n.seq++
		n.rd.update(func(s *Status) { s.Records++ })
		n.g.End(rec)
		return nil
	}
	n.addRecord(rec, now)
	return nil
}

func (n *nlRun) addRecord(rec Record, now time.Time) {
	n.seq++
	rec.Offset = n.seq
	if rec.Err != nil {
		msg := fmt.Sprintf("audit: netlink message %d: %v", n.seq, rec.Err)
		n.rd.log.Debug("malformed record; emitted as it is, flagged parse_error", "err", msg)
		n.rd.update(func(s *Status) { s.ParseErrors++; s.LastParseError = msg })
	}
	n.rd.update(func(s *Status) { s.Records++ })
	n.g.Add(rec, now)
}

// drain builds the records of the completed events and emits each full
// batch. false means ctx is done.
func (n *nlRun) drain(ctx context.Context) bool {
	n.ready = append(n.ready, n.g.Take()...)
	for len(n.ready) > 0 {
		ev := n.b.event(n.ready[0])
		n.ready[0] = Group{}
		n.ready = n.ready[1:]
		n.batch = append(n.batch, ev)
		n.batchBytes += eventBytes(&ev)
		if len(n.batch) >= n.rd.batchEvents || n.batchBytes >= maxBatchBytes {
			if !n.emit(ctx) {
				return false
			}
		}
	}
	n.ready = n.ready[:0]
	return true
}

// checkpoint is the position the next Emit commits.
func (n *nlRun) checkpoint() []spool.Checkpoint {
	b, _ := json.Marshal(lossPosition{BootID: n.bootID, Lost: n.lostSeen}) // cannot fail
	return []spool.Checkpoint{{Source: netlinkKey, Position: b}}
}

// emit hands the batch to the sink, retrying until it takes it or ctx
// is done (false). The socket is read meanwhile, into the bounded queue.
func (n *nlRun) emit(ctx context.Context) bool {
	for failures := 1; ; failures++ {
		err := n.sink.Emit(ctx, n.batch, n.checkpoint())
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		n.fail(fmt.Errorf("audit: emit %d events read from the kernel: %w", len(n.batch), err))
		if !sleep(ctx, retryWait(n.rd.cfg.PollInterval, failures)) {
			return false
		}
	}
	n.emitted()
	return true
}

func (n *nlRun) emitted() {
	c := len(n.batch)
	clear(n.batch)
	n.batch, n.batchBytes = n.batch[:0], 0
	n.rd.update(func(s *Status) { s.Events += uint64(c) })
}

// flush emits what is read once more, not bound to ctx: after the
// session ends, nothing read from the kernel can be read again.
func (n *nlRun) flush(ctx context.Context) {
	n.g.Flush()
	n.ready = append(n.ready, n.g.Take()...)
	for _, grp := range n.ready {
		n.batch = append(n.batch, n.b.event(grp))
	}
	clear(n.ready)
	n.ready = n.ready[:0]
	if len(n.batch) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalEmitWait)
	defer cancel()
	// One batch may exceed a spool append now; emit in pieces.
	all := n.batch
	for len(all) > 0 {
		part := all[:min(len(all), n.rd.batchEvents)]
		if err := n.sink.Emit(fctx, part, n.checkpoint()); err != nil {
			n.rd.update(func(s *Status) { s.Lost += uint64(len(all)) })
			n.fail(fmt.Errorf("audit: emit at shutdown failed; %d events read from the kernel are lost: %w", len(all), err))
			break
		}
		n.rd.update(func(s *Status) { s.Events += uint64(len(part)) })
		all = all[len(part):]
	}
	clear(n.batch)
	n.batch, n.batchBytes = n.batch[:0], 0
}

// shutdown releases the kernel first, so that what it emits from then on
// waits in its own queue (or goes to its log) rather than into a socket
// nobody reads; then takes what was read and emits it.
func (n *nlRun) shutdown(ctx context.Context) {
	// Stop waits for the reader, which may wait for room in the queue.
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		n.k.Stop()
	}()
	for b := range n.q.ch {
		n.q.took(b)
		if err := n.feed(b, time.Now()); err != nil {
			n.rd.log.Warn("audit: netlink at shutdown", "err", err)
		}
	}
	<-stopped
	n.flush(ctx)
}

// checkStatus reads the kernel's audit status into Status and emits a
// warning record when records were lost since the last look: by the
// kernel (its lost counter: backlog full, rate limit, no memory), by the
// queue here, or by the socket's buffer.
func (n *nlRun) checkStatus(ctx context.Context) {
	queueFull, overflows := n.q.dropped.Load(), n.k.Overflows()
	st, err := n.k.Status()
	if err != nil {
		if msg := err.Error(); msg != n.statusErr {
			n.statusErr = msg
			n.rd.log.Warn("kernel audit status unreadable; its lost counter is not followed", "err", msg)
		}
	} else {
		n.statusErr = ""
		if !n.lostKnown {
			n.lostSeen, n.lostKnown = n.lostBaseline(st.Lost), true
		}
	}
	n.rd.update(func(s *Status) {
		s.Netlink.Dropped, s.Netlink.Overflows = queueFull, overflows
		s.Netlink.StatusError = n.statusErr
		if err == nil {
			s.Netlink.Enabled, s.Netlink.DaemonPID = st.Enabled, st.PID
			s.Netlink.KernelLost, s.Netlink.Backlog = uint64(st.Lost), st.Backlog
			s.Netlink.BacklogLimit, s.Netlink.RateLimit, s.Netlink.BacklogWaitTime = st.BacklogLimit, st.RateLimit, st.BacklogWaitTime
		}
	})
	var lost uint32
	if err == nil {
		if st.Lost < n.lostSeen {
			// Reset (auditctl --reset-lost) or wrapped: counted from 0.
			n.lostSeen = 0
		}
		lost = st.Lost - n.lostSeen
	}
	dq, do := queueFull-n.droppedSeen, overflows-n.overSeen
	if lost == 0 && dq == 0 && do == 0 {
		return
	}
	n.batch = append(n.batch, n.lossRecord(st, lost, dq, do))
	if err == nil {
		n.lostSeen = st.Lost
	}
	n.droppedSeen, n.overSeen = queueFull, overflows
	n.emit(ctx)
}

// lostBaseline is the lost count already reported: the checkpoint's, if
// it is of this boot and not above the kernel's (a reset); else the
// kernel's now (first run, or a new boot: what was lost before is not
// told apart from what is older).
func (n *nlRun) lostBaseline(now uint32) uint32 {
	b, err := n.rd.cps.Checkpoint(netlinkKey)
	if err != nil || len(b) == 0 {
		return now
	}
	p, err := parseLossPosition(b)
	if err != nil {
		n.rd.log.Warn("unreadable netlink checkpoint; the kernel's lost counter is taken as it is now", "err", err)
		return now
	}
	if p.BootID == "" || p.BootID != n.bootID || p.Lost > now {
		return now
	}
	return p.Lost
}

// lossRecord is the warning that records were lost.
func (n *nlRun) lossRecord(st kernelStatus, lost uint32, queueFull, overflows uint64) event.Event {
	var parts []string
	if lost > 0 {
		parts = append(parts, fmt.Sprintf("the kernel lost %d (its lost counter is %d; backlog limit %d, rate limit %d)", lost, st.Lost, st.BacklogLimit, st.RateLimit))
	}
	if queueFull > 0 {
		parts = append(parts, fmt.Sprintf("Weir dropped %d messages its queue had no room for within a second (the spool held back, or they came faster than they were processed)", queueFull))
	}
	if overflows > 0 {
		parts = append(parts, fmt.Sprintf("the socket's buffer overflowed %d times (the kernel dropped what did not fit)", overflows))
	}
	fields := []event.Field{
		event.Str("netlink", n.b.netlink),
		event.Uint("lost", uint64(lost)),
		event.Uint("dropped", queueFull),
		event.Uint("socket_overflows", overflows),
	}
	if n.lostKnown {
		fields = append(fields, event.Uint("kernel_lost", uint64(st.Lost)), event.Uint("backlog", uint64(st.Backlog)),
			event.Uint("backlog_limit", uint64(st.BacklogLimit)), event.Uint("rate_limit", uint64(st.RateLimit)))
	}
	return event.Event{
		Source: n.rd.cfg.Name, Kind: event.KindAudit, Severity: event.SevWarning, Priority: event.PriorityCritical,
		Message: "audit records lost: " + strings.Join(parts, "; "),
		Fields:  fields,
	}
}

// warning is a record telling of a setting the session could not apply.
func warning(name, mode, msg string) event.Event {
	return event.Event{
		Source: name, Kind: event.KindAudit, Severity: event.SevWarning, Priority: event.PriorityCritical,
		Message: msg, Fields: []event.Field{event.Str("netlink", mode)},
	}
}

func (n *nlRun) publish() {
	n.rd.update(func(s *Status) { s.Pending = n.g.Pending() })
}

// fail shows err in Status and logs it unless it repeats the last one.
func (n *nlRun) fail(err error) {
	msg := err.Error()
	repeat := msg == n.lastErr
	n.lastErr = msg
	n.rd.update(func(s *Status) {
		s.LastError = msg
		if !repeat {
			s.Errors++
		}
	})
	if !repeat {
		n.rd.log.Warn("audit netlink input", "err", msg)
	}
}

// resolveMode decides the mode of a session: mode as configured, the
// kernel's audit status (nil when it could not be read: statusErr),
// Weir's own pid and how to tell a live process. In auto, a live audit
// daemon other than Weir means multicast beside it; else unicast. note
// says why auto chose as it did.
func resolveMode(mode string, st *kernelStatus, statusErr error, self uint32, alive func(uint32) bool) (chosen, note string, err error) {
	daemon := st != nil && st.PID != 0 && st.PID != self && alive(st.PID)
	switch mode {
	case ModeMulticast:
		return ModeMulticast, "", nil
	case ModeUnicast:
		if st == nil {
			return "", "", fmt.Errorf("audit: netlink unicast: read the kernel's audit status (needs CAP_AUDIT_CONTROL, in the initial pid namespace): %w", statusErr)
		}
		if daemon {
			return "", "", fmt.Errorf("audit: netlink unicast: the audit daemon pid %d holds the kernel's audit socket; not replacing it (use mode multicast or auto beside it, or stop it)", st.PID)
		}
		return ModeUnicast, "", nil
	}
	switch {
	case st == nil:
		return ModeMulticast, fmt.Sprintf("the kernel's audit status is unreadable (%v)", statusErr), nil
	case daemon:
		return ModeMulticast, fmt.Sprintf("the audit daemon pid %d holds the kernel's audit socket", st.PID), nil
	}
	return ModeUnicast, "no audit daemon holds the kernel's audit socket", nil
}
