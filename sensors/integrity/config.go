package integrity

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/weirgw/weir/spool"
)

// Defaults, also used for zero values in a Config.
const (
	DefaultRescanInterval = time.Hour
	DefaultSettle         = 300 * time.Millisecond
	DefaultMaxFileBytes   = 64 << 20
)

// Bounds enforced by Validate.
const (
	minRescanInterval = time.Second
	maxSettle         = time.Minute
)

// Config configures file integrity monitoring. Zero values of
// RescanInterval, Settle and MaxFileBytes mean their defaults; Paths is
// taken as it is (DefaultConfig has /etc). The gateway's own binary and
// configuration file are watched whatever Paths says.
type Config struct {
	// Paths are absolute files or directories; directories are watched
	// recursively.
	Paths []string `mapstructure:"paths" yaml:"paths"`
	// Exclude are globs (filepath.Match syntax) of paths left alone, with
	// everything under them. A glob with a "/" is matched against the whole
	// path ("/etc/ssl/certs/*"), one without against the last element
	// ("*.swp"). A path listed in Paths is never excluded.
	Exclude []string `mapstructure:"exclude" yaml:"exclude"`
	// RescanInterval is how often every path is looked at again (hashed and
	// compared), to catch what the watches missed.
	RescanInterval time.Duration `mapstructure:"rescan_interval" yaml:"rescan_interval"`
	// Settle is how long a path must be quiet after its last event before it
	// is hashed and compared: an editor's write-and-rename or a burst of
	// writes makes one record. A path written without pause is looked at
	// after 20 times Settle at most.
	Settle time.Duration `mapstructure:"settle" yaml:"settle"`
	// MaxFileBytes is the largest file hashed; a larger one is flagged
	// hash_skipped and only its other attributes are compared.
	MaxFileBytes spool.ByteSize `mapstructure:"max_file_bytes" yaml:"max_file_bytes"`
	// FollowSymlinks hashes what a symlink points at and descends into
	// linked directories. Off, a symlink is recorded as a link: its target,
	// owner and type.
	FollowSymlinks bool `mapstructure:"follow_symlinks" yaml:"follow_symlinks"`
}

// DefaultConfig watches /etc with every default filled in.
func DefaultConfig() Config {
	return Config{
		Paths:          []string{"/etc"},
		RescanInterval: DefaultRescanInterval,
		Settle:         DefaultSettle,
		MaxFileBytes:   DefaultMaxFileBytes,
	}
}

// Validate checks c without I/O. Errors name the key, e.g.
// `paths: "etc" is not absolute`; several are joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, p := range c.Paths {
		switch {
		case p == "":
			add("paths: a path is empty")
		case !filepath.IsAbs(p):
			add("paths: %q is not absolute", p)
		}
	}
	for _, g := range c.Exclude {
		if g == "" {
			add("exclude: a glob is empty")
			continue
		}
		if _, err := filepath.Match(g, ""); err != nil {
			add("exclude: glob %q is malformed", g)
		}
	}
	switch {
	case c.RescanInterval < 0:
		add("rescan_interval: %s is negative", c.RescanInterval)
	case c.RescanInterval > 0 && c.RescanInterval < minRescanInterval:
		add("rescan_interval: %s is below the %s minimum", c.RescanInterval, minRescanInterval)
	}
	switch {
	case c.Settle < 0:
		add("settle: %s is negative", c.Settle)
	case c.Settle > maxSettle:
		add("settle: %s is more than %s", c.Settle, maxSettle)
	}
	if c.MaxFileBytes < 0 {
		add("max_file_bytes: %d is negative", c.MaxFileBytes)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.RescanInterval == 0 {
		c.RescanInterval = d.RescanInterval
	}
	if c.Settle == 0 {
		c.Settle = d.Settle
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = d.MaxFileBytes
	}
	return c
}
