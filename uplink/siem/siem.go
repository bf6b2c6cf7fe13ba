package siem

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/weirgw/weir/event"
)

// Format names an encoding.
type Format string

const (
	FormatCEF     Format = "cef"
	FormatLEEF    Format = "leef"
	FormatRFC5424 Format = "rfc5424"
	FormatECS     Format = "ecs"
)

// Formats lists every format, in the order the documentation gives them.
var Formats = []Format{FormatRFC5424, FormatCEF, FormatLEEF, FormatECS}

// LeafField is the field that carries a record's leaf hash in its
// gateway's Merkle log (hex), added on the way to a SIEM: with the
// record's id (gateway:sequence) and the forwarded seal records, a SIEM
// export holds what recomputing the log and checking its seals needs.
const LeafField = "weir_leaf"

// Encoder turns one record into one message of its format, without
// framing. The record's Seq and Gateway must be set: they make the
// dedupe id. Append allocates only when b must grow.
type Encoder interface {
	Append(b []byte, e *event.Event) []byte
	Format() Format
}

// EncodingConfig sets what the formats' headers say about Weir. Keys are
// those of an output's encoding section.
type EncodingConfig struct {
	// Vendor, Product and Version fill CEF's and LEEF's headers and ECS's
	// observer.vendor, observer.product, observer.version.
	Vendor  string `mapstructure:"vendor" yaml:"vendor"`
	Product string `mapstructure:"product" yaml:"product"`
	Version string `mapstructure:"version" yaml:"version"`
	// LEEFDelimiter separates LEEF attributes: "tab" (the default), one
	// printable character, or its code as 0xNN or xNN.
	LEEFDelimiter string `mapstructure:"leef_delimiter" yaml:"leef_delimiter"`
	// Facility is RFC 5424's for records that do not come from syslog
	// (0..23; 16 is local0).
	Facility int `mapstructure:"facility" yaml:"facility"`
	// EnterpriseID follows '@' in RFC 5424's SD-IDs (weir@32473). 32473
	// is the private enterprise number RFC 5612 sets aside for examples;
	// a site that has its own uses it.
	EnterpriseID string `mapstructure:"enterprise_id" yaml:"enterprise_id"`
}

// DefaultEncodingConfig is what a config that says nothing gets.
func DefaultEncodingConfig() EncodingConfig {
	return EncodingConfig{Vendor: "Weir", Product: "Weir Gateway", Version: "1", LEEFDelimiter: "tab", Facility: 16,
		EnterpriseID: "32473"}
}

// Validate checks the configuration; errors name the key.
func (c EncodingConfig) Validate() error {
	var errs []error
	for _, h := range []struct{ key, val string }{{"vendor", c.Vendor}, {"product", c.Product}, {"version", c.Version}} {
		switch {
		case h.val == "":
			errs = append(errs, fmt.Errorf("%s: empty", h.key))
		case len(h.val) > 63:
			errs = append(errs, fmt.Errorf("%s: %q is longer than 63 bytes", h.key, h.val))
		case !utf8.ValidString(h.val) || strings.ContainsFunc(h.val, isControl):
			errs = append(errs, fmt.Errorf("%s: %q holds control characters or invalid UTF-8", h.key, h.val))
		}
	}
	if _, err := ParseDelimiter(c.LEEFDelimiter); err != nil {
		errs = append(errs, fmt.Errorf("leef_delimiter: %w", err))
	}
	if c.Facility < 0 || c.Facility > 23 {
		errs = append(errs, fmt.Errorf("facility: %d is outside 0..23", c.Facility))
	}
	if c.EnterpriseID == "" || strings.Trim(c.EnterpriseID, "0123456789.") != "" || c.EnterpriseID[0] == '.' ||
		strings.HasSuffix(c.EnterpriseID, ".") || len(c.EnterpriseID) > 27 {
		errs = append(errs, fmt.Errorf("enterprise_id: %q is not a private enterprise number (digits, dot-separated)", c.EnterpriseID))
	}
	return errors.Join(errs...)
}

// ParseDelimiter reads leef_delimiter: "tab", "" (tab), a printable
// ASCII character, or 0xNN / xNN. '=', '|', '\' and letters and digits
// are refused: they would make the attributes ambiguous.
func ParseDelimiter(s string) (byte, error) {
	var d byte
	switch {
	case s == "" || s == "tab":
		return '\t', nil
	case len(s) == 1:
		d = s[0]
	case len(s) > 1 && (strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "x")):
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0"), "x"), 16, 8)
		if err != nil {
			return 0, fmt.Errorf("%q is not a character code (0xNN)", s)
		}
		d = byte(n)
	default:
		return 0, fmt.Errorf("%q is not tab, one character, or 0xNN", s)
	}
	if d == '\t' {
		return d, nil
	}
	if d < 0x20 || d > 0x7e || d == '=' || d == '|' || d == '\\' || d == ' ' ||
		'a' <= d && d <= 'z' || 'A' <= d && d <= 'Z' || '0' <= d && d <= '9' {
		return 0, fmt.Errorf("%q cannot separate attributes (not tab, a space, '=', '|', '\\', a letter or digit, or a control character)", s)
	}
	return d, nil
}

// New returns the encoder of f. cfg is expected to pass Validate.
func New(f Format, cfg EncodingConfig) (Encoder, error) {
	switch f {
	case FormatCEF:
		return &CEF{cfg: cfg}, nil
	case FormatLEEF:
		d, err := ParseDelimiter(cfg.LEEFDelimiter)
		if err != nil {
			return nil, fmt.Errorf("siem: leef_delimiter: %w", err)
		}
		return &LEEF{cfg: cfg, delim: d}, nil
	case FormatRFC5424:
		return &RFC5424{cfg: cfg}, nil
	case FormatECS:
		return &ECS{cfg: cfg}, nil
	}
	return nil, fmt.Errorf("siem: unknown format %q (want rfc5424, cef, leef or ecs)", f)
}

// ParseFormat reads a format's name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("%q is not rfc5424, cef, leef or ecs", s)
}

// DedupeID is the id a target dedupes a record by: "gateway:sequence".
func DedupeID(e *event.Event) string {
	return e.Gateway + ":" + strconv.FormatUint(e.Seq, 10)
}

func appendDedupeID(b []byte, e *event.Event) []byte {
	b = append(b, e.Gateway...)
	b = append(b, ':')
	return strconv.AppendUint(b, e.Seq, 10)
}
