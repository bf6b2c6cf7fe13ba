package gateway

import (
	"context"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// runTelemetry emits the spool's figures as a telemetry record every
// interval (and one record per Modbus bus with its EMI accounting, and
// the audit input's kernel side when it reads netlink), so the head-end sees backlog, evictions and refusals even when
// nobody scrapes the gateway. A report that includes records evicted or
// expired since the last one is critical: it tells of data lost.
func (g *Gateway) runTelemetry(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last spool.Stats
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st := g.spool.Stats()
		evs := append([]event.Event{spoolTelemetry(st, last)}, g.modbus.Telemetry()...)
		if g.audit != nil {
			evs = append(evs, g.audit.Telemetry()...)
		}
		if err := g.Emit(ctx, evs, nil); err != nil && ctx.Err() == nil {
			g.log.Warn("telemetry record not spooled", "err", err)
			continue
		}
		last = st
	}
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
