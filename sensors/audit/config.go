package audit

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
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
	return errors.Join(errs...)
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
	return c
}
