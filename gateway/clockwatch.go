package gateway

import (
	"context"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/ptp"
)

// clockPoll is how often the clock's state is looked at. Holdover ends in
// freerun by the passage of time alone (the clock evaluates it when read),
// so the state is polled rather than pushed.
const clockPoll = 250 * time.Millisecond

// runClockWatch spools a telemetry record each time the clock's state
// changes (and one at start), so the head-end learns when record times
// stopped or started being trustworthy from the record stream itself.
func (g *Gateway) runClockWatch(ctx context.Context) error {
	t := time.NewTicker(clockPoll)
	defer t.Stop()
	var prev ptp.Status
	for {
		cur := g.clock.Status()
		if ev, ok := clockTransition(prev, cur); ok {
			if err := g.Emit(ctx, []event.Event{ev}, nil); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				g.log.Warn("clock state record not spooled", "err", err)
			} else {
				g.log.Info("clock state", "from", prev.State, "to", cur.State, "mode", cur.Mode, "grandmaster", cur.Grandmaster)
				prev = cur
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// clockTransition is the record for a change of state from prev to cur.
// Losing lock is a warning: records from then on carry a growing bound.
func clockTransition(prev, cur ptp.Status) (event.Event, bool) {
	if cur.State == prev.State {
		return event.Event{}, false
	}
	from := prev.State
	if from == "" {
		from = "start"
	}
	ev := event.Event{
		Source: "weir:clock", Kind: event.KindTelemetry, Severity: event.SevInfo, Priority: event.PriorityNormal,
		Message: "clock " + from + " → " + cur.State,
		Fields: []event.Field{
			event.Str("from", from), event.Str("to", cur.State), event.Str("mode", string(cur.Mode)),
			event.Int("error_bound_ns", cur.ErrorBoundNS), event.Int("offset_ns", cur.OffsetNS),
			event.Int("path_delay_ns", cur.PathDelayNS),
		},
	}
	if cur.Grandmaster != "" {
		ev.Fields = append(ev.Fields, event.Str("grandmaster", cur.Grandmaster))
	}
	if cur.Error != "" {
		ev.Fields = append(ev.Fields, event.Str("error", cur.Error))
	}
	if prev.State == "locked" {
		ev.Severity = event.SevWarning
	}
	return ev, true
}
