package poll

import (
	"fmt"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/modbus"
)

// excState is the exception a planned request of a group is answered
// with, from poll to poll.
type excState struct {
	code  modbus.ExceptionCode // 0: none
	since time.Time            // stamp of the record that said it started
	polls uint64               // polls it has lasted
}

// exceptions appends a record for each request of g whose exception
// started, changed or cleared in poll r, and remembers the state: an
// exception that persists makes one record when it starts and one when it
// clears, not one a poll. Called with b.mu held, only for a poll that
// heard from every request (a failed poll changes nothing).
func (b *Bus) exceptions(evs []event.Event, d *device, g *group, r pollResult) []event.Event {
	refused := map[int]refusal{}
	for _, x := range r.refused {
		refused[x.plan] = x
	}
	for i := range g.plan {
		st := &g.exc[i]
		x, isRefused := refused[i]
		switch {
		case isRefused && st.code == x.ex.Code:
			st.polls++
		case isRefused:
			ev := b.exceptionRecord(d, g.plan[i], x)
			*st = excState{code: x.ex.Code, since: time.Unix(0, ev.Time), polls: 1}
			b.log.Warn("modbus request refused", "device", d.cfg.Name, "unit", d.cfg.Unit,
				"request", g.plan[i].req.String(), "exception", x.ex.Name())
			evs = append(evs, ev)
		case st.code != 0:
			evs = append(evs, b.clearedRecord(d, g.plan[i], *st, r))
			b.log.Info("modbus request answered again", "device", d.cfg.Name, "unit", d.cfg.Unit,
				"request", g.plan[i].req.String(), "exception", st.code.String(), "polls", st.polls)
			*st = excState{}
		}
	}
	return evs
}

// registerNames lists the register map entries a request carries.
func registerNames(d *device, p planned) string {
	names := make([]string, len(p.items))
	for i, it := range p.items {
		names[i] = d.cfg.Registers[it.reg].Name
	}
	return strings.Join(names, ",")
}

// checksum is the verdict on a bus's frames that passed every check.
func (b *Bus) checksum() event.Checksum {
	if b.cfg.Type == BusTCP {
		return event.ChecksumNone // Modbus TCP has no checksum of its own
	}
	return event.ChecksumOK
}

// exceptionRecord is the reading of a request's registers that the device
// refused: no values, the quality flag "exception" and the exception's
// name, stamped like a reading at the midpoint of the refused request.
func (b *Bus) exceptionRecord(d *device, p planned, x refusal) event.Event {
	half := x.recv.Sub(x.sent) / 2
	ts, q := b.stamp(x.sent.Add(half))
	if q.ErrorBound >= 0 {
		q.ErrorBound += int64(half)
	}
	req := p.req.String()
	return event.Event{Time: ts, Quality: q, Source: "modbus:" + d.cfg.Name, Kind: event.KindReading,
		Severity: event.SevWarning, Priority: d.priority, Checksum: b.checksum(),
		Message: fmt.Sprintf("%s: %s: exception 0x%02X %s", d.cfg.Name, req, byte(x.ex.Code), x.ex.Name()),
		Fields: []event.Field{
			event.Str("device", d.cfg.Name), event.Str("bus", b.cfg.Name), event.Uint("unit", uint64(d.cfg.Unit)),
			event.Str("quality", "exception"), event.Str("exception", x.ex.Name()),
			event.Uint("exception_code", uint64(x.ex.Code)), event.Str("request", req),
			event.Str("registers", registerNames(d, p)), event.Int("uncertainty_ns", int64(half)),
		}}
}

// clearedRecord says a request refused with an exception is answered with
// data again; its values are in the poll's reading.
func (b *Bus) clearedRecord(d *device, p planned, st excState, r pollResult) event.Event {
	half := r.recv.Sub(r.sent) / 2
	ts, q := b.stamp(r.sent.Add(half))
	req := p.req.String()
	return event.Event{Time: ts, Quality: q, Source: "modbus:" + d.cfg.Name, Kind: event.KindReading,
		Severity: event.SevInfo, Priority: d.priority, Checksum: b.checksum(),
		Message: fmt.Sprintf("%s: %s: answered again after exception 0x%02X %s (%d polls)", d.cfg.Name, req, byte(st.code), st.code, st.polls),
		Fields: []event.Field{
			event.Str("device", d.cfg.Name), event.Str("bus", b.cfg.Name), event.Uint("unit", uint64(d.cfg.Unit)),
			event.Str("quality", "ok"), event.Str("cleared", st.code.String()),
			event.Uint("exception_code", uint64(st.code)), event.Str("request", req),
			event.Str("registers", registerNames(d, p)), event.Int("exception_since", st.since.UnixNano()),
			event.Uint("exception_polls", st.polls),
		}}
}
