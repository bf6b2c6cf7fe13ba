package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"reflect"
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

// FuzzDecodeNetlink: any datagram from the audit socket decodes without
// a panic; a record's payload is the datagram's; a stream of such
// datagrams (cut from the input) goes through the session's feed, the
// grouper and the builder into records that encode, within the bounds.
func FuzzDecodeNetlink(f *testing.F) {
	for _, name := range []string{"testdata/netlink-unicast.nlhex", "testdata/netlink-multicast.nlhex"} {
		for _, m := range readNLHex(f, name) {
			f.Add(m)
		}
	}
	f.Add(datagram(1300, 0, "audit(1.5:7): a=b\x00"))
	f.Add(nlError(1, 17))
	f.Add(datagram(1320, 0, "audit(1.5:7): "))
	f.Add(datagram(1329, 0, "\x01\x00\x00\x00"))
	f.Add(datagram(1309, 0, "audit(99999999999.5:7): a0="+strings.Repeat("41", 300)))
	cfg := netlinkConfig(ModeUnicast)
	cfg.MaxLineBytes = 256
	rd, err := New(cfg, newFakeSpool(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := decodeNetlink(in)
		if len(in) >= nlHeaderLen && err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if err == nil {
			if len(m.Payload) > len(in)-nlHeaderLen || !bytes.Contains(in, m.Payload) {
				t.Fatalf("%q: payload %q not from the datagram", in, m.Payload)
			}
			_ = m.errno()
			if line := appendLine(nil, m); !bytes.HasPrefix(line, []byte("type=")) {
				t.Fatalf("%q: line %q", in, line)
			}
		}
		// The input as a stream: datagrams of the length each header says
		// (the unicast quirk's length, the header's not counted).
		n := newNLRun(rd, nil, &fakeKernel{mode: ModeUnicast}, newMsgQueue())
		for rest := in; len(rest) > 0; {
			size := len(rest)
			if len(rest) >= 4 {
				size = min(len(rest), nlHeaderLen+int(binary.NativeEndian.Uint32(rest)%512))
			}
			_ = n.feed(rest[:size], time.Unix(0, 0))
			rest = rest[size:]
		}
		n.g.Flush()
		for _, grp := range n.g.Take() {
			if len(grp.Records) > maxEventRecords {
				t.Fatalf("group of %d records", len(grp.Records))
			}
			checkEvent(t, n.b.event(grp))
		}
	})
}

// FuzzParsePosition: a checkpoint read back from the spool, whatever its
// bytes, parses without a panic; one that parses is in range and
// survives writing and reading again.
func FuzzParsePosition(f *testing.F) {
	f.Add(position{Dev: 64768, Ino: 409248, HeadLen: 256, HeadSum: 1 << 63, Off: 4096, Cont: true, Skip: []int64{10, 200}}.marshal())
	f.Add(position{}.marshal())
	f.Add([]byte(`{"off":-1}`))
	f.Add([]byte(`{"skip":[0]}`))
	f.Add([]byte(`{"head_len":257}`))
	f.Add([]byte(`{"boot_id":"x","lost":3}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := parsePosition(in)
		if err == nil {
			if p.Off < 0 || p.HeadLen < 0 || p.HeadLen > headBytes {
				t.Fatalf("%q: out of range %+v", in, p)
			}
			for _, s := range p.Skip {
				if s <= 0 {
					t.Fatalf("%q: skip %d", in, s)
				}
			}
			again, err := parsePosition(p.marshal())
			if err != nil {
				t.Fatalf("%q: written back as %q: %v", in, p.marshal(), err)
			}
			if len(p.Skip) == 0 {
				p.Skip = nil // [] and none are written alike
			}
			if !reflect.DeepEqual(again, p) {
				t.Fatalf("%q: %+v read back as %+v", in, p, again)
			}
		}
		_, _ = parseLossPosition(in)
	})
}
