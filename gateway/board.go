package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/sensors/serialport"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink/sender"
)

// openBoard opens the board section's hardware; a nil section is no
// board.
func (g *Gateway) openBoard() error {
	if g.cfg.Board == nil {
		return nil
	}
	b, err := board.Open(*g.cfg.Board, g.log.With("part", "board"))
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.board.Store(b)
	return nil
}

// Board returns the board, nil without one (or before Run opened it).
func (g *Gateway) Board() *board.Board { return g.board.Load() }

// driverEnable is the board's RS-485 driver-enable pin for the serial
// line device, nil when the board has none for it. Typed as the port's
// interface here, so a missing pin is a nil interface, not a nil pointer
// in one.
func (g *Gateway) driverEnable(device string) serialport.DriverEnable {
	b := g.Board()
	if b == nil {
		return nil
	}
	if de := b.DriverEnable(); de != nil && de.Device() == device {
		return de
	}
	return nil
}

// ledPoll is how often the LEDs are brought up to date with the state
// they show.
const ledPoll = 250 * time.Millisecond

// holdAfter: a record unacknowledged this long is held, not in transit,
// and lights the spool LED.
const holdAfter = 5 * time.Second

// runBoard drives the board: its LEDs from the gateway's state, and a
// critical record for each opening and closing of the enclosure.
func (g *Gateway) runBoard(ctx context.Context) error {
	b := g.Board()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Run(ctx, func(ev board.TamperEvent) { g.tamperRecord(ctx, ev) })
	}()
	t := time.NewTicker(ledPoll)
	defer t.Stop()
	var refused int64
	var refusedAt time.Time
	for {
		in := g.ledInputs(time.Now())
		// A normal or critical record waiting for room: the spool is full.
		if n := in.spool.Classes[spool.ClassNormal].Refused + in.spool.Classes[spool.ClassCritical].Refused; n > refused {
			refused, refusedAt = n, in.now
		}
		in.refusedAt = refusedAt
		for i, s := range ledStates(in) {
			b.SetLED(board.LED(i), s.pattern, s.why)
		}
		select {
		case <-ctx.Done():
			<-done
			return nil
		case <-t.C:
		}
	}
}

// tamperRecord spools the record of an opening or closing. Critical
// records evict others from a full spool, so this waits only on a spool
// that cannot write; it tries again until the gateway stops, since an
// opening must not go unreported.
func (g *Gateway) tamperRecord(ctx context.Context, tev board.TamperEvent) {
	state, msg := "closed", "tamper: enclosure closed"
	if tev.Open {
		state, msg = "open", "tamper: enclosure opened"
		if tev.AtStart {
			msg = "tamper: enclosure open at start"
		}
	}
	g.log.Warn(msg, "pin", tev.Pin, "openings", tev.Openings, "closings", tev.Closings)
	for {
		ev := event.Event{Source: "weir:board", Kind: event.KindAlert, Severity: event.SevCritical,
			Priority: event.PriorityCritical, Message: msg,
			Fields: []event.Field{event.Str("state", state), event.Str("pin", tev.Pin),
				event.Bool("at_start", tev.AtStart), event.Uint("openings", tev.Openings), event.Uint("closings", tev.Closings),
				event.Int("settled_unix_ns", tev.At.UnixNano())}}
		err := g.Emit(ctx, []event.Event{ev}, nil)
		if err == nil || ctx.Err() != nil {
			return
		}
		g.log.Error("tamper record not spooled; trying again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// ledInputs is what the LEDs show, gathered at one instant.
type ledInputs struct {
	now        time.Time
	ready      bool
	health     Health
	link       sender.Status
	spool      spool.Stats
	refusedAt  time.Time // when a normal or critical record last had to wait for room
	tamperOpen bool
	alertAt    time.Time // of the last alert or critical record
	alertMsg   string
	// alertPattern: the pattern the alert's level asks for (rules.actions);
	// nil, fast: other alerts and critical records.
	alertPattern *board.Pattern
	alertHold    time.Duration
	clock        ptp.Status
}

func (g *Gateway) ledInputs(now time.Time) ledInputs {
	in := ledInputs{now: now, ready: g.ready.Load(), health: g.health.snapshot(), link: g.now().sender.Status(),
		spool: g.spool.Stats(), clock: g.clock.Status(), alertHold: board.DefaultAlertHold}
	if g.cfg.Board != nil {
		in.alertHold = g.cfg.Board.Effective().LEDs.AlertHold
	}
	if b := g.Board(); b != nil {
		in.tamperOpen = b.TamperOpen()
	}
	if a := g.lastAlert.Load(); a != nil {
		in.alertAt, in.alertMsg, in.alertPattern = a.at, a.msg, a.pattern
	}
	return in
}

type ledState struct {
	pattern board.Pattern
	why     string
}

// ledStates decides each LED's pattern, indexed by board.LED:
//
//	power: on running; slow starting; fast when the health check fails
//	       (the watchdog is no longer kicked)
//	link:  on connected; slow degraded (an endpoint down, loss over 5 %
//	       in the last minute, a certificate near expiry); fast down;
//	       off with no uplink configured
//	spool: off empty or in transit; on holding records (oldest unacked
//	       over 5 s); slow filling (90 %: bulk sources wait); fast full
//	       (a normal record waited for room in the last 5 s; critical
//	       records evict) or not writable
//	alert: fast while the enclosure is open or for leds.alert_hold after
//	       an alert or critical record; slow while the clock is in
//	       holdover or freerun (PTP modes); off otherwise
func ledStates(in ledInputs) [4]ledState {
	var s [4]ledState
	switch {
	case !in.ready:
		s[board.LEDPower] = ledState{board.Slow, "starting"}
	case !in.health.OK:
		why := "unhealthy"
		if len(in.health.Problems) > 0 {
			why += ": " + in.health.Problems[0]
		}
		s[board.LEDPower] = ledState{board.Fast, why}
	default:
		s[board.LEDPower] = ledState{board.On, "running"}
	}

	l := in.link
	switch {
	case l.State == sender.StateDisabled:
		s[board.LEDLink] = ledState{board.Off, "no uplink configured"}
	case l.State != sender.StateConnected:
		why := "down"
		if l.LastError != "" {
			why += ": " + string(l.LastReason)
		}
		s[board.LEDLink] = ledState{board.Fast, why}
	default:
		s[board.LEDLink] = ledState{board.On, "connected " + l.Endpoint}
		for _, e := range l.Endpoints {
			switch {
			case !e.OutageSince.IsZero():
				s[board.LEDLink] = ledState{board.Slow, "degraded: " + e.Endpoint + " down"}
			case e.Active && e.Loss1m >= 0.05:
				s[board.LEDLink] = ledState{board.Slow, fmt.Sprintf("degraded: %.0f%% loss to %s", 100*e.Loss1m, e.Endpoint)}
			}
		}
		if l.CertWarning != "" {
			s[board.LEDLink] = ledState{board.Slow, "degraded: " + l.CertWarning}
		}
	}

	sp := in.spool
	switch {
	case in.health.SpoolProblem != "":
		s[board.LEDSpool] = ledState{board.Fast, in.health.SpoolProblem}
	case sp.MaxBytes > 0 && (sp.Used >= sp.MaxBytes || !in.refusedAt.IsZero() && in.now.Sub(in.refusedAt) < holdAfter):
		s[board.LEDSpool] = ledState{board.Fast, "full: normal sources wait, critical records evict"}
	case sp.MaxBytes > 0 && sp.Used >= sp.MaxBytes/10*9:
		s[board.LEDSpool] = ledState{board.Slow, "filling: bulk sources wait"}
	case sp.Records > 0 && !sp.Oldest.IsZero() && in.now.Sub(sp.Oldest) > holdAfter:
		s[board.LEDSpool] = ledState{board.On, fmt.Sprintf("holding %d records", sp.Records)}
	default:
		s[board.LEDSpool] = ledState{board.Off, "empty"}
	}

	switch {
	case in.tamperOpen:
		s[board.LEDAlert] = ledState{board.Fast, "enclosure open"}
	case !in.alertAt.IsZero() && in.now.Sub(in.alertAt) < in.alertHold:
		p := board.Fast
		if in.alertPattern != nil {
			p = *in.alertPattern
		}
		s[board.LEDAlert] = ledState{p, "alert: " + in.alertMsg}
	case in.clock.Mode != ptp.ModeSystem && (in.clock.State == "holdover" || in.clock.State == "freerun"):
		s[board.LEDAlert] = ledState{board.Slow, "clock in " + in.clock.State}
	default:
		s[board.LEDAlert] = ledState{board.Off, ""}
	}
	return s
}

// alertMark is the last alert or critical record spooled, and the LED
// pattern it asks for.
type alertMark struct {
	at      time.Time
	msg     string
	pattern *board.Pattern // nil: fast
}

// noteAlerts remembers the last alert or critical record of a batch, for
// the alert LED. The rules' alerts are left to their level's action
// (Gateway.act).
func (g *Gateway) noteAlerts(evs []event.Event) {
	for i := len(evs) - 1; i >= 0; i-- {
		if e := &evs[i]; e.Source != rules.AlertSource && (e.Kind == event.KindAlert || e.Severity <= event.SevCritical) {
			g.lastAlert.Store(&alertMark{at: time.Now(), msg: e.Message})
			return
		}
	}
}
