package audit

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/elastic/go-libaudit/v2/rule"
	"github.com/elastic/go-libaudit/v2/rule/flags"

	"github.com/weirgw/weir/event"
)

// Sources: where the audit records come from.
const (
	SourceFile    = "file"    // auditd's log at Path
	SourceNetlink = "netlink" // the kernel's audit stream, no auditd needed
)

// Netlink modes.
const (
	// ModeUnicast makes Weir the audit daemon: the kernel sends it every
	// record, and it loads the rules and the backlog settings.
	ModeUnicast = "unicast"
	// ModeMulticast reads the kernel's read-only multicast group beside
	// whatever audit daemon runs (kernel 3.16 or later).
	ModeMulticast = "multicast"
	// ModeAuto is multicast when the kernel's audit status names a live
	// audit daemon, else unicast. It is decided at each start.
	ModeAuto = "auto"
)

// Start positions for a log that has no checkpoint yet.
const (
	StartAtBeginning = "beginning"
	StartAtEnd       = "end"
)

// Raw modes: whether a record carries its event's log lines.
const (
	RawLines = "lines" // field raw: the event's lines, as auditd wrote them
	RawNone  = "none"  // typed fields only
)

// Defaults, also used for zero values in a Config.
const (
	DefaultName         = "audit"
	DefaultPath         = "/var/log/audit/audit.log"
	DefaultPollInterval = 250 * time.Millisecond
	DefaultEventTimeout = 500 * time.Millisecond
	DefaultMaxLineBytes = 16 << 10

	// DefaultBacklogLimit is the kernel's queue of records not yet read
	// (its own default, 64, overflows in a burst; 8192 is what auditd's
	// shipped rules set).
	DefaultBacklogLimit = 8192
	// DefaultRateLimit 0: the kernel sends records without a limit.
	DefaultRateLimit = 0
	// DefaultBacklogWaitTime 0: when the backlog is full the kernel drops
	// the record and counts it lost rather than making the audited
	// process wait, so a slow reader never stalls the site's programs.
	DefaultBacklogWaitTime = 0
)

// Bounds of the kernel settings.
const (
	MaxBacklogLimit = 1 << 20
	MaxRateLimit    = 1_000_000
	// MaxBacklogWaitTime is the kernel's own bound at HZ=1000: ten times
	// its default of 60 s, in jiffies. At a lower HZ the kernel refuses
	// less, and says so when the setting is applied.
	MaxBacklogWaitTime = 600_000
)

// MaxMaxLineBytes bounds max_line_bytes: an event holds at most
// maxEventBytes of lines plus one, and a batch of events must fit one
// spool append (208 KiB). The kernel's records are under 9 KiB.
const MaxMaxLineBytes = 16 << 10

// Config is the audit log input. Zero values mean their defaults.
type Config struct {
	// Name is the record source, e.g. "audit".
	Name string `mapstructure:"name" yaml:"name"`
	// Path is auditd's log_file. auditd rotates it by renaming it to
	// Path.1 (Path.1 to Path.2, ...) and creating a new one.
	Path string `mapstructure:"path" yaml:"path"`
	// StartAt is "beginning" (default) or "end": where to start in a log
	// that has no checkpoint (the first run).
	StartAt string `mapstructure:"start_at" yaml:"start_at"`
	// PollInterval is how often the log is read.
	PollInterval time.Duration `mapstructure:"poll_interval" yaml:"poll_interval"`
	// EventTimeout ends an event no record was added to for this long
	// (auditd does not log the end-of-event record).
	EventTimeout time.Duration `mapstructure:"event_timeout" yaml:"event_timeout"`
	// MaxLineBytes bounds one line; a longer one is emitted in pieces of
	// this size, flagged parse_error and truncated, never dropped.
	MaxLineBytes int `mapstructure:"max_line_bytes" yaml:"max_line_bytes"`
	// Raw is "lines" (default: each record carries its event's lines in
	// the field raw) or "none".
	Raw string `mapstructure:"raw" yaml:"raw"`

	// Source is "file" (default: follow auditd's log at Path) or
	// "netlink" (read the kernel's audit stream; Path and StartAt do not
	// apply).
	Source string `mapstructure:"source" yaml:"source"`
	// Mode, for source netlink: "unicast", "multicast" or "auto"
	// (default).
	Mode string `mapstructure:"mode" yaml:"mode"`
	// Rules are audit rules in auditctl syntax ("-w /etc/shadow -p wa -k
	// shadow", "-a always,exit -F arch=b64 -S execve -k exec"). In
	// unicast they replace the kernel's rules when Weir starts; none
	// leaves the kernel's rules as they are. Refused with mode multicast.
	Rules []string `mapstructure:"rules" yaml:"rules"`
	// BacklogLimit, RateLimit and BacklogWaitTime are set in the kernel in
	// unicast (nil: DefaultBacklogLimit, DefaultRateLimit,
	// DefaultBacklogWaitTime). BacklogWaitTime is in the kernel's jiffies,
	// as auditctl --backlog_wait_time takes it. Refused with mode
	// multicast.
	BacklogLimit    *int `mapstructure:"backlog_limit" yaml:"backlog_limit"`
	RateLimit       *int `mapstructure:"rate_limit" yaml:"rate_limit"`
	BacklogWaitTime *int `mapstructure:"backlog_wait_time" yaml:"backlog_wait_time"`
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Name:         DefaultName,
		Path:         DefaultPath,
		StartAt:      StartAtBeginning,
		PollInterval: DefaultPollInterval,
		EventTimeout: DefaultEventTimeout,
		MaxLineBytes: DefaultMaxLineBytes,
		Raw:          RawLines,
		Source:       SourceFile,
		Mode:         ModeAuto,
		Rules:        []string{},
	}
}

// Validate checks c without I/O. Errors name the key; several are joined.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Name != "" {
		if err := event.CheckSourceName(c.Name); err != nil {
			add("name: %v", err)
		}
	}
	if c.Path != "" && (strings.HasSuffix(c.Path, "/") || filepath.Base(c.Path) == ".") {
		add("path: %q does not name a file", c.Path)
	}
	switch c.StartAt {
	case "", StartAtBeginning, StartAtEnd:
	default:
		add("start_at: %q is not beginning or end", c.StartAt)
	}
	if c.PollInterval < 0 || c.PollInterval > time.Minute {
		add("poll_interval: %s out of range 0..1m", c.PollInterval)
	}
	if c.EventTimeout < 0 || c.EventTimeout > time.Minute {
		add("event_timeout: %s out of range 0..1m", c.EventTimeout)
	}
	if c.MaxLineBytes < 0 || c.MaxLineBytes != 0 && c.MaxLineBytes < 256 || c.MaxLineBytes > MaxMaxLineBytes {
		add("max_line_bytes: %d out of range 256..%d", c.MaxLineBytes, MaxMaxLineBytes)
	}
	switch c.Raw {
	case "", RawLines, RawNone:
	default:
		add("raw: %q is not lines or none", c.Raw)
	}
	errs = append(errs, c.validateNetlink()...)
	return errors.Join(errs...)
}

// validateNetlink checks source, mode, rules and the kernel settings.
// Rules are parsed and built as the kernel will get them; a rule naming
// a user or group by name looks it up.
func (c Config) validateNetlink() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// The keys that configure the kernel, in the order they are named.
	set := []struct {
		key string
		on  bool
	}{
		{"rules", len(c.Rules) > 0},
		{"backlog_limit", c.BacklogLimit != nil},
		{"rate_limit", c.RateLimit != nil},
		{"backlog_wait_time", c.BacklogWaitTime != nil},
	}
	switch c.Source {
	case "", SourceFile:
		if c.Mode != "" && c.Mode != ModeAuto {
			add("mode: %q applies only with source: netlink", c.Mode)
		}
		for _, k := range set {
			if k.on {
				add("%s: applies only with source: netlink (with source file, auditd loads the rules and sets the kernel)", k.key)
			}
		}
		return errs
	case SourceNetlink:
		if runtime.GOOS != "linux" {
			add("source: netlink needs Linux")
		}
	default:
		add("source: %q is not file or netlink", c.Source)
		return errs
	}
	switch c.Mode {
	case "", ModeAuto, ModeUnicast:
	case ModeMulticast:
		for _, k := range set {
			if k.on {
				add("%s: refused with mode multicast: the multicast group is read-only, and setting the kernel would fight the audit daemon that owns it", k.key)
			}
		}
	default:
		add("mode: %q is not unicast, multicast or auto", c.Mode)
	}
	checkRange := func(key string, v *int, lo, hi int) {
		if v != nil && (*v < lo || *v > hi) {
			add("%s: %d out of range %d..%d", key, *v, lo, hi)
		}
	}
	checkRange("backlog_limit", c.BacklogLimit, 1, MaxBacklogLimit)
	checkRange("rate_limit", c.RateLimit, 0, MaxRateLimit)
	checkRange("backlog_wait_time", c.BacklogWaitTime, 0, MaxBacklogWaitTime)
	if _, err := buildRules(c.Rules); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// buildRules parses rules (auditctl syntax) into the kernel's wire format.
// Errors name each rule by its index and text; several are joined.
func buildRules(rules []string) ([]rule.WireFormat, error) {
	var errs []error
	out := make([]rule.WireFormat, 0, len(rules))
	for i, text := range rules {
		wf, err := buildRule(text)
		if err == nil {
			for j, prev := range out {
				if bytes.Equal(prev, wf) {
					err = fmt.Errorf("the same rule as rules[%d] (the kernel refuses a rule twice)", j)
					break
				}
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rules[%d]: %q: %w", i, text, err))
			wf = nil
		}
		out = append(out, wf)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func buildRule(text string) (rule.WireFormat, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("empty rule")
	}
	r, err := flags.Parse(text)
	if err != nil {
		return nil, err
	}
	if _, ok := r.(*rule.DeleteAllRule); ok {
		return nil, errors.New("-D deletes rules, it is not one: in unicast the configured rules replace the kernel's anyway")
	}
	return rule.Build(r)
}

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Name == "" {
		c.Name = d.Name
	}
	if c.Path == "" {
		c.Path = d.Path
	}
	if c.StartAt == "" {
		c.StartAt = d.StartAt
	}
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.EventTimeout == 0 {
		c.EventTimeout = d.EventTimeout
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = d.MaxLineBytes
	}
	if c.Raw == "" {
		c.Raw = d.Raw
	}
	if c.Source == "" {
		c.Source = d.Source
	}
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	return c
}

// kernelSettings are the backlog settings unicast applies, defaults
// filled in.
type kernelSettings struct {
	backlogLimit, rateLimit, backlogWaitTime uint32
}

func (c Config) kernelSettings() kernelSettings {
	v := func(p *int, d int) uint32 {
		if p == nil {
			return uint32(d)
		}
		return uint32(*p)
	}
	return kernelSettings{
		backlogLimit:    v(c.BacklogLimit, DefaultBacklogLimit),
		rateLimit:       v(c.RateLimit, DefaultRateLimit),
		backlogWaitTime: v(c.BacklogWaitTime, DefaultBacklogWaitTime),
	}
}
