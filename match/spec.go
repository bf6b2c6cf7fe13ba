package match

// Spec is a matcher as configured. Every condition given must hold (an
// empty Spec matches every record); a list condition (kind, source,
// severity ...) holds when any of its values does.
type Spec struct {
	// Kind: log, reading, audit, integrity, alert, telemetry.
	Kind []string `mapstructure:"kind" yaml:"kind"`
	// Source: exact record sources ("syslog", "modbus:meter", "weir:spool").
	Source []string `mapstructure:"source" yaml:"source"`
	// SourcePrefix: sources starting with any of these ("modbus:", "weir:").
	SourcePrefix []string `mapstructure:"source_prefix" yaml:"source_prefix"`
	// Severity: exact syslog severities (emerg, alert, crit, err, warning,
	// notice, info, debug).
	Severity []string `mapstructure:"severity" yaml:"severity"`
	// SeverityAtLeast: this severity or a more severe one ("err" takes
	// err, crit, alert and emerg).
	SeverityAtLeast string `mapstructure:"severity_at_least" yaml:"severity_at_least"`
	// Priority: normal, critical, bulk.
	Priority []string `mapstructure:"priority" yaml:"priority"`
	// Host and Message are the record's host name and message text.
	Host    *Text `mapstructure:"host" yaml:"host"`
	Message *Text `mapstructure:"message" yaml:"message"`
	// Fields: conditions on typed fields, each of which must hold.
	Fields []Field `mapstructure:"fields" yaml:"fields"`
	// All, Any and Not nest Specs: every one, at least one, none.
	All []Spec `mapstructure:"all" yaml:"all"`
	Any []Spec `mapstructure:"any" yaml:"any"`
	Not *Spec  `mapstructure:"not" yaml:"not"`
}

// Text is a condition on a text value. Every condition given must hold;
// an empty one (equals "") is no condition: in: [""] matches the empty
// text.
type Text struct {
	Equals string `mapstructure:"equals" yaml:"equals"`
	// In: equal to any of these.
	In     []string `mapstructure:"in" yaml:"in"`
	Prefix string   `mapstructure:"prefix" yaml:"prefix"`
	// Contains: holding any of these.
	Contains []string `mapstructure:"contains" yaml:"contains"`
	// Regex: RE2 syntax, unanchored (^ and $ anchor it).
	Regex string `mapstructure:"regex" yaml:"regex"`
}

// Field is a condition on the record's first field named Key. The text
// conditions compare the value as text: a number as written in decimal
// (equals: 5 matches the integer 5 and the float 5.0), a boolean as true
// or false, bytes as themselves. The numeric ones compare numbers, and
// text that parses as one; a value that is neither never satisfies them.
// A record without the field satisfies only exists: false.
type Field struct {
	Key      string   `mapstructure:"key" yaml:"key"`
	Equals   string   `mapstructure:"equals" yaml:"equals"`
	In       []string `mapstructure:"in" yaml:"in"`
	Prefix   string   `mapstructure:"prefix" yaml:"prefix"`
	Contains []string `mapstructure:"contains" yaml:"contains"`
	Regex    string   `mapstructure:"regex" yaml:"regex"`
	Above    *float64 `mapstructure:"above" yaml:"above"`       // >
	Below    *float64 `mapstructure:"below" yaml:"below"`       // <
	AtLeast  *float64 `mapstructure:"at_least" yaml:"at_least"` // >=
	AtMost   *float64 `mapstructure:"at_most" yaml:"at_most"`   // <=
	Exists   *bool    `mapstructure:"exists" yaml:"exists"`
}

// text is the field's text conditions as a Text.
func (f Field) text() Text {
	return Text{Equals: f.Equals, In: f.In, Prefix: f.Prefix, Contains: f.Contains, Regex: f.Regex}
}
