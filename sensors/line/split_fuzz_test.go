package line

import (
	"bytes"
	"slices"
	"testing"

	"github.com/weirgw/weir/event"
)

// splitRecord is what the splitter emitted for one piece of a line.
type splitRecord struct {
	msg      string
	overlong bool
	part     uint64
	partial  bool
}

func splitRecords(evs []event.Event) []splitRecord {
	out := make([]splitRecord, 0, len(evs))
	for _, ev := range evs {
		r := splitRecord{msg: ev.Message}
		for _, f := range ev.Fields {
			switch f.Key {
			case "overlong":
				r.overlong = f.Value.Bool()
			case "part":
				r.part = f.Value.Num
			case "partial":
				r.partial = f.Value.Bool()
			}
		}
		out = append(out, r)
	}
	return out
}

// referenceLF is what the splitter must make of in with terminator lf: a
// line per "\n" ("\r\n" too), empty ones dropped, a longer one than max in
// numbered pieces of max, the unterminated rest last, flagged partial.
func referenceLF(in []byte, max int) []splitRecord {
	var out []splitRecord
	lines := bytes.Split(in, []byte("\n"))
	for i, l := range lines {
		last := i == len(lines)-1
		if !last {
			l = bytes.TrimSuffix(l, []byte("\r"))
		}
		if len(l) == 0 {
			continue
		}
		if len(l) <= max {
			out = append(out, splitRecord{msg: string(l), partial: last})
			continue
		}
		for p := 1; len(l) > 0; p++ {
			n := min(max, len(l))
			out = append(out, splitRecord{msg: string(l[:n]), overlong: true, part: uint64(p), partial: last && n == len(l)})
			l = l[n:]
		}
	}
	return out
}

// FuzzSplit: the serial line splitter, fed a sensor's bytes in whatever
// pieces the reads return them, makes the same records as fed all at
// once; none is longer than max_line_length or holds its terminator; with
// lf they are exactly the reference's, so no byte but terminators is lost
// or added.
func FuzzSplit(f *testing.F) {
	f.Add([]byte("$GPGLL,4916.45,N,12311.12,W,225444,A*31\r\n$GPGLL,4916.46,N,12311.12,W,225445,A*31\r\n"), uint8(0), []byte{3, 17, 1})
	f.Add([]byte("line one\rline two\r\n\r\rthree"), uint8(2), []byte{1})
	f.Add([]byte("a\r\r\nb\rc\r\n\r\n"), uint8(1), []byte{2, 1})
	f.Add([]byte("0123456789abcdefXYZ\n0123456789abcdef\n"), uint8(0), []byte{16, 1, 1})
	f.Add([]byte("\r\n\n\r"), uint8(3), []byte{})
	f.Fuzz(func(t *testing.T, in []byte, mode uint8, cuts []byte) {
		cfg := testConfig()
		cfg.Checksum, cfg.MaxLineLength = ChecksumNone, 16
		cfg.Terminator = [...]Terminator{TermLF, TermCRLF, TermCR}[int(mode)%3]
		split := func(chunks [][]byte) []splitRecord {
			s := newSensor(cfg, nil, nil)
			var st lineState
			var evs []event.Event
			for _, c := range chunks {
				evs = s.take(&st, c, evs, stamp{})
			}
			return splitRecords(s.cutLine(&st, evs, stamp{}))
		}
		whole := split([][]byte{in})

		var chunks [][]byte
		rest := in
		for _, c := range cuts {
			n := min(int(c)%8+1, len(rest))
			chunks, rest = append(chunks, rest[:n]), rest[n:]
		}
		chunks = append(chunks, rest)
		if pieces := split(chunks); !slices.Equal(whole, pieces) {
			t.Fatalf("%q (%s) in pieces %q:\n%+v\nall at once:\n%+v", in, cfg.Terminator, chunks, pieces, whole)
		}
		for _, r := range whole {
			if len(r.msg) == 0 || len(r.msg) > cfg.MaxLineLength {
				t.Fatalf("%q (%s): a record of %d bytes, max_line_length %d", in, cfg.Terminator, len(r.msg), cfg.MaxLineLength)
			}
			var term string
			switch cfg.Terminator {
			case TermLF:
				term = "\n"
			case TermCR:
				term = "\r"
			case TermCRLF:
				term = "\r\n"
			}
			if bytes.Contains([]byte(r.msg), []byte(term)) {
				t.Fatalf("%q (%s): record %q holds its terminator", in, cfg.Terminator, r.msg)
			}
		}
		if cfg.Terminator == TermLF {
			if want := referenceLF(in, cfg.MaxLineLength); !slices.Equal(whole, want) {
				t.Fatalf("%q: got\n%+v\nwant\n%+v", in, whole, want)
			}
		}
	})
}
