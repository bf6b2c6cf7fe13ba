package line

import (
	"strconv"

	"github.com/weirgw/weir/event"
)

// lineFlags say how a line ended.
type lineFlags struct {
	overlong bool // a piece of a line longer than max_line_length
	part     int  // 1-based piece number when overlong
	partial  bool // cut by shutdown or reopen, no terminator seen
}

// record makes the event for one line and counts it. Fields:
//
//	verdict         ok, none, mismatch, missing or malformed
//	checksum_got    the trailer (mismatch), hex
//	checksum_want   the computed checksum (mismatch), hex
//	talker, sentence, f1..fn   NMEA lines that are not malformed: the
//	                address split and the comma fields in order, empty
//	                ones kept
//	overlong, part  pieces of a split line
//	partial         a line without its terminator
func (s *Sensor) record(raw []byte, fl lineFlags, now stamp) event.Event {
	var r Result
	if fl.overlong {
		r = Result{Payload: raw, Verdict: VerdictMalformed}
		s.c.overlong.Add(1)
	} else {
		r = s.parser.Parse(raw)
	}
	if fl.partial {
		s.c.partial.Add(1)
	}
	s.c.verdict(r.Verdict)
	s.c.lastLine.Store(now.ns)

	ev := event.Event{
		Time:     now.ns,
		Quality:  now.q,
		Source:   s.cfg.Name,
		Kind:     event.KindReading,
		Severity: event.SevInfo,
		Priority: s.priority,
		Message:  string(raw),
		Checksum: event.ChecksumOK,
	}
	// Sized once: verdict, two checksums or two flags, and for NMEA the
	// address parts and one field per comma.
	nf := 3
	if s.cfg.Checksum == ChecksumNMEA {
		nf += 2
		for _, c := range raw {
			if c == ',' {
				nf++
			}
		}
	}
	fields := make([]event.Field, 0, nf)
	fields = append(fields, event.Str("verdict", r.Verdict.String()))
	switch {
	case r.Verdict == VerdictNone:
		ev.Checksum = event.ChecksumNone
	case !r.Verdict.Good():
		// Recorded as evidence, never as a reading: bad checksum, warning,
		// and no more than normal priority.
		ev.Checksum, ev.Severity, ev.Priority = event.ChecksumBad, event.SevWarning, event.PriorityNormal
	}
	if r.Verdict == VerdictMismatch {
		fields = append(fields,
			event.Str("checksum_got", string(appendHex(nil, r.Got, r.Width))),
			event.Str("checksum_want", string(appendHex(nil, r.Want, r.Width))))
	}
	if s.cfg.Checksum == ChecksumNMEA && r.Verdict != VerdictMalformed {
		talker, typ, fs := SplitNMEA(r.Payload, s.split[:0])
		s.split = fs[:0]
		// Substrings of the message, so the fields cost no copies.
		off := func(b []byte) string {
			if len(b) == 0 {
				return ""
			}
			i := cap(raw) - cap(b)
			return ev.Message[i : i+len(b)]
		}
		fields = append(fields, event.Str("talker", off(talker)), event.Str("sentence", off(typ)))
		for i, f := range fs {
			fields = append(fields, event.Str(s.fieldKey(i), off(f)))
		}
	}
	if fl.overlong {
		fields = append(fields, event.Bool("overlong", true), event.Uint("part", uint64(fl.part)))
	}
	if fl.partial {
		fields = append(fields, event.Bool("partial", true))
	}
	ev.Fields = fields
	return ev
}

// fieldKey returns "f<i+1>", cached per sensor.
func (s *Sensor) fieldKey(i int) string {
	for len(s.keys) <= i {
		s.keys = append(s.keys, "f"+strconv.Itoa(len(s.keys)+1))
	}
	return s.keys[i]
}
