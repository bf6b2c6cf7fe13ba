package syslog

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type frame struct {
	msg       string
	truncated bool
	original  int
	partial   bool
}

func TestFramer(t *testing.T) {
	cases := []struct {
		name   string
		stream string
		max    int
		want   []frame
	}{
		{"lf", "<13>a\n<13>b\n", 100, []frame{{msg: "<13>a"}, {msg: "<13>b"}}},
		{"nul", "<13>a\x00<13>b\x00", 100, []frame{{msg: "<13>a"}, {msg: "<13>b"}}},
		{"crlf keeps cr for the caller to trim", "<13>a\r\n", 100, []frame{{msg: "<13>a\r"}}},
		{"octet counted", "5 <13>a5 <13>b", 100, []frame{{msg: "<13>a"}, {msg: "<13>b"}}},
		{"octet counted holds lf", "6 <13>a\n5 <13>b", 100, []frame{{msg: "<13>a\n"}, {msg: "<13>b"}}},
		{"mixed framings", "5 <13>a<13>b\n5 <13>c", 100, []frame{{msg: "<13>a"}, {msg: "<13>b"}, {msg: "<13>c"}}},
		{"empty frames skipped", "\n\n\x000 5 <13>a\n", 100, []frame{{msg: "<13>a"}}},
		{"digits then text is a line", "2026-11-23 plain\n", 100, []frame{{msg: "2026-11-23 plain"}}},
		{"digits then lf", "12345\n", 100, []frame{{msg: "12345"}}},
		{"too many digits is a line", "12345678901 x\n", 100, []frame{{msg: "12345678901 x"}}},
		{"octet count truncated", "10 0123456789" + "5 <13>z", 4, []frame{{msg: "0123", truncated: true, original: 10}, {msg: "<13>", truncated: true, original: 5}}},
		{"line truncated", "0123456789\n<13>z\n", 5, []frame{{msg: "01234", truncated: true, original: 10}, {msg: "<13>z"}}},
		{"partial line at eof", "<13>a\n<13>b", 100, []frame{{msg: "<13>a"}, {msg: "<13>b", partial: true}}},
		{"partial octet frame", "10 <13>ab", 100, []frame{{msg: "<13>ab", partial: true}}},
		{"partial truncated line", "0123456789", 4, []frame{{msg: "0123", truncated: true, original: 10, partial: true}}},
		{"digits only at eof", "123", 100, []frame{{msg: "123", partial: true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A tiny read buffer exercises frames that span reads.
			fr := newFramer(bufio.NewReaderSize(strings.NewReader(c.stream), 16), c.max)
			var got []frame
			for {
				msg, fl, err := fr.next()
				if err != nil {
					require.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
					break
				}
				got = append(got, frame{msg: string(msg), truncated: fl.truncated, original: fl.original, partial: fl.partial})
			}
			assert.Equal(t, c.want, got)
		})
	}
}

// onceReader yields its data, then its error, and fails the test if read
// after that: a reader with a deadline would wait a whole idle period.
type onceReader struct {
	t    *testing.T
	data []byte
	err  error
	done bool
}

func (r *onceReader) Read(b []byte) (int, error) {
	if r.done {
		r.t.Fatal("read again after the error")
	}
	if len(r.data) > 0 {
		n := copy(b, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	r.done = true
	return 0, r.err
}

// TestFramerErrorAfterPartial: the error that cut a message short is
// returned next, without reading again.
func TestFramerErrorAfterPartial(t *testing.T) {
	for _, stream := range []string{"<13>cut", "12", "10 <13>"} {
		boom := errors.New("deadline")
		fr := newFramer(bufio.NewReaderSize(&onceReader{t: t, data: []byte(stream), err: boom}, 16), 100)
		msg, fl, err := fr.next()
		require.NoError(t, err, stream)
		assert.True(t, fl.partial, stream)
		assert.Equal(t, strings.TrimPrefix(stream, "10 "), string(msg))
		_, _, err = fr.next()
		assert.ErrorIs(t, err, boom, stream)
	}
}
