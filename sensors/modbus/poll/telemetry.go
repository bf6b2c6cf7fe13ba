package poll

import (
	"fmt"

	"github.com/weirgw/weir/event"
)

// Telemetry makes one record per bus with its EMI accounting and each
// device's, for the head-end to see checksum errors, timeouts and
// frame-error rates without scraping the gateway. A bus with frame errors
// in the last minute, or a dead device, makes a warning.
func (p *Poller) Telemetry() []event.Event {
	st := p.Status()
	evs := make([]event.Event, 0, len(st.Buses))
	for _, b := range st.Buses {
		ev := event.Event{Source: "modbus:" + b.Name, Kind: event.KindTelemetry, Severity: event.SevInfo,
			Priority: event.PriorityNormal, Message: fmt.Sprintf("modbus bus %s (%s) %s", b.Name, b.Line, b.State)}
		ev.Fields = append(ev.Fields, event.Str("bus", b.Name), event.Str("line", b.Line), event.Str("state", b.State))
		ev.Fields = appendCounters(ev.Fields, "", b.Counters, b.FrameErrorRate1m, b.FrameErrorRate15m)
		ev.Fields = append(ev.Fields, event.Uint("diagnostics_suppressed", b.DiagnosticsSuppressed))
		if b.FrameErrorRate1m > 0 || b.State == "down" {
			ev.Severity = event.SevWarning
		}
		for _, d := range b.Devices {
			pre := d.Name + "."
			ev.Fields = append(ev.Fields, event.Str(pre+"state", d.State))
			ev.Fields = appendCounters(ev.Fields, pre, d.Counters, d.FrameErrorRate1m, d.FrameErrorRate15m)
			if d.State == "dead" {
				ev.Severity = event.SevWarning
			}
		}
		evs = append(evs, ev)
	}
	return evs
}

func appendCounters(f []event.Field, pre string, c Counters, fer1, fer15 float64) []event.Field {
	return append(f,
		event.Uint(pre+"polls", c.Polls), event.Uint(pre+"polls_failed", c.PollsFailed),
		event.Uint(pre+"attempts", c.Attempts), event.Uint(pre+"retries", c.Retries),
		event.Uint(pre+"timeouts", c.Timeouts), event.Uint(pre+"exceptions", c.Exceptions),
		event.Uint(pre+"crc_errors", c.CRCErrors), event.Uint(pre+"short_frames", c.ShortFrames),
		event.Uint(pre+"overlong_frames", c.OverlongFrames), event.Uint(pre+"other_frame_errors", c.OtherFrames),
		event.Float(pre+"frame_error_rate_1m", fer1), event.Float(pre+"frame_error_rate_15m", fer15))
}
