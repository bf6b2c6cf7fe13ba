package audit

import (
	"fmt"

	"github.com/weirgw/weir/event"
)

// Telemetry is the record the gateway spools every telemetry interval:
// for source netlink, the kernel's side (its lost counter, the backlog)
// and what was dropped on the way, so the head-end sees loss even when
// nobody scrapes the gateway. The file source has none.
func (rd *Reader) Telemetry() []event.Event {
	if rd.cfg.Source != SourceNetlink {
		return nil
	}
	st := rd.Status()
	n := st.Netlink
	ev := event.Event{
		Source: rd.cfg.Name, Kind: event.KindTelemetry, Severity: event.SevInfo, Priority: event.PriorityNormal,
		Message: fmt.Sprintf("audit netlink %s %s: kernel lost %d, backlog %d of %d", n.Mode, st.State, n.KernelLost, n.Backlog, n.BacklogLimit),
		Fields: []event.Field{
			event.Str("netlink", n.Mode), event.Str("state", st.State), event.Uint("events", st.Events),
			event.Uint("kernel_lost", n.KernelLost), event.Uint("backlog", uint64(n.Backlog)),
			event.Uint("backlog_limit", uint64(n.BacklogLimit)), event.Uint("rate_limit", uint64(n.RateLimit)),
			event.Uint("dropped", n.Dropped), event.Uint("socket_overflows", n.Overflows),
			event.Uint("enabled", uint64(n.Enabled)), event.Uint("daemon_pid", uint64(n.DaemonPID)),
			event.Uint("errors", st.Errors),
		},
	}
	if n.StatusError != "" {
		ev.Fields = append(ev.Fields, event.Str("status_error", n.StatusError))
	}
	return []event.Event{ev}
}
