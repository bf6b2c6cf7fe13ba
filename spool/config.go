package spool

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Class is a record's priority class. When the spool is full it refuses
// bulk first, then normal, and makes room for critical records by evicting
// the oldest bulk, then normal, records.
type Class uint8

const (
	ClassNormal Class = iota
	ClassCritical
	ClassBulk
	numClasses
)

var classNames = [numClasses]string{"normal", "critical", "bulk"}

func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Profile selects Badger's memory settings.
type Profile string

const (
	// ProfileSmall suits boards with 256–512 MiB of RAM and 32-bit ARM.
	ProfileSmall Profile = "small"
	// ProfileLarge trades memory for throughput on bigger gateways.
	ProfileLarge Profile = "large"
)

// Config bounds and tunes the spool.
type Config struct {
	// MaxBytes bounds the backlog: record data plus a fixed per-record
	// overhead. Bulk records are refused above 90 % of it, normal ones at
	// 100 %; critical ones evict bulk, then normal, records.
	MaxBytes ByteSize `mapstructure:"max_bytes" yaml:"max_bytes"`
	// MaxAge drops bulk and normal records older than this (0: never).
	// Critical records leave only when acknowledged.
	MaxAge     time.Duration `mapstructure:"max_age" yaml:"max_age"`
	Profile    Profile       `mapstructure:"profile" yaml:"profile"`
	GCInterval time.Duration `mapstructure:"gc_interval" yaml:"gc_interval"`
}

// DefaultConfig fits a 10 GB data partition with room for the rest of the
// firmware's files and Badger's compaction headroom.
func DefaultConfig() Config {
	return Config{MaxBytes: 4 << 30, Profile: ProfileSmall, GCInterval: time.Minute}
}

// Validate checks the configuration without I/O; errors name the key.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("max_bytes: %s is below the 1MiB minimum", c.MaxBytes))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max_age: %s is negative", c.MaxAge))
	}
	if c.Profile != ProfileSmall && c.Profile != ProfileLarge {
		errs = append(errs, fmt.Errorf("profile: %q is not small or large", c.Profile))
	}
	if c.GCInterval <= 0 {
		errs = append(errs, fmt.Errorf("gc_interval: %s must be positive", c.GCInterval))
	}
	return errors.Join(errs...)
}

// ByteSize is a size in bytes written as a plain number or with a unit:
// "512MiB", "4GiB", "10GB".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// UnmarshalText parses a size.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size such as 512MiB or 4GiB", string(text))
	}
	*b = ByteSize(n * mult)
	return nil
}

// MarshalText writes the size with the largest binary unit that divides it.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

func (b ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.mult == 0 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
