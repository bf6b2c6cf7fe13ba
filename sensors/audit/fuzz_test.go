package audit

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/event"
)

func addSeeds(f *testing.F, lineByLine bool) {
	for _, name := range []string{"testdata/auditd-3.0.9-enriched.log", "testdata/docs-raw.log"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if !lineByLine {
			f.Add(b)
			continue
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			f.Add(l)
		}
	}
	f.Add([]byte("type=SYSCALL msg=audit(1.000:1): a=\"b\x1dC={ d"))
	f.Add([]byte("node= type=X msg=audit(0.0:0) : msg='msg='a=b''"))
}

// FuzzParseLine: ParseLine never panics; it keeps the line; a parsed
// record's values come from the line (as they are or hex-decoded); and
// its record encodes.
func FuzzParseLine(f *testing.F) {
	addSeeds(f, true)
	b := newBuilder("audit", true)
	f.Fuzz(func(t *testing.T, in []byte) {
		line := string(in)
		r, err := ParseLine(line)
		if r.Line != line {
			t.Fatalf("%q: Line %q", line, r.Line)
		}
		if err != nil {
			if r.Fields != nil || r.Type != "" {
				t.Fatalf("%q: error %v with fields", line, err)
			}
			r.Err = err
		} else {
			if r.Type == "" || strings.ContainsRune(r.Type, ' ') || r.Time < 0 {
				t.Fatalf("%q: type %q time %d", line, r.Type, r.Time)
			}
			lower := strings.ToLower(line)
			for _, fl := range append(append([]Field(nil), r.Fields...), r.Interp...) {
				if !strings.Contains(line, fl.Key) {
					t.Fatalf("%q: key %q not in the line", line, fl.Key)
				}
				if fl.Encoded {
					if !strings.Contains(lower, hex.EncodeToString([]byte(fl.Value))) {
						t.Fatalf("%q: decoded %q is not from the line", line, fl.Value)
					}
				} else if !strings.Contains(line, fl.Value) {
					t.Fatalf("%q: value %q not in the line", line, fl.Value)
				}
			}
		}
		ev := b.event(Group{Records: []Record{r}})
		checkEvent(t, ev)
	})
}

// FuzzGroup: lines through the grouper and the builder: every line that
// is not empty is in exactly one event, in file order within it; events
// hold one audit event's records (or one malformed line) within the
// bounds; every record encodes.
func FuzzGroup(f *testing.F) {
	addSeeds(f, false)
	f.Add([]byte(strings.Join(interleavedLog(), "\n")))
	f.Fuzz(func(t *testing.T, in []byte) {
		g := NewGrouper(time.Second)
		b := newBuilder("audit", true)
		seen := map[int64]int{}
		var lines []int64
		t0 := time.Unix(0, 0)
		check := func() {
			for _, grp := range g.Take() {
				if len(grp.Records) == 0 || len(grp.Records) > maxEventRecords {
					t.Fatalf("group of %d records", len(grp.Records))
				}
				first := grp.Records[0]
				for i, r := range grp.Records {
					seen[r.Offset]++
					if i > 0 && r.Offset <= grp.Records[i-1].Offset {
						t.Fatalf("records out of order: %d after %d", r.Offset, grp.Records[i-1].Offset)
					}
					if first.Err != nil && len(grp.Records) > 1 {
						t.Fatalf("malformed line %q grouped with others", first.Line)
					}
					if r.Err == nil && (r.Serial != first.Serial || r.Time != first.Time || r.Node != first.Node) {
						t.Fatalf("%q and %q in one event", first.Line, r.Line)
					}
				}
				checkEvent(t, b.event(grp))
			}
		}
		off := int64(0)
		for i, l := range bytes.Split(in, []byte("\n")) {
			at := off
			off += int64(len(l)) + 1
			if len(l) == 0 {
				continue
			}
			r, err := ParseLine(string(l))
			if err != nil {
				r.Err = err
			}
			r.Offset = at
			lines = append(lines, at)
			g.Add(r, t0.Add(time.Duration(i)*time.Millisecond))
			check()
			if i%7 == 6 {
				g.Expire(t0.Add(time.Duration(i) * time.Millisecond))
				check()
			}
		}
		g.Flush()
		check()
		if g.Pending() != 0 {
			t.Fatalf("%d events open after Flush", g.Pending())
		}
		for _, o := range lines {
			if seen[o] != 1 {
				t.Fatalf("line at %d in %d events", o, seen[o])
			}
		}
	})
}

func checkEvent(t *testing.T, ev event.Event) {
	t.Helper()
	if ev.Kind != event.KindAudit || len(ev.Fields) > event.MaxFields {
		t.Fatalf("bad record %+v", ev)
	}
	keys := map[string]bool{}
	for _, fl := range ev.Fields {
		if fl.Key == "types" && len(ev.Message) > maxMessageBytes {
			t.Fatalf("summary of %d bytes", len(ev.Message)) // a malformed line has no types and is its own message
		}
		if keys[fl.Key] {
			t.Fatalf("field %q twice", fl.Key)
		}
		keys[fl.Key] = true
	}
	if _, err := ev.AppendBinary(nil); err != nil {
		t.Fatal(err)
	}
}
