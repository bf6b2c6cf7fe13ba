package syslog

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/event"
)

func addMessageSeeds(f *testing.F) {
	for _, c := range loadCases(f) {
		f.Add([]byte(c.Raw))
	}
	f.Add([]byte("<13>1 - - - - - [a b=\"\\\\\\]\\\"\"][c] \xef\xbb\xbf\xff"))
	f.Add([]byte("<13>Feb 29 24:00:60.1234567891 h t[: x"))
}

// checkMessage holds for every message either parser accepts.
func checkMessage(t *testing.T, raw string, m *Message) {
	if m.Facility > 23 || m.Severity > event.SevDebug {
		t.Fatalf("%q: facility %d severity %d", raw, m.Facility, m.Severity)
	}
	if !strings.Contains(raw, m.Msg) || !strings.Contains(raw, m.Hostname) || !strings.Contains(raw, m.AppName) {
		t.Fatalf("%q: parts not taken from the message: %+v", raw, m)
	}
	if len(m.SD) > maxSDFields {
		t.Fatalf("%q: %d sd fields", raw, len(m.SD))
	}
}

// FuzzParse5424: never panics; what it accepts is self-consistent and
// encodes; the record of anything it refuses holds the raw bytes.
func FuzzParse5424(f *testing.F) {
	addMessageSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := string(b)
		var m Message
		if err := Parse5424(s, &m); err == nil {
			checkMessage(t, s, &m)
			if m.Format != Format5424 {
				t.Fatalf("%q: format %v", s, m.Format)
			}
		}
		checkRecord(t, b)
	})
}

// FuzzParse3164: never panics; refuses only a malformed PRI.
func FuzzParse3164(f *testing.F) {
	addMessageSeeds(f)
	now := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := string(b)
		var m Message
		err := Parse3164(s, now, time.UTC, &m)
		if err != nil {
			if _, _, ok, perr := parsePRI(s); !ok || perr == nil {
				t.Fatalf("%q: refused with a good or no PRI: %v", s, err)
			}
			return
		}
		checkMessage(t, s, &m)
		if m.Time != 0 && absDiff(m.Time, now.UnixNano()) > int64(2*366*24*time.Hour) && !strings.Contains(s, "-") && !yearIn(s) {
			t.Fatalf("%q: inferred time %v far from now", s, time.Unix(0, m.Time).UTC())
		}
		checkRecord(t, b)
	})
}

// yearIn reports whether s may name its own year (then the time may be
// far from now).
func yearIn(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			n++
			if n == 4 {
				return true
			}
		} else {
			n = 0
		}
	}
	return false
}

func checkRecord(t *testing.T, b []byte) {
	var p Parser
	ev, _ := p.Parse(b, time.Now(), &Meta{Peer: "127.0.0.1:1", PeerIP: "127.0.0.1", Transport: "udp"})
	enc, err := ev.MarshalBinary()
	if err != nil {
		t.Fatalf("%q: record does not encode: %v", b, err)
	}
	if len(enc) > 4*len(b)+64*maxSDFields+512 {
		t.Fatalf("%q: %d bytes encode to %d", b, len(b), len(enc))
	}
	for _, fl := range ev.Fields {
		if fl.Key == keyParseError && ev.Message != string(b) {
			t.Fatalf("%q: refused but message is %q", b, ev.Message)
		}
	}
}

// FuzzFramer: the stream framer never panics, never returns a message
// longer than its limit, always makes progress, and reads a stream of
// well-formed octet-counted frames back exactly.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("120 <11>1 2026-11-23T14:40:00.541179+00:00 vm weirtest - - - hello tcp"), uint16(64))
	f.Add([]byte("<11>Nov 23 14:40:00 vm weirtest: hello tcp\n<11>x\x00<12>y\r\n"), uint16(8))
	f.Add([]byte("99999999999 x\n12 abc\n5 hello0 \n"), uint16(4))
	f.Add([]byte("2026-11-23 plain line\n"), uint16(100))
	f.Fuzz(func(t *testing.T, b []byte, max uint16) {
		limit := int(max)%4096 + 1
		fr := newFramer(bufio.NewReaderSize(bytes.NewReader(b), 16), limit)
		for i := 0; ; i++ {
			if i > len(b)+1 {
				t.Fatalf("%q: more messages than bytes", b)
			}
			msg, fl, err := fr.next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("%q: %v", b, err)
				}
				break
			}
			if len(msg) > limit {
				t.Fatalf("%q: message of %d bytes, limit %d", b, len(msg), limit)
			}
			if fl.truncated != (fl.original > limit) && fl.original != 0 {
				t.Fatalf("%q: truncated %v with original %d, limit %d", b, fl.truncated, fl.original, limit)
			}
		}

		// Well-formed octet counting round-trips.
		var stream bytes.Buffer
		var want [][]byte
		for part := range bytes.SplitSeq(b, []byte{0xff}) {
			if len(part) == 0 || len(part) > limit {
				continue
			}
			want = append(want, part)
			stream.WriteString(strconvItoa(len(part)) + " ")
			stream.Write(part)
		}
		fr = newFramer(bufio.NewReaderSize(&stream, 16), limit)
		for _, w := range want {
			msg, fl, err := fr.next()
			if err != nil || !bytes.Equal(msg, w) || fl.truncated {
				t.Fatalf("octet-counted %q: got %q %+v %v", w, msg, fl, err)
			}
		}
		if _, _, err := fr.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last frame: %v", err)
		}
	})
}

func strconvItoa(n int) string { return strconv.Itoa(n) }
