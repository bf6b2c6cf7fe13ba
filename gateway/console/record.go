package console

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/weirgw/weir/event"
)

// Source is the source of every console audit record.
const Source = "weir:console"

// Action is what a console audit record tells of.
type Action string

// Actions.
const (
	ActionLogin        Action = "login"         // a good login
	ActionLoginFailed  Action = "login_failed"  // a wrong name or password
	ActionLockout      Action = "lockout"       // too many failures: locked
	ActionLoginRefused Action = "login_refused" // an attempt while locked, not checked
	ActionCommand      Action = "command"       // a line typed in a session
	ActionLogout       Action = "logout"        // a session's end, and why
	ActionLost         Action = "lost"          // records the outbox could not keep
)

// Unknown stands for a login name that is not the configured one: what
// was typed at "login:" is not recorded, since it is often a password
// typed one prompt too early (login(1) does the same).
const Unknown = "UNKNOWN"

// Bounds on a record's text, checked by Check.
const (
	MaxUserLen    = maxUserLen
	MaxTTYLen     = 128
	MaxCommandLen = 512
	MaxOutcomeLen = 256
)

// Record is one console audit record as the console hands it to the
// gateway (POST /v1/audit on the admin socket). The gateway stamps and
// spools it as an event of kind audit from Source (Event).
type Record struct {
	// ID is random, so the head-end can tell a record sent again (its
	// answer lost) from one repeated.
	ID string `json:"id"`
	// Time is when the console saw it: the record's observed time.
	Time    time.Time `json:"time"`
	Action  Action    `json:"action"`
	User    string    `json:"user,omitempty"`
	TTY     string    `json:"tty"`
	Command string    `json:"command,omitempty"`
	// Outcome: for a command, refused or ok; for a logout, why (exit,
	// idle, hangup); for a lockout, how long.
	Outcome string `json:"outcome,omitempty"`
	// Failures in a row so far (login_failed, lockout, login_refused), or
	// the records lost (lost).
	Count int `json:"count,omitempty"`
}

// NewRecord makes a record with a fresh ID.
func NewRecord(now time.Time, action Action, tty, user string) Record {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return Record{ID: hex.EncodeToString(b[:]), Time: now, Action: action, TTY: tty, User: user}
}

// Check says what is wrong with a record from outside.
func (r *Record) Check() error {
	if len(r.ID) != 32 {
		return errors.New("id: want 32 hex digits")
	}
	if _, err := hex.DecodeString(r.ID); err != nil {
		return errors.New("id: want 32 hex digits")
	}
	if r.Time.IsZero() {
		return errors.New("time: missing")
	}
	if _, ok := actions[r.Action]; !ok {
		return fmt.Errorf("action: %q is not one of login, login_failed, lockout, login_refused, command, logout, lost", r.Action)
	}
	if r.User != "" && r.User != Unknown {
		if err := checkUser(r.User); err != nil {
			return fmt.Errorf("user: %w", err)
		}
	}
	for _, f := range []struct {
		key, v string
		max    int
	}{{"tty", r.TTY, MaxTTYLen}, {"command", r.Command, MaxCommandLen}, {"outcome", r.Outcome, MaxOutcomeLen}} {
		if len(f.v) > f.max {
			return fmt.Errorf("%s: longer than %d bytes", f.key, f.max)
		}
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%s: not UTF-8", f.key)
		}
	}
	if r.TTY == "" {
		return errors.New("tty: missing")
	}
	if r.Count < 0 || r.Count > 1<<30 {
		return fmt.Errorf("count: %d out of range", r.Count)
	}
	return nil
}

// actions gives each action's severity and priority: failed logins and
// lockouts are critical (a full spool evicts other records before them).
var actions = map[Action]struct {
	sev event.Severity
	pri event.Priority
}{
	ActionLogin:        {event.SevNotice, event.PriorityNormal},
	ActionLoginFailed:  {event.SevWarning, event.PriorityCritical},
	ActionLockout:      {event.SevAlert, event.PriorityCritical},
	ActionLoginRefused: {event.SevWarning, event.PriorityCritical},
	ActionCommand:      {event.SevInfo, event.PriorityNormal},
	ActionLogout:       {event.SevNotice, event.PriorityNormal},
	ActionLost:         {event.SevAlert, event.PriorityCritical},
}

// Event is the record as the gateway spools it; r must have passed Check.
func (r *Record) Event() event.Event {
	a := actions[r.Action]
	ev := event.Event{
		Source: Source, Kind: event.KindAudit, Severity: a.sev, Priority: a.pri,
		Observed: r.Time.UnixNano(), Message: r.message(),
		Fields: []event.Field{
			event.Str("action", string(r.Action)), event.Str("tty", r.TTY), event.Str("id", r.ID),
		},
	}
	if r.User != "" {
		ev.Fields = append(ev.Fields, event.Str("user", r.User))
	}
	if r.Command != "" {
		ev.Fields = append(ev.Fields, event.Str("command", r.Command))
	}
	if r.Outcome != "" {
		ev.Fields = append(ev.Fields, event.Str("outcome", r.Outcome))
	}
	if r.Count != 0 {
		ev.Fields = append(ev.Fields, event.Int("count", int64(r.Count)))
	}
	return ev
}

func (r *Record) message() string {
	switch r.Action {
	case ActionLogin:
		return fmt.Sprintf("console %s: %s logged in", r.TTY, r.User)
	case ActionLoginFailed:
		return fmt.Sprintf("console %s: failed login as %s (%d in a row)", r.TTY, r.User, r.Count)
	case ActionLockout:
		return fmt.Sprintf("console %s: locked after %d failed logins (%s)", r.TTY, r.Count, r.Outcome)
	case ActionLoginRefused:
		return fmt.Sprintf("console %s: login as %s refused unchecked: locked", r.TTY, r.User)
	case ActionCommand:
		return fmt.Sprintf("console %s: %s ran %q (%s)", r.TTY, r.User, r.Command, r.Outcome)
	case ActionLogout:
		return fmt.Sprintf("console %s: %s logged out (%s)", r.TTY, r.User, r.Outcome)
	case ActionLost:
		return fmt.Sprintf("console %s: %d audit records lost while the gateway could not take them", r.TTY, r.Count)
	}
	return "console " + r.TTY
}
