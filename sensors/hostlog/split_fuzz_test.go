package hostlog

import (
	"bytes"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"
)

// emitted is a record as the sink would see it: its absolute offset.
type emitted struct {
	off   int
	text  string
	piece piece
}

// simulate cuts data as a tailer does: read in chunks of chunk bytes,
// batches committed whenever the batch is full or rng says so, and, when
// crashes, a crash now and then that throws away the batch in hand and
// starts over at the last commit with a fresh splitter. It returns the
// committed records.
func simulate(data []byte, maxLine int, start *regexp.Regexp, chunk int, rng *rand.Rand, crashes bool) []emitted {
	cfg := testConfig("/x").withDefaults()
	cfg.MaxLineBytes = maxLine
	cfg.Multiline.MaxLines = 4
	cfg.Multiline.MaxBytes = 3 * maxLine
	now := time.Unix(0, 0) // no timeouts: they depend on when, not what
	var out []emitted
	off, part, split := 0, 0, false
	for restarts := 0; ; restarts++ {
		s := newSplitter(cfg, start)
		s.reset(part, split)
		var pend []byte
		avail := off
		b := lineBatch{lineCost: 50}
		crashed := false
		for !crashed {
			eof := avail == len(data)
			s.take(&b, pend, now, eof)
			if eof {
				s.expire(&b, now, true)
			}
			if b.full() || eof && len(b.recs) > 0 || rng.IntN(4) == 0 {
				if crashes && restarts < 50 && rng.IntN(5) == 0 {
					crashed = true
					break
				}
				for _, r := range b.recs {
					out = append(out, emitted{off + r.start, string(pend[r.start:r.end]),
						piece{string(pend[r.start:r.end]), r.truncated, r.part, r.lines, r.continued}})
				}
				pos, p, sp := s.commit()
				off, part, split = off+pos, p, sp
				pend = pend[:copy(pend, pend[pos:])]
				s.shift(pos)
				b.reset()
				continue
			}
			if eof {
				return out
			}
			n := min(chunk, len(data)-avail)
			pend = append(pend, data[avail:avail+n]...)
			avail += n
		}
	}
}

// FuzzSplitter: however the bytes arrive and wherever the tailer crashes,
// the committed records are the same, and together with the line ends
// between them they are exactly the input.
func FuzzSplitter(f *testing.F) {
	f.Add([]byte("a\nbb\r\nccc\n\ndddd"), uint8(4), false, uint16(3), uint64(1))
	f.Add([]byte("2026 a\n at x\n at y\n2026 b\n1\n2\n3\n4\n5\n2026 c"), uint8(8), true, uint16(5), uint64(2))
	f.Add([]byte("0123456789abcdefghij\r\n\r\n01234567\r\nx"), uint8(8), false, uint16(1), uint64(3))
	f.Add(bytes.Repeat([]byte("2026 overlong line in an event\n continued\n"), 20), uint8(10), true, uint16(64), uint64(4))
	f.Add([]byte("\xff\xfe\n\xc3\x28\r\n\r\r\n"), uint8(2), true, uint16(2), uint64(5))
	start := regexp.MustCompile(`^\d{4} `)
	f.Fuzz(func(t *testing.T, data []byte, maxLine uint8, multiline bool, chunk uint16, seed uint64) {
		ml := 1 + int(maxLine%64)
		ch := 1 + int(chunk%4096)
		var re *regexp.Regexp
		if multiline {
			re = start
		}
		want := simulate(data, ml, re, len(data)+1, rand.New(rand.NewPCG(seed, 0)), false)
		got := simulate(data, ml, re, ch, rand.New(rand.NewPCG(seed, 1)), true)
		if len(got) != len(want) {
			t.Fatalf("%d records after crashes, %d without:\n%+v\n%+v", len(got), len(want), got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("record %d after crashes %+v, without %+v", i, got[i], want[i])
			}
		}
		// The records and the line ends between them are the input.
		at := 0
		for i, r := range want {
			gap := data[at:r.off]
			switch {
			case i == 0 && len(gap) == 0:
			case i > 0 && want[i-1].piece.truncated && r.piece.truncated && r.piece.part > 0 && len(gap) == 0:
			case string(gap) == "\n" || string(gap) == "\r\n":
			default:
				t.Fatalf("record %d at %d: %q between it and the one before", i, r.off, gap)
			}
			if string(data[r.off:r.off+len(r.text)]) != r.text {
				t.Fatalf("record %d at %d is not the input's bytes", i, r.off)
			}
			limit := ml // one line, or one piece of a long one
			if r.piece.lines > 1 {
				limit = 3 * ml // a multiline event (max_bytes is at most 3x here)
			}
			if len(r.text) > limit {
				t.Fatalf("record %d has %d bytes, more than %d", i, len(r.text), limit)
			}
			if !r.piece.truncated && r.piece.lines == 1 && bytes.IndexByte([]byte(r.text), '\n') >= 0 {
				t.Fatalf("record %d of one line holds a newline", i)
			}
			at = r.off + len(r.text)
		}
		if rest := string(data[at:]); rest != "" && rest != "\n" && rest != "\r\n" && !(len(want) == 0 && rest == "") {
			t.Fatalf("%q after the last record", rest)
		}
	})
}

// FuzzParsePosition: a checkpoint from the spool is outside input (an
// older or damaged version may have written it): it parses or errs, and
// what parses is sane and survives a round trip.
func FuzzParsePosition(f *testing.F) {
	f.Add([]byte(`{"dev":2049,"ino":131,"off":4096}`))
	f.Add([]byte(`{"dev":2049,"ino":131,"off":4096,"cont":true,"part":3,"split":true,"fpn":1024,"fp":18446744073709551615}`))
	f.Add([]byte(`{"off":-1}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePosition(b)
		if err != nil {
			return
		}
		if p.Off < 0 || p.FpLen < 0 || p.FpLen > fingerprintBytes || p.part() < 0 {
			t.Fatalf("accepted %q as %+v", b, p)
		}
		q, err := parsePosition(p.marshal())
		if err != nil || q != p {
			t.Fatalf("round trip of %+v: %+v, %v", p, q, err)
		}
	})
}
