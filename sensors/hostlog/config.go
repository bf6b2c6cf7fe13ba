package hostlog

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/weirgw/weir/event"
)

// Start positions for files that exist at the first scan and have no
// checkpoint.
const (
	StartAtEnd       = "end"
	StartAtBeginning = "beginning"
)

// How changes are noticed.
const (
	// WatchAuto uses inotify (github.com/fsnotify/fsnotify) on the globs'
	// directories and polls every rescan_interval as a safety net; where
	// inotify is unavailable or its limits are reached it polls every
	// poll_interval.
	WatchAuto = "auto"
	// WatchPoll polls every poll_interval only.
	WatchPoll = "poll"
)

// Defaults, also used for zero values in a FileConfig.
const (
	DefaultPollInterval      = 250 * time.Millisecond
	DefaultRescanInterval    = 10 * time.Second
	DefaultMaxLineBytes      = 64 << 10
	DefaultCloseInactive     = 5 * time.Minute
	DefaultMultilineMaxLines = 500
	DefaultMultilineTimeout  = 5 * time.Second
	DefaultMultilineMaxBytes = DefaultMaxLineBytes
)

// MaxMaxLineBytes bounds max_line_bytes: a batch of lines, the longest
// last, goes to the spool in one append, which holds at most 208 KiB
// (spool.MaxAppendBytes).
const MaxMaxLineBytes = 128 << 10

// FileConfig configures one file input. Zero values mean their defaults.
type FileConfig struct {
	// Name is the source name, e.g. "syslog", used in records.
	Name string `mapstructure:"name" yaml:"name"`
	// Paths are globs (filepath.Match syntax); relative ones are taken
	// from the working directory when the Tailer is made.
	Paths []string `mapstructure:"paths" yaml:"paths"`
	// StartAt is "end" (default) or "beginning": where to start in files
	// that exist at the first scan and have no checkpoint. Files that
	// appear later are always read from the beginning.
	StartAt string `mapstructure:"start_at" yaml:"start_at"`
	// PollInterval is how often the globs are expanded and files read
	// when they are polled (watch: poll, or inotify unavailable), and the
	// retry period of a file that failed to open.
	PollInterval time.Duration `mapstructure:"poll_interval" yaml:"poll_interval"`
	// MaxLineBytes bounds a record's message; longer lines are split into
	// pieces of this size, each flagged truncated=true with its index in
	// part (from 0), never dropped.
	MaxLineBytes int `mapstructure:"max_line_bytes" yaml:"max_line_bytes"`
	// Priority is the records' priority class: normal, critical or bulk.
	Priority string `mapstructure:"priority" yaml:"priority"`
	// Watch is "auto" (default: inotify, polling as a fallback) or "poll".
	Watch string `mapstructure:"watch" yaml:"watch"`
	// RescanInterval is how often the globs are expanded and files read
	// when inotify watches them: a safety net for missed events.
	RescanInterval time.Duration `mapstructure:"rescan_interval" yaml:"rescan_interval"`
	// CloseInactive releases the descriptor of a file that has not grown
	// for so long; it is opened again (and recognised by its fingerprint)
	// when it grows. A file deleted while closed is gone, with anything
	// written to it after it was closed.
	CloseInactive time.Duration `mapstructure:"close_inactive" yaml:"close_inactive"`
	// Multiline joins lines into events; off unless start_pattern is set.
	Multiline MultilineConfig `mapstructure:"multiline" yaml:"multiline"`
	// FollowSymlinks tails what a symbolic link matching a glob points
	// at, and descends into linked directories that a wildcard matches.
	// Off (the default), such links are skipped and logged once: whoever
	// can plant a link in a log directory could otherwise have the
	// gateway ship any file it can read (a root-only key, /etc/shadow).
	// Links in the part of a glob without wildcards ("/var/log" of
	// "/var/log/*.log") are followed either way: the configuration names
	// them.
	FollowSymlinks bool `mapstructure:"follow_symlinks" yaml:"follow_symlinks"`
}

// MultilineConfig joins the lines of one event, such as a stack trace: a
// line matching StartPattern starts an event, the lines that follow and do
// not match are joined to it with their newlines. An event ends at the next
// start, after Timeout without a new line, or when MaxLines or MaxBytes
// would be exceeded (the rest goes on as a new event flagged continued).
type MultilineConfig struct {
	// StartPattern is a regular expression (Go RE2 syntax) matched against
	// each line; empty turns multiline joining off.
	StartPattern string `mapstructure:"start_pattern" yaml:"start_pattern"`
	// MaxLines bounds an event's lines (default 500).
	MaxLines int `mapstructure:"max_lines" yaml:"max_lines"`
	// MaxBytes bounds an event's message (default 64 KiB, at most 128 KiB).
	MaxBytes int `mapstructure:"max_bytes" yaml:"max_bytes"`
	// Timeout flushes an event that got no line for so long (default 5s).
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
}

// DefaultFileConfig returns a FileConfig with every default filled in and
// no name or paths.
func DefaultFileConfig() FileConfig {
	return FileConfig{
		StartAt:        StartAtEnd,
		PollInterval:   DefaultPollInterval,
		MaxLineBytes:   DefaultMaxLineBytes,
		Priority:       event.PriorityNormal.String(),
		Watch:          WatchAuto,
		RescanInterval: DefaultRescanInterval,
		CloseInactive:  DefaultCloseInactive,
		Multiline: MultilineConfig{
			MaxLines: DefaultMultilineMaxLines,
			MaxBytes: DefaultMultilineMaxBytes,
			Timeout:  DefaultMultilineTimeout,
		},
	}
}

// Validate checks c without I/O. Errors name the key relative to c, e.g.
// `paths: glob "[" is malformed`; several are joined with errors.Join.
func (c FileConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch {
	case c.Name == "":
		add("name: must not be empty")
	default:
		if err := event.CheckSourceName(c.Name); err != nil {
			add("name: %v", err)
		}
	}
	if len(c.Paths) == 0 {
		add("paths: must list at least one glob")
	}
	for _, p := range c.Paths {
		if p == "" {
			add("paths: a glob is empty")
			continue
		}
		// Match checks the whole pattern's syntax even when it does not match.
		if _, err := filepath.Match(p, ""); err != nil {
			add("paths: glob %q is malformed", p)
		}
	}
	switch c.StartAt {
	case "", StartAtEnd, StartAtBeginning:
	default:
		add("start_at: %q is not end or beginning", c.StartAt)
	}
	if c.PollInterval < 0 {
		add("poll_interval: %s is negative", c.PollInterval)
	}
	if c.MaxLineBytes < 0 {
		add("max_line_bytes: %d is negative", c.MaxLineBytes)
	} else if c.MaxLineBytes > MaxMaxLineBytes {
		add("max_line_bytes: %d is more than the %d a record can carry", c.MaxLineBytes, MaxMaxLineBytes)
	}
	if c.Priority != "" {
		if _, err := event.ParsePriority(c.Priority); err != nil {
			add("priority: %q is not normal, critical or bulk", c.Priority)
		}
	}
	switch c.Watch {
	case "", WatchAuto, WatchPoll:
	default:
		add("watch: %q is not auto or poll", c.Watch)
	}
	if c.RescanInterval < 0 {
		add("rescan_interval: %s is negative", c.RescanInterval)
	}
	if c.CloseInactive < 0 {
		add("close_inactive: %s is negative", c.CloseInactive)
	}
	m := c.Multiline
	if m.StartPattern != "" {
		if _, err := regexp.Compile(m.StartPattern); err != nil {
			add("multiline.start_pattern: %q is not a regular expression: %v", m.StartPattern, err)
		}
	}
	if m.MaxLines < 0 {
		add("multiline.max_lines: %d is negative", m.MaxLines)
	}
	if m.MaxBytes < 0 {
		add("multiline.max_bytes: %d is negative", m.MaxBytes)
	} else if m.MaxBytes > MaxMaxLineBytes {
		add("multiline.max_bytes: %d is more than the %d a record can carry", m.MaxBytes, MaxMaxLineBytes)
	}
	if m.Timeout < 0 {
		add("multiline.timeout: %s is negative", m.Timeout)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero values replaced by defaults.
func (c FileConfig) withDefaults() FileConfig {
	d := DefaultFileConfig()
	if c.StartAt == "" {
		c.StartAt = d.StartAt
	}
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = d.MaxLineBytes
	}
	if c.Priority == "" {
		c.Priority = d.Priority
	}
	if c.Watch == "" {
		c.Watch = d.Watch
	}
	if c.RescanInterval == 0 {
		c.RescanInterval = d.RescanInterval
	}
	if c.CloseInactive == 0 {
		c.CloseInactive = d.CloseInactive
	}
	if c.Multiline.MaxLines == 0 {
		c.Multiline.MaxLines = d.Multiline.MaxLines
	}
	if c.Multiline.MaxBytes == 0 {
		c.Multiline.MaxBytes = d.Multiline.MaxBytes
	}
	if c.Multiline.Timeout == 0 {
		c.Multiline.Timeout = d.Multiline.Timeout
	}
	return c
}
