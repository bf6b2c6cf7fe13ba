package spool

import (
	"errors"
	"fmt"
	"math/bits"
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
	// 0 means DefaultMaxBytes for the platform.
	MaxBytes ByteSize `mapstructure:"max_bytes" yaml:"max_bytes"`
	// MaxAge drops bulk and normal records older than this (0: never).
	// Critical records leave only when acknowledged.
	MaxAge  time.Duration `mapstructure:"max_age" yaml:"max_age"`
	Profile Profile       `mapstructure:"profile" yaml:"profile"`
}

// DefaultMaxBytes fits a 10 GB data partition with room for the rest of
// the firmware's files and the spool's disk overhead (it stays within about
// twice the backlog). A 32-bit board gets MaxBytes32, all it can map.
const DefaultMaxBytes = 4 << 30

// MaxBytes32 is the largest max_bytes on a 32-bit board: Badger maps its
// table files into the 3 GiB a 32-bit process can address, and the disk
// holds up to about twice the backlog in them.
const MaxBytes32 = 1 << 30

// DefaultConfig is the spool's configuration when none is given.
func DefaultConfig() Config {
	return Config{MaxBytes: defaultMaxBytes(bits.UintSize), Profile: ProfileSmall}
}

func defaultMaxBytes(wordSize int) ByteSize {
	if wordSize == 32 {
		return MaxBytes32
	}
	return DefaultMaxBytes
}

// resolved fills in the platform default for a zero MaxBytes.
func (c Config) resolved() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = defaultMaxBytes(bits.UintSize)
	}
	return c
}

// Validate checks the configuration without I/O; errors name the key.
func (c Config) Validate() error {
	return c.validate(bits.UintSize)
}

func (c Config) validate(wordSize int) error {
	var errs []error
	switch {
	case c.MaxBytes == 0: // the platform's default
	case c.MaxBytes < 1<<20:
		errs = append(errs, fmt.Errorf("max_bytes: %s is below the 1MiB minimum", c.MaxBytes))
	case wordSize == 32 && c.MaxBytes > MaxBytes32:
		errs = append(errs, fmt.Errorf("max_bytes: %s is more than a 32-bit board can map; at most %s", c.MaxBytes, ByteSize(MaxBytes32)))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max_age: %s is negative", c.MaxAge))
	}
	switch {
	case c.Profile != ProfileSmall && c.Profile != ProfileLarge:
		errs = append(errs, fmt.Errorf("profile: %q is not small or large", c.Profile))
	case wordSize == 32 && c.Profile != ProfileSmall:
		errs = append(errs, fmt.Errorf("profile: %q maps more than a 32-bit address space can hold; use small on this board", c.Profile))
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
