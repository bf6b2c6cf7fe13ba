package hostlog

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// piece is a record the splitter took, as the tests check it.
type piece struct {
	text      string
	truncated bool
	part      int
	lines     int
	continued bool
}

func takeAll(s *splitter, pend []byte, atEOF bool, now time.Time) []piece {
	var b lineBatch
	s.take(&b, pend, now, atEOF)
	if atEOF {
		s.expire(&b, now, true)
	}
	var got []piece
	for _, r := range b.recs {
		got = append(got, piece{string(pend[r.start:r.end]), r.truncated, r.part, r.lines, r.continued})
	}
	return got
}

func testSplitter(maxLine int, start string) splitter {
	cfg := testConfig("/x").withDefaults()
	cfg.MaxLineBytes = maxLine
	cfg.Multiline.StartPattern = start
	cfg.Multiline.MaxLines = 3
	cfg.Multiline.MaxBytes = 20
	var re *regexp.Regexp
	if start != "" {
		re = regexp.MustCompile(start)
	}
	return newSplitter(cfg, re)
}

func TestSplitterLines(t *testing.T) {
	l := func(s string) piece { return piece{text: s, lines: 1} }
	cut := func(s string, part int) piece { return piece{text: s, truncated: true, part: part, lines: 1} }
	tests := []struct {
		name     string
		pend     string
		part     int
		atEOF    bool
		want     []piece
		wantPos  int
		wantPart int
	}{
		{"empty", "", 0, false, nil, 0, 0},
		{"partial only", "abc", 0, false, nil, 0, 0},
		{"lines and a partial", "a\nbc\r\nd", 0, false, []piece{l("a"), l("bc")}, 6, 0},
		{"empty lines", "\n\r\n", 0, false, []piece{l(""), l("")}, 3, 0},
		{"only the last \\r is stripped", "a\r\r\n", 0, false, []piece{l("a\r")}, 4, 0},
		{"exactly max with crlf", "12345678\r\n", 0, false, []piece{l("12345678")}, 10, 0},
		{"max and a pending \\r waits", "12345678\r", 0, false, nil, 0, 0},
		{"max+2 without newline gives a piece", "1234567890", 0, false, []piece{cut("12345678", 0)}, 8, 1},
		{"overlong complete line", "1234567890abcdefgh\n", 0, false,
			[]piece{cut("12345678", 0), cut("90abcdef", 1), cut("gh", 2)}, 19, 0},
		{"rest of a line cut earlier", "xy\nz\n", 3, false, []piece{cut("xy", 3), l("z")}, 5, 0},
		{"end of a finished file", "a\nbc", 0, true, []piece{l("a"), l("bc")}, 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSplitter(8, "")
			s.reset(tt.part, false)
			require.Equal(t, tt.want, takeAll(&s, []byte(tt.pend), tt.atEOF, time.Now()))
			pos, part, _ := s.commit()
			require.Equal(t, tt.wantPos, pos)
			require.Equal(t, tt.wantPart, part)
		})
	}
}

func TestSplitterMultiline(t *testing.T) {
	ev := func(s string, n int) piece { return piece{text: s, lines: n} }
	tests := []struct {
		name    string
		pend    string
		atEOF   bool
		want    []piece
		wantPos int // the checkpoint: the first byte of the open event
	}{
		{"one line waits for the next start", "2026 a\n", false, nil, 0},
		{"a start ends the event before it", "2026 a\n at x\n at y\n2026 b\n", false,
			[]piece{ev("2026 a\n at x\n at y", 3)}, 19},
		{"crlf inside an event is kept", "2026 a\r\n at x\r\n2026 b\r\n", false,
			[]piece{ev("2026 a\r\n at x", 2)}, 15},
		{"leading lines without a start are an event", " x\n y\n2026 a\n", false, []piece{ev(" x\n y", 2)}, 6},
		{"max_lines cuts and the rest continues", "2026 a\n1\n2\n3\n4\n", false,
			[]piece{ev("2026 a\n1\n2", 3)}, 11},
		{"max_bytes cuts", "2026 a\n1234567\n1234567\n1234567\n", false,
			[]piece{ev("2026 a\n1234567", 2)}, 15},
		{"the end of a finished file ends the event", "2026 a\n at x\n at", true,
			[]piece{ev("2026 a\n at x\n at", 3)}, 16},
		{"an overlong line ends the event and goes in pieces", "2026 a\n123456789012\n2026 b\n", false,
			[]piece{ev("2026 a", 1), {text: "12345678", truncated: true, lines: 1}, {text: "9012", truncated: true, part: 1, lines: 1}}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSplitter(8, `^\d{4} `)
			require.Equal(t, tt.want, takeAll(&s, []byte(tt.pend), tt.atEOF, time.Now()))
			pos, _, _ := s.commit()
			require.Equal(t, tt.wantPos, pos)
		})
	}
}

func TestSplitterMultilineLimitCutIsFlaggedAndSurvivesShift(t *testing.T) {
	s := testSplitter(8, `^\d{4} `)
	pend := []byte("2026 a\n1\n2\n3\n4\n")
	require.Equal(t, []piece{{text: "2026 a\n1\n2", lines: 3}}, takeAll(&s, pend, false, time.Now()))
	pos, part, split := s.commit()
	require.Equal(t, 11, pos)
	require.Equal(t, 0, part)
	require.True(t, split, "the open event continues a cut one")
	s.shift(pos)
	pend = append(pend[pos:], "2026 b\n"...)
	require.Equal(t, []piece{{text: "3\n4", lines: 2, continued: true}}, takeAll(&s, pend, false, time.Now()))

	// After a restart at the checkpoint the flag comes from the position.
	s = testSplitter(8, `^\d{4} `)
	s.reset(0, true)
	require.Equal(t, []piece{{text: "3\n4", lines: 2, continued: true}}, takeAll(&s, []byte("3\n4\n2026 b\n"), false, time.Now()))
}

func TestSplitterMultilineTimeout(t *testing.T) {
	s := testSplitter(8, `^\d{4} `)
	t0 := time.Now()
	pend := []byte("2026 a\n at x\n")
	var b lineBatch
	s.take(&b, pend, t0, false)
	s.expire(&b, t0.Add(time.Second), false)
	require.Empty(t, b.recs, "not yet")
	require.Equal(t, t0.Add(s.timeout), s.deadline())
	s.expire(&b, t0.Add(s.timeout), false)
	require.Len(t, b.recs, 1)
	pos, _, _ := s.commit()
	require.Equal(t, len(pend), pos)
	require.True(t, s.deadline().IsZero())
}

func TestPositionRoundTrip(t *testing.T) {
	p := position{Dev: 2049, Ino: 131, Off: 4096, FpLen: 1024, Fp: 77}
	require.JSONEq(t, `{"dev":2049,"ino":131,"off":4096,"fpn":1024,"fp":77}`, string(p.marshal()))
	got, err := parsePosition(p.marshal())
	require.NoError(t, err)
	require.Equal(t, p, got)
	for _, bad := range []string{"garbage", `{"off":-1}`, `{"fpn":1025}`, `{"fpn":-1}`, `{"part":-2}`} {
		_, err = parsePosition([]byte(bad))
		require.Error(t, err, bad)
	}
}

// Positions written before the fingerprint existed still resume.
func TestPositionOldFormat(t *testing.T) {
	p, err := parsePosition([]byte(`{"dev":2049,"ino":131,"off":4096,"cont":true}`))
	require.NoError(t, err)
	require.Equal(t, 1, p.part(), "an old continued position's next piece is at least the second")
	ok, err := p.fingerprint().matches(bytes.NewReader(nil), 0)
	require.NoError(t, err)
	require.True(t, ok, "no fingerprint matches by device and inode alone")
}

func TestFingerprint(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 200)
	short, err := takeFingerprint(bytes.NewReader(data[:100]), 100)
	require.NoError(t, err)
	require.Equal(t, 100, short.n)
	full, err := takeFingerprint(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	require.True(t, full.complete())

	for _, tt := range []struct {
		name string
		fp   fingerprint
		file []byte
		want bool
	}{
		{"short fingerprint, file grown", short, data, true},
		{"short fingerprint, same file", short, data[:100], true},
		{"file shorter than the fingerprint", short, data[:99], false},
		{"first bytes changed", short, append([]byte("X"), data[1:]...), false},
		{"full fingerprint", full, data, true},
		{"change after the fingerprinted bytes", full, append(append([]byte{}, data[:1500]...), 'X'), true},
		{"empty fingerprint", fingerprint{}, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fp.matches(bytes.NewReader(tt.file), int64(len(tt.file)))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
