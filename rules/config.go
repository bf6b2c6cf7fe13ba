package rules

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/match"
)

// Rule types.
const (
	TypeCount     = "count"     // count (or weight) of matching records within a window
	TypeRate      = "rate"      // ratio of two counters' increase within a window
	TypeSustained = "sustained" // a condition holding for a duration
	TypeAbsent    = "absent"    // no matching record for a duration
)

// Config is the rules section.
type Config struct {
	// Enabled: records are evaluated against the rules. Off, nothing is
	// evaluated and no alert is raised.
	Enabled bool `mapstructure:"enabled" yaml:"enabled"`
	// Builtin keeps the built-in rules (Builtin()); a rule of Rules with a
	// built-in's name replaces it (disabled: true turns it off).
	Builtin bool         `mapstructure:"builtin" yaml:"builtin"`
	Rules   []RuleConfig `mapstructure:"rules" yaml:"rules"`
	// Correlation: patterns across the records rules match.
	Correlation CorrelationConfig `mapstructure:"correlation" yaml:"correlation"`
	// Actions: what the gateway does locally when it raises an alert of
	// each level.
	Actions ActionsConfig `mapstructure:"actions" yaml:"actions"`
	// MaxGroups bounds the groups (group_by values, correlation sources)
	// each rule and pattern tracks; the least recently seen is forgotten.
	MaxGroups int `mapstructure:"max_groups" yaml:"max_groups"`
}

// RuleConfig is one rule.
type RuleConfig struct {
	Name string `mapstructure:"name" yaml:"name"`
	// Description says why the rule exists; weir alerts shows it and its
	// alerts carry it.
	Description string `mapstructure:"description" yaml:"description"`
	Disabled    bool   `mapstructure:"disabled" yaml:"disabled"`
	// Type: count (default), rate, sustained or absent.
	Type string `mapstructure:"type" yaml:"type"`
	// Match: the records the rule looks at (its event type).
	Match match.Spec `mapstructure:"match" yaml:"match"`
	// GroupBy: each distinct value keeps a window of its own: source,
	// host, or a field's key (first present wins, joined when several).
	GroupBy []string `mapstructure:"group_by" yaml:"group_by"`
	Level   Level    `mapstructure:"level" yaml:"level"`
	// Window: count and rate look this far back from the newest record.
	Window time.Duration `mapstructure:"window" yaml:"window"`
	// Cooldown: no second alert of the rule (per group) sooner; 0: the
	// window.
	Cooldown time.Duration `mapstructure:"cooldown" yaml:"cooldown"`

	// Count: records (or weight) within the window that raise an alert.
	Count float64 `mapstructure:"count" yaml:"count"`
	// Weight: a numeric field each record counts by instead of 1 (a
	// report of "dropped 30" counts 30).
	Weight string `mapstructure:"weight" yaml:"weight"`
	// Escalation: an alert following another within the window after
	// the cooldown needs count × escalation^n records and is raised n
	// levels. 0: every alert at level, needing count.
	Escalation float64 `mapstructure:"escalation" yaml:"escalation"`

	// Rate: for type rate.
	Rate RateConfig `mapstructure:"rate" yaml:"rate"`

	// When: for type sustained, the condition on each matching record;
	// For: how long it must hold (sustained), or how long no record may
	// come (absent).
	When match.Spec    `mapstructure:"when" yaml:"when"`
	For  time.Duration `mapstructure:"for" yaml:"for"`

	// Correlate: the rule's records feed the correlation patterns.
	Correlate bool `mapstructure:"correlate" yaml:"correlate"`
}

// RateConfig is a rate rule's counters: cumulative fields of the matching
// records (counters that only grow, such as a bus's attempts and frame
// errors), whose increase over the window is compared.
type RateConfig struct {
	// Errors over Total, each the sum of the named fields.
	Errors []string `mapstructure:"errors" yaml:"errors"`
	Total  []string `mapstructure:"total" yaml:"total"`
	// Above: the ratio that raises an alert (0.01: 1 %).
	Above float64 `mapstructure:"above" yaml:"above"`
	// MinTotal: a window with less increase of Total says nothing.
	MinTotal float64 `mapstructure:"min_total" yaml:"min_total"`
}

// CorrelationConfig configures the patterns.
type CorrelationConfig struct {
	// Window: a correlation covers this long from its first record.
	Window       time.Duration      `mapstructure:"window" yaml:"window"`
	SourceAttack SourceAttackConfig `mapstructure:"source_attack" yaml:"source_attack"`
	Distributed  DistributedConfig  `mapstructure:"distributed" yaml:"distributed"`
	Escalating   EscalatingConfig   `mapstructure:"escalating" yaml:"escalating"`
}

// SourceAttackConfig: several high or critical records from one source.
type SourceAttackConfig struct {
	Enabled bool `mapstructure:"enabled" yaml:"enabled"`
	// SeverityAtLeast: what counts as high (err: err, crit, alert, emerg).
	SeverityAtLeast string `mapstructure:"severity_at_least" yaml:"severity_at_least"`
	Events          int    `mapstructure:"events" yaml:"events"`
	Level           Level  `mapstructure:"level" yaml:"level"`
}

// DistributedConfig: one rule's records from several devices, buses or
// hosts at once.
type DistributedConfig struct {
	Enabled bool `mapstructure:"enabled" yaml:"enabled"`
	// By: what tells devices apart, the first present of: a field's key,
	// or host, or source.
	By   []string `mapstructure:"by" yaml:"by"`
	Keys int      `mapstructure:"keys" yaml:"keys"`
	// Level: at least this, or the rule's own level if higher.
	Level Level `mapstructure:"level" yaml:"level"`
}

// EscalatingConfig: rising severities from one source.
type EscalatingConfig struct {
	Enabled         bool   `mapstructure:"enabled" yaml:"enabled"`
	SeverityAtLeast string `mapstructure:"severity_at_least" yaml:"severity_at_least"`
	// Steps severities, each more severe than the one before, among
	// Within records of one source.
	Steps  int   `mapstructure:"steps" yaml:"steps"`
	Within int   `mapstructure:"within" yaml:"within"`
	Level  Level `mapstructure:"level" yaml:"level"`
}

// ActionsConfig is the local actions of each level.
type ActionsConfig struct {
	Log      ActionConfig `mapstructure:"log" yaml:"log"`
	Notify   ActionConfig `mapstructure:"notify" yaml:"notify"`
	Page     ActionConfig `mapstructure:"page" yaml:"page"`
	Escalate ActionConfig `mapstructure:"escalate" yaml:"escalate"`
	Critical ActionConfig `mapstructure:"critical" yaml:"critical"`
}

// For returns level l's actions (none for NONE).
func (a ActionsConfig) For(l Level) ActionConfig {
	switch l {
	case LevelLog:
		return a.Log
	case LevelNotify:
		return a.Notify
	case LevelPage:
		return a.Page
	case LevelEscalate:
		return a.Escalate
	case LevelCritical:
		return a.Critical
	}
	return ActionConfig{}
}

// ActionConfig is what the gateway does for an alert of one level.
type ActionConfig struct {
	// LED: the board's alert LED pattern (off, on, slow, fast) for the
	// board's leds.alert_hold; empty: the board's own choice.
	LED string `mapstructure:"led" yaml:"led"`
	// Command: a program and its arguments, run with the alert record as
	// JSON on its standard input; never through a shell.
	Command []string `mapstructure:"command" yaml:"command"`
	// Timeout: the command is killed after this long.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
}

// DefaultConfig is the rules section's defaults: on, with the built-in
// rules and every pattern.
func DefaultConfig() Config {
	return Config{
		Enabled: true, Builtin: true, MaxGroups: 1024,
		Correlation: CorrelationConfig{
			Window:       5 * time.Minute,
			SourceAttack: SourceAttackConfig{Enabled: true, SeverityAtLeast: "err", Events: 5, Level: LevelPage},
			Distributed:  DistributedConfig{Enabled: true, By: []string{"device", "bus", "host"}, Keys: 3, Level: LevelNotify},
			Escalating:   EscalatingConfig{Enabled: true, SeverityAtLeast: "warning", Steps: 3, Within: 10, Level: LevelPage},
		},
		Actions: ActionsConfig{
			Log:      ActionConfig{Timeout: DefaultActionTimeout},
			Notify:   ActionConfig{LED: "slow", Timeout: DefaultActionTimeout},
			Page:     ActionConfig{LED: "fast", Timeout: DefaultActionTimeout},
			Escalate: ActionConfig{LED: "fast", Timeout: DefaultActionTimeout},
			Critical: ActionConfig{LED: "fast", Timeout: DefaultActionTimeout},
		},
	}
}

// DefaultActionTimeout bounds an action's command.
const DefaultActionTimeout = 10 * time.Second

// DefaultRule is what a configured rule starts from: the keys it omits.
func DefaultRule() RuleConfig {
	return RuleConfig{Type: TypeCount, Level: LevelNotify, Window: 5 * time.Minute, Count: 1, Escalation: 2, Correlate: true}
}

// Effective is the rule list in force: the built-ins (when Builtin is
// set) with the configured rules replacing those of the same name, then
// the other configured rules, less the disabled.
func (c Config) Effective() []RuleConfig {
	var out []RuleConfig
	given := map[string]bool{}
	for _, r := range c.Rules {
		given[r.Name] = true
	}
	if c.Builtin {
		for _, r := range Builtin() {
			if !given[r.Name] {
				out = append(out, r)
			}
		}
	}
	for _, r := range c.Rules {
		if !r.Disabled {
			out = append(out, r)
		}
	}
	return out
}

// Validate checks the section without I/O; errors name the key
// ("rules[2].match.kind[0]: ...").
func (c Config) Validate() error {
	var errs []error
	add := func(key string, err error) {
		for _, e := range flatten(err) {
			errs = append(errs, fmt.Errorf("%s.%w", key, e))
		}
	}
	if c.MaxGroups < 1 {
		errs = append(errs, fmt.Errorf("max_groups: %d is below 1", c.MaxGroups))
	}
	names := map[string]int{}
	for i, r := range c.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		if j, dup := names[r.Name]; dup && r.Name != "" {
			errs = append(errs, fmt.Errorf("%s.name: %q is already the name of rules[%d]", key, r.Name, j))
		}
		names[r.Name] = i
		if r.Disabled {
			if r.Name == "" {
				errs = append(errs, fmt.Errorf("%s.name: a disabled rule names the rule it turns off", key))
			}
			continue
		}
		add(key, r.Validate())
	}
	add("correlation", c.Correlation.Validate())
	for _, l := range Levels() {
		add("actions."+strings.ToLower(l.String()), c.Actions.For(l).Validate())
	}
	return errors.Join(errs...)
}

// Validate checks one rule.
func (r RuleConfig) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	switch {
	case r.Name == "":
		bad("name", "every rule needs a name (its alerts and weir alerts use it)")
	case len(r.Name) > 64 || event.CheckSourceName(r.Name) != nil:
		bad("name", "%q may hold only letters, digits, '.', '_' and '-' (at most 64)", r.Name)
	}
	if r.Level >= levelCount {
		bad("level", "%s is not a level", r.Level)
	}
	if _, err := match.Compile(r.Match); err != nil {
		for _, e := range flatten(err) {
			errs = append(errs, fmt.Errorf("match.%w", e))
		}
	}
	for i, g := range r.GroupBy {
		if g == "" {
			bad(fmt.Sprintf("group_by[%d]", i), "empty key")
		}
	}
	if r.Cooldown < 0 {
		bad("cooldown", "%s is negative", r.Cooldown)
	}
	switch r.Type {
	case TypeCount:
		if r.Window <= 0 {
			bad("window", "%s: a count needs a window", r.Window)
		}
		if r.Count <= 0 {
			bad("count", "%g: at least one record must count", r.Count)
		}
		if r.Escalation != 0 && r.Escalation < 1 {
			bad("escalation", "%g: a multiplier below 1 would need fewer records for a louder alert (0 turns escalation off)", r.Escalation)
		}
	case TypeRate:
		if r.Window <= 0 {
			bad("window", "%s: a rate needs a window", r.Window)
		}
		if len(r.Rate.Errors) == 0 {
			bad("rate.errors", "name the counter fields whose increase is compared")
		}
		if len(r.Rate.Total) == 0 {
			bad("rate.total", "name the counter fields it is compared with")
		}
		if r.Rate.Above <= 0 || r.Rate.Above >= 1 {
			bad("rate.above", "%g is not a ratio between 0 and 1", r.Rate.Above)
		}
		if r.Rate.MinTotal < 0 {
			bad("rate.min_total", "%g is negative", r.Rate.MinTotal)
		}
	case TypeSustained:
		if r.For < 0 {
			bad("for", "%s is negative", r.For)
		}
		if _, err := match.Compile(r.When); err != nil {
			for _, e := range flatten(err) {
				errs = append(errs, fmt.Errorf("when.%w", e))
			}
		}
	case TypeAbsent:
		if r.For <= 0 {
			bad("for", "%s: say how long a silence raises the alert", r.For)
		}
	default:
		bad("type", "%q is not count, rate, sustained or absent", r.Type)
	}
	return errors.Join(errs...)
}

// Validate checks the patterns.
func (c CorrelationConfig) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.Window <= 0 {
		bad("window", "%s is not a duration above 0", c.Window)
	}
	if p := c.SourceAttack; p.Enabled {
		if _, ok := match.ParseSeverity(p.SeverityAtLeast); !ok {
			bad("source_attack.severity_at_least", "%q is not a severity", p.SeverityAtLeast)
		}
		if p.Events < 2 {
			bad("source_attack.events", "%d: a pattern needs at least 2 records", p.Events)
		}
	}
	if p := c.Distributed; p.Enabled {
		if len(p.By) == 0 {
			bad("distributed.by", "name what tells devices apart (a field's key, host or source)")
		}
		if p.Keys < 2 {
			bad("distributed.keys", "%d: a pattern needs at least 2 devices", p.Keys)
		}
	}
	if p := c.Escalating; p.Enabled {
		if _, ok := match.ParseSeverity(p.SeverityAtLeast); !ok {
			bad("escalating.severity_at_least", "%q is not a severity", p.SeverityAtLeast)
		}
		if p.Steps < 2 {
			bad("escalating.steps", "%d: rising needs at least 2 severities", p.Steps)
		}
		if p.Within < p.Steps {
			bad("escalating.within", "%d is fewer records than the %d steps", p.Within, p.Steps)
		}
	}
	return errors.Join(errs...)
}

// Validate checks an action. A command is a program and its arguments,
// never a shell line: nothing of a record is ever put into it.
func (a ActionConfig) Validate() error {
	var errs []error
	if len(a.Command) > 0 {
		if a.Command[0] == "" {
			errs = append(errs, errors.New("command[0]: empty program"))
		} else if !strings.HasPrefix(a.Command[0], "/") {
			errs = append(errs, fmt.Errorf("command[0]: %q is not an absolute path (the gateway's PATH is not the shell's)", a.Command[0]))
		}
		if a.Timeout <= 0 {
			errs = append(errs, fmt.Errorf("timeout: %s: a command needs a time limit", a.Timeout))
		}
	}
	return errors.Join(errs...)
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
