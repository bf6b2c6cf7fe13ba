package siem

import (
	"net/netip"
	"strings"

	"github.com/weirgw/weir/event"
)

// Class refines a record's kind by its source; see the package doc.
type Class uint8

const (
	ClassFile Class = iota
	ClassSyslog
	ClassModbus
	ClassLine
	ClassAudit
	ClassIntegrity
	ClassTelemetry
	ClassAlert
	classCount
)

type classInfo struct {
	name      string // MSGID, LEEF EventID, ECS dataset suffix
	cefName   string
	cat       string
	ecsKind   string
	ecsCat    string
	ecsType   string
	signature string
}

var classes = [classCount]classInfo{
	ClassFile:      {"file", "Log file line", "log", "event", "host", "info", "weir:file"},
	ClassSyslog:    {"syslog", "Syslog message", "log", "event", "host", "info", "weir:syslog"},
	ClassModbus:    {"modbus", "Modbus reading", "reading", "metric", "host", "info", "weir:modbus"},
	ClassLine:      {"line", "Line sensor reading", "reading", "metric", "host", "info", "weir:line"},
	ClassAudit:     {"audit", "Linux audit event", "audit", "event", "host", "info", "weir:audit"},
	ClassIntegrity: {"integrity", "File changed", "integrity", "event", "file", "change", "weir:integrity"},
	ClassTelemetry: {"telemetry", "Weir telemetry", "telemetry", "metric", "host", "info", "weir:telemetry"},
	ClassAlert:     {"alert", "Weir alert", "alert", "alert", "host", "info", "weir:alert"},
}

func (c Class) String() string {
	if c < classCount {
		return classes[c].name
	}
	return "unknown"
}

func (c Class) info() *classInfo {
	if c < classCount {
		return &classes[c]
	}
	return &classes[ClassFile]
}

// ClassOf says what produced e.
func ClassOf(e *event.Event) Class {
	switch e.Kind {
	case event.KindReading:
		if strings.HasPrefix(e.Source, "modbus:") {
			return ClassModbus
		}
		return ClassLine
	case event.KindAudit:
		return ClassAudit
	case event.KindIntegrity:
		return ClassIntegrity
	case event.KindTelemetry:
		return ClassTelemetry
	case event.KindAlert:
		return ClassAlert
	}
	if _, ok := field(e, "facility"); ok {
		return ClassSyslog
	}
	return ClassFile
}

// field returns the first field named key.
func field(e *event.Event, key string) (event.Value, bool) {
	for i := range e.Fields {
		if e.Fields[i].Key == key {
			return e.Fields[i].Value, true
		}
	}
	return event.Value{}, false
}

func stringField(e *event.Event, key string) string {
	if v, ok := field(e, key); ok && v.Type == event.TypeString {
		return v.Str
	}
	return ""
}

// cefSeverity and leefSeverity map syslog severities 0..7.
var (
	cefSeverity  = [8]byte{10, 9, 8, 7, 5, 3, 1, 0}
	leefSeverity = [8]byte{10, 9, 8, 7, 5, 3, 2, 1}
)

func sev(e *event.Event) int { return int(min(e.Severity, event.SevDebug)) }

// CEFSeverity is the CEF severity (0..10) of a syslog severity.
func CEFSeverity(s event.Severity) int { return int(cefSeverity[min(s, event.SevDebug)]) }

// LEEFSeverity is the LEEF sev (1..10) of a syslog severity.
func LEEFSeverity(s event.Severity) int { return int(leefSeverity[min(s, event.SevDebug)]) }

// facility is the record's syslog facility when it came from syslog,
// else def.
func facility(e *event.Event, def int) int {
	if v, ok := field(e, "facility"); ok && v.Type == event.TypeUint && v.Num <= 23 {
		return int(v.Num)
	}
	return def
}

// peerIP is the address a syslog record came from, if it has one,
// without an IPv6 zone: the formats' address fields (CEF src, LEEF src,
// ECS source.ip) take none, and a zone is any bytes at all
// (netip.ParseAddr takes "::1%" followed by anything, invalid UTF-8 too).
func peerIP(e *event.Event) (netip.Addr, bool) {
	p := stringField(e, "peer")
	if p == "" {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(p); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(p); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// filePath is the path a record is about: the tailed file, or the file an
// integrity record reports.
func filePath(e *event.Event) string {
	switch e.Kind {
	case event.KindLog, event.KindIntegrity:
		return stringField(e, "path")
	}
	return ""
}
