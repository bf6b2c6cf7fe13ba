package event

import "fmt"

// Kind says what produced a record.
type Kind uint8

const (
	KindLog Kind = iota
	KindReading
	KindAudit
	KindIntegrity
	KindAlert
	KindTelemetry
	kindCount
)

var kindNames = [...]string{"log", "reading", "audit", "integrity", "alert", "telemetry"}

func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Priority decides what a full spool refuses first: bulk, then normal,
// never critical.
type Priority uint8

const (
	PriorityNormal Priority = iota
	PriorityCritical
	PriorityBulk
	priorityCount
)

var priorityNames = [...]string{"normal", "critical", "bulk"}

func (p Priority) String() string {
	if p < priorityCount {
		return priorityNames[p]
	}
	return fmt.Sprintf("priority(%d)", uint8(p))
}

// ParsePriority maps a configuration word to a Priority.
func ParsePriority(s string) (Priority, error) {
	for i, n := range priorityNames {
		if n == s {
			return Priority(i), nil
		}
	}
	return 0, fmt.Errorf("event: unknown priority %q (want normal, critical or bulk)", s)
}

// Severity is the syslog severity, 0 (emergency) to 7 (debug).
type Severity uint8

const (
	SevEmergency Severity = iota
	SevAlert
	SevCritical
	SevError
	SevWarning
	SevNotice
	SevInfo
	SevDebug
)

var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// TimeSource says which clock stamped a record.
type TimeSource uint8

const (
	TimeUnknown TimeSource = iota
	TimeSystem
	TimePTP
	timeSourceCount
)

var timeSourceNames = [...]string{"unknown", "system", "ptp"}

func (t TimeSource) String() string {
	if t < timeSourceCount {
		return timeSourceNames[t]
	}
	return fmt.Sprintf("timesource(%d)", uint8(t))
}

// ClockState is the synchronisation state of the stamping clock.
type ClockState uint8

const (
	ClockUnknown ClockState = iota
	ClockFreerun
	ClockHoldover
	ClockLocked
	clockStateCount
)

var clockStateNames = [...]string{"unknown", "freerun", "holdover", "locked"}

func (c ClockState) String() string {
	if c < clockStateCount {
		return clockStateNames[c]
	}
	return fmt.Sprintf("clockstate(%d)", uint8(c))
}

// Checksum is the verdict on a sensor frame's checksum.
type Checksum uint8

const (
	ChecksumNone Checksum = iota // not applicable: the source has no checksum
	ChecksumOK
	ChecksumBad
	checksumCount
)

var checksumNames = [...]string{"none", "ok", "bad"}

func (c Checksum) String() string {
	if c < checksumCount {
		return checksumNames[c]
	}
	return fmt.Sprintf("checksum(%d)", uint8(c))
}

// Quality states how far a record's time can be trusted.
type Quality struct {
	Source TimeSource
	State  ClockState
	// ErrorBound is the bound on |record time - true time| in ns; negative
	// means unknown (a free-running system clock promises nothing).
	ErrorBound int64
}

// Event is one record.
type Event struct {
	Seq      uint64 // assigned by the spool; not encoded
	Gateway  string
	Time     int64 // ns since the Unix epoch, from the gateway's clock
	Quality  Quality
	Observed int64 // the source's own timestamp in ns, 0 if it has none
	Source   string
	Kind     Kind
	Severity Severity
	Priority Priority
	Host     string
	Message  string // may hold any bytes, not only UTF-8
	Fields   []Field
	Checksum Checksum
}

// Field is one typed value carried by a record.
type Field struct {
	Key   string
	Value Value
}

// ValueType is the type held by a Value.
type ValueType uint8

const (
	TypeString ValueType = iota
	TypeInt
	TypeUint
	TypeFloat
	TypeBool
	TypeBytes
	valueTypeCount
)

// Value is a typed field value. Only the member its Type names is used.
type Value struct {
	Type ValueType
	Str  string // TypeString and TypeBytes
	Num  uint64 // TypeInt (two's complement), TypeUint, TypeBool (0/1), TypeFloat (IEEE bits)
}
