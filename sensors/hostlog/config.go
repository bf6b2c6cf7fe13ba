package hostlog

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/weirgw/weir/gateway/event"
)

// Start positions for files that exist at the first scan and have no
// checkpoint.
const (
	StartAtEnd       = "end"
	StartAtBeginning = "beginning"
)

// Defaults, also used for zero values in a FileConfig.
const (
	DefaultPollInterval = 250 * time.Millisecond
	DefaultMaxLineBytes = 64 << 10
)

// MaxMaxLineBytes bounds max_line_bytes: a batch of lines, the longest
// last, goes to the spool in one append, which holds at most 208 KiB
// (spool.MaxAppendBytes).
const MaxMaxLineBytes = 128 << 10

// FileConfig configures one file input. Zero values of StartAt,
// PollInterval, MaxLineBytes and Priority mean their defaults.
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
	// PollInterval is how often the globs are expanded and files read.
	PollInterval time.Duration `mapstructure:"poll_interval" yaml:"poll_interval"`
	// MaxLineBytes bounds a record's message; longer lines are split into
	// pieces of this size, each flagged truncated=true, never dropped.
	MaxLineBytes int `mapstructure:"max_line_bytes" yaml:"max_line_bytes"`
	// Priority is the records' priority class: normal, critical or bulk.
	Priority string `mapstructure:"priority" yaml:"priority"`
}

// DefaultFileConfig returns a FileConfig with every default filled in and
// no name or paths.
func DefaultFileConfig() FileConfig {
	return FileConfig{
		StartAt:      StartAtEnd,
		PollInterval: DefaultPollInterval,
		MaxLineBytes: DefaultMaxLineBytes,
		Priority:     event.PriorityNormal.String(),
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
	case !validName(c.Name):
		add("name: %q may hold only letters, digits, '.', '_' and '-' (at most 64)", c.Name)
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
	return c
}

func validName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
