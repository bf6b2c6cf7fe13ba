package syslog

import (
	"time"

	"github.com/weirgw/weir/event"
)

// Field keys of a syslog record. app_name, procid and msgid are the RFC
// 5424 names; an RFC 3164 TAG and [PID] fill app_name and procid too, so
// consumers see one shape.
const (
	keyFormat        = "format"         // rfc5424, rfc3164 or raw
	keyFacility      = "facility"       // uint, 0-23
	keyNoPRI         = "no_pri"         // bool: no PRI, user.notice assumed
	keyAppName       = "app_name"       // string
	keyProcID        = "procid"         // string
	keyMsgID         = "msgid"          // string
	keySDTruncated   = "sd_truncated"   // bool: more than maxSDFields parameters
	keyParseError    = "parse_error"    // string: what was wrong; Message is the raw message
	keyPeer          = "peer"           // string: the sender's ip:port
	keyTransport     = "transport"      // string: udp, tcp or tls
	keyTLSPeer       = "tls_peer"       // string: the client certificate's subject
	keyTruncated     = "truncated"      // bool: longer than max_message_bytes
	keyOriginalBytes = "original_bytes" // uint: full length of a truncated stream message
	keyPartial       = "partial"        // bool: the stream ended inside the frame
)

var partialField = event.Bool(keyPartial, true)

// Meta is what the listener knows about a message besides its bytes.
type Meta struct {
	Peer      string // ip:port
	PeerIP    string // ip, the record's Host when the message names none
	Transport string
	TLSPeer   string
	Truncated bool
	// OriginalBytes is, for a truncated stream message, the size its
	// octet count announced or the bytes counted up to its LF; 0 when
	// unknown (UDP).
	OriginalBytes int
}

// Parser turns raw syslog messages into records. It keeps scratch state:
// one per goroutine.
type Parser struct {
	Source   string
	Priority event.Priority
	// Loc is the time zone of RFC 3164 timestamps, which carry none; nil
	// is UTC.
	Loc *time.Location
	msg Message
}

// is5424 reports whether s has a PRI followed by version 1, the mark of
// RFC 5424.
func is5424(s string) bool {
	_, rest, ok, err := parsePRI(s)
	return ok && err == nil && len(rest) >= 2 && rest[0] == '1' && rest[1] == ' '
}

// Parse reads one message and returns its record: RFC 5424 when the
// version after the PRI says so, else RFC 3164. A message that does not
// parse is kept whole as the record's Message (any bytes, UTF-8 or not)
// with format raw and a parse_error field; it is never dropped. now
// decides the year of RFC 3164 timestamps. The record's Time is left 0
// for the sink to stamp. The error, if any, is the parse error the record
// carries; the record is complete either way.
func (p *Parser) Parse(raw []byte, now time.Time, meta *Meta) (event.Event, error) {
	s := string(raw) // one copy; every string below is a part of it
	m := &p.msg
	var err error
	if is5424(s) {
		err = Parse5424(s, m)
	} else {
		err = Parse3164(s, now, p.Loc, m)
	}
	ev := event.Event{
		Source:   p.Source,
		Kind:     event.KindLog,
		Priority: p.Priority,
	}
	fs := make([]event.Field, 0, fieldCount(m, err, meta))
	if err != nil {
		// The PRI may still have been good; keep what it said.
		pri, _, ok, perr := parsePRI(s)
		if !ok || perr != nil {
			pri = defaultPRI
		}
		fac, sev := splitPRI(pri)
		ev.Severity, ev.Message = sev, s
		fs = append(fs, event.Str(keyFormat, FormatRaw.String()), event.Uint(keyFacility, uint64(fac)),
			event.Str(keyParseError, err.Error()))
	} else {
		ev.Severity, ev.Observed, ev.Host, ev.Message = m.Severity, m.Time, m.Hostname, m.Msg
		fs = append(fs, event.Str(keyFormat, m.Format.String()), event.Uint(keyFacility, uint64(m.Facility)))
		if m.NoPRI {
			fs = append(fs, event.Bool(keyNoPRI, true))
		}
		if m.AppName != "" {
			fs = append(fs, event.Str(keyAppName, m.AppName))
		}
		if m.ProcID != "" {
			fs = append(fs, event.Str(keyProcID, m.ProcID))
		}
		if m.MsgID != "" {
			fs = append(fs, event.Str(keyMsgID, m.MsgID))
		}
		fs = append(fs, m.SD...)
		if m.SDTruncated {
			fs = append(fs, event.Bool(keySDTruncated, true))
		}
	}
	if meta != nil {
		if ev.Host == "" {
			ev.Host = meta.PeerIP
		}
		fs = append(fs, event.Str(keyPeer, meta.Peer), event.Str(keyTransport, meta.Transport))
		if meta.TLSPeer != "" {
			fs = append(fs, event.Str(keyTLSPeer, meta.TLSPeer))
		}
		if meta.Truncated {
			fs = append(fs, event.Bool(keyTruncated, true))
			if meta.OriginalBytes > 0 {
				fs = append(fs, event.Uint(keyOriginalBytes, uint64(meta.OriginalBytes)))
			}
		}
	}
	ev.Fields = fs
	return ev, err
}

// fieldCount is the number of fields Parse gives a record, so the slice
// is allocated once; one spare for the listener's partial flag.
func fieldCount(m *Message, err error, meta *Meta) int {
	n := 3 // format, facility, parse_error
	if err == nil {
		n = 2 + len(m.SD)
		for _, b := range [...]bool{m.NoPRI, m.AppName != "", m.ProcID != "", m.MsgID != "", m.SDTruncated} {
			if b {
				n++
			}
		}
	}
	if meta != nil {
		n += 3 // peer, transport, partial
		if meta.TLSPeer != "" {
			n++
		}
		if meta.Truncated {
			n += 2
		}
	}
	return n
}

// trimTrailer drops the line ends and NULs senders leave at the end of a
// message ("\n" from logger over UDP, "\r\n" from some appliances).
func trimTrailer(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\n', '\r', 0:
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}
