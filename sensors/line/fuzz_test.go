package line

import (
	"bytes"
	"testing"
)

var fuzzKinds = [...]ChecksumKind{ChecksumNMEA, ChecksumCRC16CCITT, ChecksumCRC16XModem, ChecksumCRC32, ChecksumNone}

// FuzzParse: Parse never panics, its verdict agrees with Got and Want, its
// payload lies within the line, and a line given a correct trailer by
// Append always verifies ok with its payload intact. The same bytes also go
// through the line splitter, whose records never exceed max_line_length.
func FuzzParse(f *testing.F) {
	f.Add([]byte("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"), uint8(0), byte('*'))
	f.Add([]byte("123456789*29B1"), uint8(1), byte('*'))
	f.Add([]byte("CL2,0.42,mg/l,OK,31c3"), uint8(2), byte(','))
	f.Add([]byte("123456789*CBF43926\r\n"), uint8(3), byte('*'))
	f.Fuzz(func(t *testing.T, line []byte, k uint8, sep byte) {
		kind := fuzzKinds[int(k)%len(fuzzKinds)]
		if sep < 0x21 || sep > 0x7e || isHex(sep) {
			sep = '*'
		}
		p := Parser{Kind: kind, Sep: sep}

		r := p.Parse(line)
		switch r.Verdict {
		case VerdictOK:
			if r.Got != r.Want {
				t.Fatalf("%q: ok with got %x want %x", line, r.Got, r.Want)
			}
		case VerdictMismatch:
			if r.Got == r.Want {
				t.Fatalf("%q: mismatch with got == want %x", line, r.Got)
			}
		case VerdictNone:
			if kind != ChecksumNone {
				t.Fatalf("%q: verdict none for %s", line, kind)
			}
		case VerdictMissing, VerdictMalformed:
		default:
			t.Fatalf("%q: verdict %v", line, r.Verdict)
		}
		if len(r.Payload) > 0 && !within(line, r.Payload) {
			t.Fatalf("%q: payload %q not within the line", line, r.Payload)
		}

		// A correct trailer always verifies.
		body := line
		if kind == ChecksumNMEA {
			body = append([]byte("$"), line...)
		}
		good := p.Append(nil, body)
		r = p.Parse(good)
		want := line
		if kind == ChecksumNMEA {
			want = body[1:]
		}
		if kind == ChecksumNone {
			if r.Verdict != VerdictNone {
				t.Fatalf("%q: %v, want none", good, r.Verdict)
			}
		} else if r.Verdict != VerdictOK || !bytes.Equal(r.Payload, want) {
			t.Fatalf("%q with its trailer: %v payload %q, want ok %q", good, r.Verdict, r.Payload, want)
		}
		SplitNMEA(r.Payload, nil)

		cfg := testConfig()
		cfg.Checksum, cfg.Separator, cfg.MaxLineLength = kind, string(sep), 16
		cfg.Terminator = [...]Terminator{TermLF, TermCRLF, TermCR}[int(k)%3]
		s := newSensor(cfg, nil, nil)
		evs := s.cutLine(&lineState{}, s.take(&lineState{}, line, nil, stamp{}), stamp{})
		evs = s.cutLine(&lineState{}, s.take(&lineState{}, good, evs, stamp{}), stamp{})
		for _, ev := range evs {
			if len(ev.Message) > cfg.MaxLineLength {
				t.Fatalf("record of %d bytes, max_line_length %d", len(ev.Message), cfg.MaxLineLength)
			}
		}
		if st := s.Stats(); st.Lines != uint64(len(evs)) ||
			st.OK+st.None+st.Mismatches+st.Missing+st.Malformed != st.Lines {
			t.Fatalf("stats %+v for %d records", st, len(evs))
		}
	})
}

// within reports whether sub is a slice of b's memory.
func within(b, sub []byte) bool {
	if len(sub) > len(b) {
		return false
	}
	for i := 0; i+len(sub) <= len(b); i++ {
		if &b[i] == &sub[0] {
			return true
		}
	}
	return false
}
