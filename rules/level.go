package rules

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/weirgw/weir/event"
)

// Level is how loud an alert is, in order.
type Level uint8

const (
	LevelNone     Level = iota // no alert: the rule only names an event type (for correlation, and weir alerts)
	LevelLog                   // recorded, nothing more
	LevelNotify                // someone should look today
	LevelPage                  // someone should look now
	LevelEscalate              // a page that was not enough
	LevelCritical              // the site may be under attack or damaged
	levelCount
)

var levelNames = [...]string{"NONE", "LOG", "NOTIFY", "PAGE", "ESCALATE", "CRITICAL"}

func (l Level) String() string {
	if l < levelCount {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a level's name, in any case, or its value 0..5.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ParseLevel reads a level's name, in any case, or its value 0..5.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if strings.EqualFold(n, s) {
			return Level(i), nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < int(levelCount) {
		return Level(n), nil
	}
	return 0, fmt.Errorf("%q is not a level (NONE, LOG, NOTIFY, PAGE, ESCALATE, CRITICAL)", s)
}

// Levels lists every level that raises an alert, quietest first.
func Levels() []Level { return []Level{LevelLog, LevelNotify, LevelPage, LevelEscalate, LevelCritical} }

// raise is l raised by n levels, CRITICAL at most.
func (l Level) raise(n int) Level {
	return Level(min(int(l)+n, int(LevelCritical)))
}

// severity is the syslog severity an alert of level l carries, so that a
// SIEM that knows only severities ranks alerts right.
func (l Level) severity() event.Severity {
	switch l {
	case LevelCritical:
		return event.SevAlert
	case LevelEscalate:
		return event.SevCritical
	case LevelPage:
		return event.SevError
	case LevelNotify:
		return event.SevWarning
	}
	return event.SevNotice
}
