package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/spool"
)

// telemetryLoop emits the spool's figures as a telemetry record every
// interval (and one record per Modbus bus with its EMI accounting, and
// the audit input's kernel side when it reads netlink), so the head-end
// sees backlog, evictions and refusals even when nobody scrapes the
// gateway. A report that includes records evicted or expired since the
// last one is critical: it tells of data lost. It takes a new interval
// in place (a Reloader of telemetry_interval), the figures of its last
// report kept.
type telemetryLoop struct {
	g     *Gateway
	mu    sync.Mutex
	every time.Duration
	reset chan struct{} // a new interval to take
}

func newTelemetryLoop(g *Gateway, every time.Duration) *telemetryLoop {
	return &telemetryLoop{g: g, every: every, reset: make(chan struct{}, 1)}
}

func (l *telemetryLoop) interval() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.every
}

// CheckReload takes any interval Validate let through.
func (l *telemetryLoop) CheckReload(time.Duration) error { return nil }

// Reload sets the interval; the next report is due one interval after
// it.
func (l *telemetryLoop) Reload(_ context.Context, d time.Duration) error {
	l.mu.Lock()
	l.every = d
	l.mu.Unlock()
	select {
	case l.reset <- struct{}{}:
	default:
	}
	return nil
}

func (l *telemetryLoop) run(ctx context.Context) error {
	g := l.g
	t := time.NewTicker(l.interval())
	defer t.Stop()
	var last spool.Stats
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.reset:
			t.Reset(l.interval())
			continue
		case <-t.C:
		}
		st := g.spool.Stats()
		p := g.now()
		evs := append([]event.Event{spoolTelemetry(st, last), clockTelemetry(g.clock.Status())}, p.modbusTelemetry()...)
		if p.audit != nil {
			evs = append(evs, p.audit.Telemetry()...)
		}
		if ev, ok := processorTelemetry(g.procs.Load().status()); ok {
			evs = append(evs, ev)
		}
		if err := g.Emit(ctx, evs, nil); err != nil && ctx.Err() == nil {
			g.log.Warn("telemetry record not spooled", "err", err)
			continue
		}
		last = st
	}
}

// clockTelemetry is the clock's state at each report: its offset and bound
// between the records of its transitions (clockTransition), which alone
// leave the head-end's plots of a locked clock empty for hours. It has no
// from and to: it reports, it does not announce a change.
func clockTelemetry(st ptp.Status) event.Event {
	ev := event.Event{
		Source: "weir:clock", Kind: event.KindTelemetry, Severity: event.SevInfo, Priority: event.PriorityNormal,
		Message: "clock " + st.State,
		Fields: []event.Field{
			event.Str("state", st.State), event.Str("mode", string(st.Mode)),
			event.Int("error_bound_ns", st.ErrorBoundNS), event.Int("offset_ns", st.OffsetNS),
			event.Int("path_delay_ns", st.PathDelayNS),
		},
	}
	if st.Grandmaster != "" {
		ev.Fields = append(ev.Fields, event.Str("grandmaster", st.Grandmaster))
	}
	return ev
}

func spoolTelemetry(st, last spool.Stats) event.Event {
	ev := event.Event{
		Source: "weir:spool", Kind: event.KindTelemetry, Severity: event.SevInfo, Priority: event.PriorityNormal,
		Message: "spool",
		Fields: []event.Field{
			event.Int("backlog_records", st.Records), event.Int("backlog_bytes", st.Bytes),
			event.Int("used_bytes", st.Used), event.Int("max_bytes", st.MaxBytes),
			event.Int("disk_bytes", st.DiskBytes), event.Uint("commits", st.Commits), event.Uint("appended", st.Appended),
			event.Int("disk_free_bytes", st.Disk.Free), event.Int("budget_bytes", st.Disk.Budget),
			event.Bool("intake_held", st.Disk.Held != ""), event.Uint("quarantined", st.Quarantined),
		},
	}
	if st.MaxBytes > 0 {
		// The backlog's share of max_bytes, for the rules (spool_pressure).
		ev.Fields = append(ev.Fields, event.Float("fill", float64(st.Used)/float64(st.MaxBytes)))
	}
	if !st.Oldest.IsZero() {
		ev.Fields = append(ev.Fields, event.Float("oldest_unacked_seconds", time.Since(st.Oldest).Seconds()))
	}
	for c, cs := range st.Classes {
		name := spool.Class(c).String()
		ev.Fields = append(ev.Fields,
			event.Int(name+"_evicted", cs.Evicted), event.Int(name+"_expired", cs.Expired), event.Int(name+"_refused", cs.Refused))
		if cs.Evicted > last.Classes[c].Evicted || cs.Expired > last.Classes[c].Expired {
			ev.Priority, ev.Severity = event.PriorityCritical, event.SevWarning
			ev.Message = "spool: unacknowledged records were evicted or expired"
		}
	}
	return ev
}
