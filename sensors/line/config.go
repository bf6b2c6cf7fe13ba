package line

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/serialport"
)

// ChecksumKind selects how a line is verified.
type ChecksumKind string

// Checksum kinds; see the package documentation for their parameters.
const (
	ChecksumNMEA        ChecksumKind = "nmea"
	ChecksumCRC16CCITT  ChecksumKind = "crc16-ccitt"
	ChecksumCRC16XModem ChecksumKind = "crc16-xmodem"
	ChecksumCRC32       ChecksumKind = "crc32"
	ChecksumNone        ChecksumKind = "none"
)

// Terminator ends a line on the wire.
type Terminator string

// Terminators. With lf a "\r" before the "\n" is stripped too, since many
// instruments end lines with "\r\n" whatever their manual says.
const (
	TermLF   Terminator = "lf"   // "\n"
	TermCRLF Terminator = "crlf" // "\r\n"; a lone "\r" or "\n" stays in the line
	TermCR   Terminator = "cr"   // "\r"
)

// Limits enforced by Validate, so that memory per sensor stays bounded.
const (
	maxMaxLineLength = 64 << 10
	maxBatchSize     = 1024
)

// Config is one line sensor.
type Config struct {
	// Name is the record source.
	Name string `mapstructure:"name" yaml:"name"`
	// Port is the serial line; ignored by NewFromReader.
	Port serialport.Config `mapstructure:"port" yaml:"port"`
	// Checksum: nmea, crc16-ccitt, crc16-xmodem, crc32 or none.
	Checksum ChecksumKind `mapstructure:"checksum" yaml:"checksum"`
	// Separator comes before a CRC trailer's hex digits, e.g. "*" or ",".
	// One printable, non-hex character. Unused by nmea (always "*") and none.
	Separator string `mapstructure:"separator" yaml:"separator"`
	// Terminator: lf, crlf or cr.
	Terminator Terminator `mapstructure:"terminator" yaml:"terminator"`
	// MaxLineLength in bytes, terminator excluded; longer lines are split.
	MaxLineLength int `mapstructure:"max_line_length" yaml:"max_line_length"`
	// Priority of good lines: normal, critical or bulk. Lines failing their
	// checksum are always normal.
	Priority string `mapstructure:"priority" yaml:"priority"`
	// BatchSize lines at most per emit call.
	BatchSize int `mapstructure:"batch_size" yaml:"batch_size"`
	// FlushInterval is the longest a complete line waits for its batch.
	FlushInterval time.Duration `mapstructure:"flush_interval" yaml:"flush_interval"`
	// ReopenBackoff is the first wait before reopening a failed port; it
	// doubles on each failure up to ReopenBackoffMax.
	ReopenBackoff    time.Duration `mapstructure:"reopen_backoff" yaml:"reopen_backoff"`
	ReopenBackoffMax time.Duration `mapstructure:"reopen_backoff_max" yaml:"reopen_backoff_max"`
}

// DefaultConfig is an NMEA 0183 receiver: 4800 baud 8N1, "\n" or "\r\n" lines
// (the standard's 82 characters; 1024 leaves room for proprietary ones),
// batches of 32 lines flushed every 250ms.
func DefaultConfig() Config {
	p := serialport.DefaultConfig()
	p.Baud, p.Parity = 4800, serialport.ParityNone
	return Config{
		Port:             p,
		Checksum:         ChecksumNMEA,
		Separator:        "*",
		Terminator:       TermLF,
		MaxLineLength:    1024,
		Priority:         "normal",
		BatchSize:        32,
		FlushInterval:    250 * time.Millisecond,
		ReopenBackoff:    500 * time.Millisecond,
		ReopenBackoffMax: 30 * time.Second,
	}
}

// validate checks the configuration without I/O (the port is checked only
// when withPort); errors name the key.
func (c Config) validate(withPort bool) error {
	switch {
	case c.Name == "":
		return errors.New("name: empty")
	case strings.ContainsAny(c.Name, " \t\r\n"):
		return fmt.Errorf("name: %q contains white space", c.Name)
	case c.MaxLineLength < 8 || c.MaxLineLength > maxMaxLineLength:
		return fmt.Errorf("max_line_length: %d out of range 8..%d", c.MaxLineLength, maxMaxLineLength)
	case c.BatchSize < 1 || c.BatchSize > maxBatchSize:
		return fmt.Errorf("batch_size: %d out of range 1..%d", c.BatchSize, maxBatchSize)
	case c.FlushInterval < time.Millisecond || c.FlushInterval > time.Minute:
		return fmt.Errorf("flush_interval: %s out of range 1ms..1m", c.FlushInterval)
	case c.ReopenBackoff < time.Millisecond || c.ReopenBackoff > time.Minute:
		return fmt.Errorf("reopen_backoff: %s out of range 1ms..1m", c.ReopenBackoff)
	case c.ReopenBackoffMax < c.ReopenBackoff || c.ReopenBackoffMax > 10*time.Minute:
		return fmt.Errorf("reopen_backoff_max: %s out of range reopen_backoff..10m", c.ReopenBackoffMax)
	}
	switch c.Checksum {
	case ChecksumNMEA, ChecksumNone:
	case ChecksumCRC16CCITT, ChecksumCRC16XModem, ChecksumCRC32:
		if len(c.Separator) != 1 || c.Separator[0] < 0x21 || c.Separator[0] > 0x7e || isHex(c.Separator[0]) {
			return fmt.Errorf("separator: %q is not one printable non-hex character", c.Separator)
		}
	default:
		return fmt.Errorf("checksum: %q is not nmea, crc16-ccitt, crc16-xmodem, crc32 or none", c.Checksum)
	}
	switch c.Terminator {
	case TermLF, TermCRLF, TermCR:
	default:
		return fmt.Errorf("terminator: %q is not lf, crlf or cr", c.Terminator)
	}
	if _, err := event.ParsePriority(c.Priority); err != nil {
		return fmt.Errorf("priority: %w", err)
	}
	if withPort {
		if err := c.Port.Validate(); err != nil {
			return fmt.Errorf("port.%w", err)
		}
	}
	return nil
}

// Validate checks the configuration, the serial port included, without
// touching the device; errors name the key.
func (c Config) Validate() error { return c.validate(true) }

// parser returns the line parser the configuration asks for.
func (c Config) parser() Parser {
	p := Parser{Kind: c.Checksum, Sep: '*'}
	if len(c.Separator) == 1 {
		p.Sep = c.Separator[0]
	}
	return p
}
