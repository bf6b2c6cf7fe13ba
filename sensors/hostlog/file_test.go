package hostlog

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTakeSplitsLines(t *testing.T) {
	type piece struct {
		text      string
		truncated bool
	}
	tests := []struct {
		name     string
		pend     string
		cont     bool
		atEOF    bool
		want     []piece
		wantPos  int
		wantCont bool
	}{
		{"empty", "", false, false, nil, 0, false},
		{"partial only", "abc", false, false, nil, 0, false},
		{"lines and a partial", "a\nbc\r\nd", false, false, []piece{{"a", false}, {"bc", false}}, 6, false},
		{"empty lines", "\n\r\n", false, false, []piece{{"", false}, {"", false}}, 3, false},
		{"only the last \\r is stripped", "a\r\r\n", false, false, []piece{{"a\r", false}}, 4, false},
		{"exactly max with crlf", "12345678\r\n", false, false, []piece{{"12345678", false}}, 10, false},
		{"max and a pending \\r waits", "12345678\r", false, false, nil, 0, false},
		{"max+2 without newline gives a piece", "1234567890", false, false, []piece{{"12345678", true}}, 8, true},
		{"overlong complete line", "1234567890abcdefgh\n", false, false,
			[]piece{{"12345678", true}, {"90abcdef", true}, {"gh", true}}, 19, false},
		{"rest of a line cut earlier", "xy\nz\n", true, false, []piece{{"xy", true}, {"z", false}}, 5, false},
		{"end of a finished file", "a\nbc", false, true, []piece{{"a", false}, {"bc", false}}, 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b lineBatch
			pend := []byte(tt.pend)
			pos, cont := b.take(pend, 0, tt.cont, 8, tt.atEOF)
			var got []piece
			for _, l := range b.lines {
				got = append(got, piece{string(pend[l.start:l.end]), l.truncated})
			}
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.wantPos, pos)
			require.Equal(t, tt.wantCont, cont)
		})
	}
}

func TestPositionRoundTrip(t *testing.T) {
	p := position{Dev: 2049, Ino: 131, Off: 4096}
	require.JSONEq(t, `{"dev":2049,"ino":131,"off":4096}`, string(p.marshal()))
	got, err := parsePosition(p.marshal())
	require.NoError(t, err)
	require.Equal(t, p, got)
	_, err = parsePosition([]byte("garbage"))
	require.Error(t, err)
	_, err = parsePosition([]byte(`{"off":-1}`))
	require.Error(t, err)
}
