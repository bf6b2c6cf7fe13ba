package syslog

import (
	"fmt"
	"strings"
	"time"
)

// Parse3164 parses s as a BSD syslog message (RFC 3164) in the forms real
// senders use:
//
//	<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG     rsyslog, logger --rfc3164
//	<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG              busybox, /dev/log style
//	<PRI>YYYY-MM-DDThh:mm:ss.ffffff+hh:mm HOST TAG: MSG   rsyslog high precision
//	MSG                                             no PRI at all
//
// The day may be space- or zero-padded, the time may carry a fraction,
// and "Mmm dd yyyy hh:mm:ss" is read too. A timestamp without a year is
// put in the year that brings it closest to now, in loc, so a December
// message that arrives in January keeps its year. A message with no
// recognisable timestamp is all content (RFC 3164 section 4.3.3); one
// with no PRI gets user.notice and NoPRI. The only error is a malformed
// PRI: everything after a valid PRI is accepted.
func Parse3164(s string, now time.Time, loc *time.Location, m *Message) error {
	m.reset()
	m.Format = Format3164
	pri, rest, ok, err := parsePRI(s)
	if err != nil {
		return fmt.Errorf("rfc3164: %w", err)
	}
	if !ok {
		pri, m.NoPRI = defaultPRI, true
	}
	m.Facility, m.Severity = splitPRI(pri)

	if t, after, ok := parse3164Time(rest, now, loc); ok {
		m.Time = t
		rest = strings.TrimLeft(after, " ")
		// A hostname, unless the word is already the tag (no hostname, as
		// busybox and local senders write).
		if w, after, found := strings.Cut(rest, " "); found && w != "" && !looksLikeTag(w) {
			m.Hostname, rest = w, after
		}
	}
	m.AppName, m.ProcID, rest = parseTag(rest)
	m.Msg = strings.TrimPrefix(rest, bom)
	return nil
}

// looksLikeTag reports whether a word is "tag:" or "tag[pid]…" rather
// than a hostname.
func looksLikeTag(w string) bool {
	return strings.HasSuffix(w, ":") || strings.IndexByte(w, '[') > 0
}

// parseTag splits "TAG[PID]: MSG", "TAG: MSG" or "TAG[PID] MSG" at the
// start of s. A first word that is none of these is not a tag: the whole
// of s is the message.
func parseTag(s string) (tag, pid, msg string) {
	end := strings.IndexByte(s, ' ')
	if end < 0 {
		end = len(s)
	}
	w := s[:end]
	rest := strings.TrimPrefix(s[end:], " ")
	if len(w) < 2 {
		return "", "", s
	}
	if w[len(w)-1] == ':' {
		w = w[:len(w)-1]
	}
	colon := len(w) != end
	if i := strings.IndexByte(w, '['); i > 0 && w[len(w)-1] == ']' {
		tag, pid = w[:i], w[i+1:len(w)-1]
		if strings.ContainsAny(tag, "[]:") || strings.ContainsAny(pid, "[]") {
			return "", "", s
		}
		return tag, pid, rest
	}
	if !colon || strings.ContainsAny(w, "[]:") || w == "" {
		return "", "", s
	}
	return w, "", rest
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parse3164Time reads a timestamp at the start of s: "Mmm dd hh:mm:ss"
// (dd space- or zero-padded or a single digit, optional .fraction),
// "Mmm dd yyyy hh:mm:ss", or RFC 3339. It returns ns since the epoch and
// what follows the timestamp; ok is false when s starts with none of
// these.
func parse3164Time(s string, now time.Time, loc *time.Location) (int64, string, bool) {
	if len(s) >= 20 && isDigit(s[0]) && s[4] == '-' {
		end := strings.IndexByte(s, ' ')
		if end < 0 {
			end = len(s)
		}
		if t, err := parseRFC3339(s[:end]); err == nil {
			return t, s[end:], true
		}
		return 0, s, false
	}
	if len(s) < 15 || s[3] != ' ' {
		return 0, s, false
	}
	month := 0
	for i, m := range months {
		if strings.EqualFold(s[:3], m) {
			month = i + 1
			break
		}
	}
	if month == 0 {
		return 0, s, false
	}
	r := s[4:]
	if r[0] == ' ' {
		r = r[1:] // "Jan  5"
	}
	di := 0
	for di < len(r) && di < 3 && isDigit(r[di]) {
		di++
	}
	day, ok := digits(r[:di])
	if !ok || di > 2 || di == len(r) || r[di] != ' ' {
		return 0, s, false
	}
	r = r[di+1:]
	year := 0
	if len(r) >= 5 && isDigit(r[0]) && r[4] == ' ' {
		if y, ok := digits(r[:4]); ok {
			year, r = y, r[5:]
		}
	}
	if len(r) < 8 || r[2] != ':' || r[5] != ':' {
		return 0, s, false
	}
	hour, ok1 := digits(r[0:2])
	minute, ok2 := digits(r[3:5])
	sec, ok3 := digits(r[6:8])
	if !ok1 || !ok2 || !ok3 {
		return 0, s, false
	}
	r = r[8:]
	ns := 0
	if len(r) > 1 && r[0] == '.' && isDigit(r[1]) {
		n := 1
		for n < len(r) && isDigit(r[n]) {
			n++
		}
		if n <= 10 {
			frac, _ := digits(r[1:n])
			for k := n - 1; k < 9; k++ {
				frac *= 10
			}
			ns, r = frac, r[n:]
		}
	}
	if r != "" && r[0] != ' ' {
		return 0, s, false
	}
	if hour > 23 || minute > 59 || sec > 60 || day < 1 || day > 31 {
		return 0, s, false
	}
	if loc == nil {
		loc = time.UTC
	}
	if year != 0 {
		t, ok := localTime(year, month, day, hour, minute, sec, ns, loc)
		return t, r, ok
	}
	// The year closest to now: this one, or the one either side of it.
	y := now.In(loc).Year()
	best, found := int64(0), false
	for _, cand := range [...]int{y - 1, y, y + 1} {
		t, ok := localTime(cand, month, day, hour, minute, sec, ns, loc)
		if ok && (!found || absDiff(t, now.UnixNano()) < absDiff(best, now.UnixNano())) {
			best, found = t, true
		}
	}
	return best, r, found
}

func localTime(year, month, day, hour, minute, sec, ns int, loc *time.Location) (int64, bool) {
	if year < 1678 || year > 2261 {
		return 0, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, ns, loc)
	if t.Day() != day && sec != 60 {
		return 0, false // Feb 29 in a common year
	}
	return t.UnixNano(), true
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}
