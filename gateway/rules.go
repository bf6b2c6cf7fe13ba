package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/rules/action"
)

// validateRuleLEDs checks the actions' LED patterns, which the board
// reads.
func validateRuleLEDs(c rules.Config) []error {
	var errs []error
	for _, l := range rules.Levels() {
		a := c.Actions.For(l)
		if a.LED == "" {
			continue
		}
		var p board.Pattern
		if err := p.UnmarshalText([]byte(a.LED)); err != nil {
			errs = append(errs, fmt.Errorf("rules.actions.%s.led: %q is not off, on, slow or fast", strings.ToLower(l.String()), a.LED))
		}
	}
	return errs
}

// ruleTick is how often sustained and absent rules are judged against the
// clock.
const ruleTick = time.Second

// actionSlots bounds the alert commands running at once.
const actionSlots = 4

// ReloadRules takes a new rules section: unchanged rules keep their
// windows (SIGHUP, remote configuration). An invalid section changes
// nothing.
func (g *Gateway) ReloadRules(c rules.Config) (rules.Changes, error) {
	if errs := validateRuleLEDs(c); len(errs) > 0 {
		return rules.Changes{}, errs[0]
	}
	ch, err := g.rules.Load(c)
	if err != nil {
		return ch, err
	}
	actions := c.Actions
	g.ruleActions.Store(&actions)
	g.log.Info("rules loaded", "kept", len(ch.Kept), "reset", ch.Reset, "added", ch.Added, "removed", ch.Removed,
		"correlation_reset", ch.Correlation)
	return ch, nil
}

// rulesReloader takes the rules section on a reload in place, so
// windows, cooldowns and groups of the rules that did not change go on.
type rulesReloader struct{ g *Gateway }

func (r rulesReloader) CheckReload(c rules.Config) error {
	if errs := validateRuleLEDs(c); len(errs) > 0 {
		return errs[0]
	}
	return rules.Check(c)
}

func (r rulesReloader) Reload(_ context.Context, c rules.Config) error {
	_, err := r.g.ReloadRules(c)
	return err
}

// runRules ticks the rules engine: sustained conditions and silences fire
// on time passing.
func (g *Gateway) runRules(ctx context.Context) error {
	t := time.NewTicker(ruleTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			g.actions.Wait()
			return nil
		case <-t.C:
		}
		if alerts := g.rules.Tick(); len(alerts) > 0 {
			g.raise(ctx, alerts)
		}
	}
}

// raise spools alerts (critical records, never evaluated by the rules
// again) and runs each one's local actions. An alert not spooled is
// logged: the rules' state has moved on and will not raise it again.
func (g *Gateway) raise(ctx context.Context, alerts []event.Event) {
	first, err := g.spoolEvents(ctx, alerts, nil)
	if err != nil {
		if ctx.Err() == nil {
			for _, a := range alerts {
				g.log.Error("alert not spooled", "alert", a.Message, "err", err)
			}
		}
		return
	}
	for i := range alerts {
		a := &alerts[i]
		a.Seq = first + uint64(i)
		g.log.Warn("alert", "seq", a.Seq, "message", a.Message)
		g.act(ctx, a)
	}
}

// act runs the local actions of an alert's level: the alert LED, and the
// command with the alert as JSON on its standard input.
func (g *Gateway) act(ctx context.Context, a *event.Event) {
	var level rules.Level
	for _, f := range a.Fields {
		if f.Key == "level" {
			level, _ = rules.ParseLevel(f.Value.Str)
		}
	}
	var ac rules.ActionConfig
	if m := g.ruleActions.Load(); m != nil {
		ac = m.For(level)
	}
	mark := &alertMark{at: time.Now(), msg: a.Message}
	if ac.LED != "" {
		var p board.Pattern
		if p.UnmarshalText([]byte(ac.LED)) == nil {
			mark.pattern = &p
		}
	}
	// An alert whose level names no LED lights it as any alert record
	// does, from NOTIFY up.
	if level >= rules.LevelNotify || ac.LED != "" {
		g.lastAlert.Store(mark)
	}
	if len(ac.Command) == 0 {
		return
	}
	in, err := json.Marshal(a)
	if err != nil {
		g.log.Error("alert command: encoding the alert", "err", err)
		return
	}
	env := []string{"WEIR_ALERT_LEVEL=" + level.String(), fmt.Sprintf("WEIR_ALERT_SEQ=%d", a.Seq)}
	g.actions.Run(ctx, action.Job{Name: strings.ToLower(level.String()), Argv: ac.Command, Timeout: ac.Timeout,
		Stdin: append(in, '\n'), Env: env})
}

// Alerts is what `weir alerts` shows.
func (g *Gateway) Alerts() rules.Status { return g.rules.Status() }

// FetchAlerts asks the gateway listening on socket for its rules' state.
func FetchAlerts(ctx context.Context, socket string) (*rules.Status, error) {
	var st rules.Status
	if err := get(ctx, socket, "/v1/alerts", &st); err != nil {
		return nil, err
	}
	return &st, nil
}
