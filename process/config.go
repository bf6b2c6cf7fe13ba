package process

import (
	"time"

	"github.com/weirgw/weir/match"
)

// Config is the processors section: a chain every record passes, and
// one per input, run before it.
type Config struct {
	// Global runs on every record an input or the gateway itself emits,
	// after the record's input chain.
	Global []Step `mapstructure:"global" yaml:"global"`
	// Inputs maps an input to its chain: syslog, audit, integrity,
	// files.<name>, modbus.<bus>, lines.<name>.
	Inputs map[string][]Step `mapstructure:"inputs" yaml:"inputs"`
}

// Step is one processor: exactly one of its members is set.
type Step struct {
	Drop       *FilterConfig     `mapstructure:"drop" yaml:"drop"`
	Keep       *FilterConfig     `mapstructure:"keep" yaml:"keep"`
	Sample     *SampleConfig     `mapstructure:"sample" yaml:"sample"`
	Redact     *RedactConfig     `mapstructure:"redact" yaml:"redact"`
	Parse      *ParseConfig      `mapstructure:"parse" yaml:"parse"`
	Rename     *RenameConfig     `mapstructure:"rename" yaml:"rename"`
	AddFields  *AddFieldsConfig  `mapstructure:"add_fields" yaml:"add_fields"`
	DropFields *DropFieldsConfig `mapstructure:"drop_fields" yaml:"drop_fields"`
	Truncate   *TruncateConfig   `mapstructure:"truncate" yaml:"truncate"`
	Deadband   *DeadbandConfig   `mapstructure:"deadband" yaml:"deadband"`
}

// FilterConfig is drop (the records Match matches) or keep (only those).
type FilterConfig struct {
	Match match.Spec `mapstructure:"match" yaml:"match"`
	// AllowCritical lets the step drop critical records too.
	AllowCritical bool `mapstructure:"allow_critical" yaml:"allow_critical"`
}

// SampleConfig keeps 1 record in Every, or Per records each Interval, of
// the records Match matches, counted per value of Key.
type SampleConfig struct {
	Match    match.Spec    `mapstructure:"match" yaml:"match"`
	Every    int           `mapstructure:"every" yaml:"every"`
	Per      int           `mapstructure:"per" yaml:"per"`
	Interval time.Duration `mapstructure:"interval" yaml:"interval"`
	// Key is the field whose value the counts are kept per; "" counts
	// per source. MaxKeys bounds the values tracked (default 10000);
	// beyond it, new values share one count.
	Key           string `mapstructure:"key" yaml:"key"`
	MaxKeys       int    `mapstructure:"max_keys" yaml:"max_keys"`
	AllowCritical bool   `mapstructure:"allow_critical" yaml:"allow_critical"`
}

// RedactConfig replaces values: whole fields named in Fields, or what
// Regex matches (in the message, and in Fields when both are given; a
// regex with a group replaces its first group only).
type RedactConfig struct {
	Match  match.Spec `mapstructure:"match" yaml:"match"`
	Fields []string   `mapstructure:"fields" yaml:"fields"`
	Regex  string     `mapstructure:"regex" yaml:"regex"`
	// With: mask (Mask in place of the value, default "***") or hmac
	// (a token of HMAC-SHA256 over the value under HMACKey, the same
	// for the same value, so records can be joined without it).
	With    string `mapstructure:"with" yaml:"with"`
	Mask    string `mapstructure:"mask" yaml:"mask"`
	HMACKey string `mapstructure:"hmac_key" yaml:"hmac_key"`
}

// ParseConfig turns a text into fields.
type ParseConfig struct {
	Match match.Spec `mapstructure:"match" yaml:"match"`
	// Format: dissect, kv, json, sd (RFC 5424 structured data).
	Format string `mapstructure:"format" yaml:"format"`
	// From is the text parsed: "message" (default) or a field's key.
	From string `mapstructure:"from" yaml:"from"`
	// Pattern is dissect's: %{key} captures, literal text between them,
	// %{} or %{?name} skips.
	Pattern string `mapstructure:"pattern" yaml:"pattern"`
	// Prefix goes before every key made ("app." makes app.user).
	Prefix string `mapstructure:"prefix" yaml:"prefix"`
	// MaxFields bounds the fields one record gains (default 32).
	MaxFields int `mapstructure:"max_fields" yaml:"max_fields"`
}

// RenameConfig renames fields, in order.
type RenameConfig struct {
	Fields []RenamePair `mapstructure:"fields" yaml:"fields"`
}

// RenamePair is one rename.
type RenamePair struct {
	From string `mapstructure:"from" yaml:"from"`
	To   string `mapstructure:"to" yaml:"to"`
}

// AddFieldsConfig sets text fields (site, asset tag, zone), replacing a
// field of the same key.
type AddFieldsConfig struct {
	Match  match.Spec        `mapstructure:"match" yaml:"match"`
	Fields map[string]string `mapstructure:"fields" yaml:"fields"`
}

// DropFieldsConfig removes fields.
type DropFieldsConfig struct {
	Match  match.Spec `mapstructure:"match" yaml:"match"`
	Fields []string   `mapstructure:"fields" yaml:"fields"`
}

// TruncateConfig cuts a text to MaxBytes (at a UTF-8 boundary where the
// text is UTF-8) and flags the record with truncated.<key>, the length
// it had.
type TruncateConfig struct {
	Field    string `mapstructure:"field" yaml:"field"` // "message" or a field's key
	MaxBytes int    `mapstructure:"max_bytes" yaml:"max_bytes"`
}

// DeadbandConfig reports a sensor reading only when one of its values
// moved beyond its deadband since the last one reported, or Heartbeat
// passed since then; a reading whose quality, exception, clock state or
// checksum verdict changed is always reported.
type DeadbandConfig struct {
	// Match picks the records (default: kind reading).
	Match match.Spec `mapstructure:"match" yaml:"match"`
	// Fields are the values compared (default: every numeric field but
	// those in Ignore).
	Fields []string `mapstructure:"fields" yaml:"fields"`
	// Ignore: numeric fields that are not values (default: the Modbus
	// poll's unit, uncertainty_ns, round_trip_us, attempts, requests).
	Ignore []string `mapstructure:"ignore" yaml:"ignore"`
	// Absolute and Percent are the deadband: a move larger than either
	// one given (percent of the last value reported) is reported.
	Absolute  float64       `mapstructure:"absolute" yaml:"absolute"`
	Percent   float64       `mapstructure:"percent" yaml:"percent"`
	Heartbeat time.Duration `mapstructure:"heartbeat" yaml:"heartbeat"`
	// MaxSources bounds the sources tracked (default 10000); a record of
	// a source beyond it is reported.
	MaxSources    int  `mapstructure:"max_sources" yaml:"max_sources"`
	AllowCritical bool `mapstructure:"allow_critical" yaml:"allow_critical"`
}

// Redacted returns a copy with the HMAC keys hidden, safe to print.
func (c Config) Redacted() Config {
	red := func(steps []Step) []Step {
		out := make([]Step, len(steps))
		for i, s := range steps {
			if s.Redact != nil && s.Redact.HMACKey != "" {
				r := *s.Redact
				r.HMACKey = "<redacted>"
				s.Redact = &r
			}
			out[i] = s
		}
		return out
	}
	if c.Global != nil {
		c.Global = red(c.Global)
	}
	if c.Inputs != nil {
		in := make(map[string][]Step, len(c.Inputs))
		for k, v := range c.Inputs {
			in[k] = red(v)
		}
		c.Inputs = in
	}
	return c
}

// HoldsSecrets says whether a step names an HMAC key.
func (c Config) HoldsSecrets() bool {
	has := func(steps []Step) bool {
		for _, s := range steps {
			if s.Redact != nil && s.Redact.HMACKey != "" {
				return true
			}
		}
		return false
	}
	if has(c.Global) {
		return true
	}
	for _, v := range c.Inputs {
		if has(v) {
			return true
		}
	}
	return false
}
