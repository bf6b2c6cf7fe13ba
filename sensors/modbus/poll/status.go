package poll

import (
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/modbus"
)

// Status is what `weir sensors` shows: every bus and device.
type Status struct {
	Buses []BusStatus `json:"buses"`
	At    time.Time   `json:"at"`
}

// BusStatus is one line.
type BusStatus struct {
	Name     string   `json:"name"`
	Type     BusType  `json:"type"`
	Line     string   `json:"line"`
	State    string   `json:"state"` // opening, open, down, closed
	Error    string   `json:"error,omitempty"`
	Counters Counters `json:"counters"`
	// FrameErrorRate1m and 15m are frame errors per attempt.
	FrameErrorRate1m      float64 `json:"frame_error_rate_1m"`
	FrameErrorRate15m     float64 `json:"frame_error_rate_15m"`
	DiagnosticsSuppressed uint64  `json:"diagnostics_suppressed"`
	// LiveReadsRefused counts live reads over live_reads_per_minute.
	LiveReadsRefused uint64 `json:"live_reads_refused,omitempty"`
	// Master is the line's master's own counters since the line was last
	// opened (wrong unit and wrong function apart, TCP reconnects).
	Master  modbus.Stats   `json:"master"`
	Devices []DeviceStatus `json:"devices"`
}

// DeviceStatus is one device.
type DeviceStatus struct {
	Name              string    `json:"name"`
	Unit              int       `json:"unit"`
	Interval          string    `json:"interval"`
	State             string    `json:"state"` // waiting, ok, failing, dead
	LastPoll          time.Time `json:"last_poll,omitzero"`
	LastOK            time.Time `json:"last_ok,omitzero"`
	NextPoll          time.Time `json:"next_poll,omitzero"`
	Backoff           string    `json:"backoff,omitempty"`
	LastVerdict       string    `json:"last_verdict,omitempty"`
	LastError         string    `json:"last_error,omitempty"`
	RoundTrip         string    `json:"round_trip,omitempty"`
	Requests          int       `json:"requests_per_poll"`
	Values            []Value   `json:"values,omitempty"`
	Counters          Counters  `json:"counters"`
	FrameErrorRate1m  float64   `json:"frame_error_rate_1m"`
	FrameErrorRate15m float64   `json:"frame_error_rate_15m"`
}

// Value is one decoded field of the last good poll.
type Value struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
	Text  string `json:"text"`
	Unit  string `json:"unit,omitempty"`
}

func values(d *device, fields []event.Field) []Value {
	units := map[string]string{}
	for _, r := range d.cfg.Registers {
		units[r.Name] = r.Unit
	}
	out := make([]Value, 0, len(fields))
	for _, f := range fields {
		v := Value{Name: f.Key, Text: f.Value.String(), Unit: units[f.Key]}
		switch f.Value.Type {
		case event.TypeInt:
			v.Value = f.Value.Int()
		case event.TypeUint:
			v.Value = f.Value.Num
		case event.TypeFloat:
			v.Value = f.Value.Float()
		case event.TypeBool:
			v.Value = f.Value.Bool()
		default:
			v.Value = v.Text
		}
		out = append(out, v)
	}
	return out
}

// Status takes a snapshot.
func (p *Poller) Status() Status {
	st := Status{At: time.Now()}
	for _, b := range p.buses {
		now := b.sched.Now()
		b.mu.Lock()
		bs := BusStatus{Name: b.cfg.Name, Type: b.cfg.Type, Line: b.line(), State: b.state, Error: b.lastErr,
			Counters: b.counters, FrameErrorRate1m: b.window.rate(now, time.Minute),
			FrameErrorRate15m: b.window.rate(now, 15*time.Minute), DiagnosticsSuppressed: b.diag.total,
			LiveReadsRefused: b.live.total}
		if b.master != nil {
			bs.Master = b.master.Stats()
		}
		for _, d := range b.devices {
			ds := DeviceStatus{Name: d.cfg.Name, Unit: d.cfg.Unit, Interval: d.cfg.Interval.String(),
				LastPoll: d.lastPoll, LastOK: d.lastOK, LastVerdict: d.lastVerdict, LastError: d.lastErr,
				Requests: len(d.plan), Counters: d.counters,
				FrameErrorRate1m: d.window.rate(now, time.Minute), FrameErrorRate15m: d.window.rate(now, 15*time.Minute)}
			var vals []event.Field
			for _, g := range d.groups {
				vals = append(vals, g.values...)
				if b.state == "open" && (ds.NextPoll.IsZero() || g.next.Before(ds.NextPoll)) {
					ds.NextPoll = g.next
				}
			}
			ds.Values = values(d, vals)
			switch {
			case d.lastPoll.IsZero():
				ds.State = "waiting"
			case d.consecutive >= d.cfg.DeadAfter:
				ds.State, ds.Backoff = "dead", d.backoff.String()
			case d.lastErr != "":
				ds.State = "failing"
			default:
				ds.State = "ok"
			}
			if d.lastRTT > 0 {
				ds.RoundTrip = d.lastRTT.String()
			}
			bs.Devices = append(bs.Devices, ds)
		}
		b.mu.Unlock()
		st.Buses = append(st.Buses, bs)
	}
	return st
}
