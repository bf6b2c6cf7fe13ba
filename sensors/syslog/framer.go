package syslog

import (
	"bufio"
	"errors"
	"io"
	"math"
)

// frameFlags say how a stream message ended.
type frameFlags struct {
	truncated bool // longer than the limit; the rest was discarded
	original  int  // when truncated: its full length (announced or counted)
	partial   bool // the stream ended inside the frame
	octet     bool // octet-counted
}

// maxCountDigits bounds an octet count: more digits than this and the
// digits are taken as the start of a newline-framed message.
const maxCountDigits = 10

// framer splits a TCP or TLS stream into messages as RFC 6587 describes
// the practice: a frame starting with a digit is octet-counted (MSG-LEN
// SP MSG); anything else ends at LF or NUL (non-transparent framing).
// Each frame is detected on its own, so a sender may mix them. Digits not
// followed by a space within maxCountDigits start a newline-framed
// message instead. Empty frames are skipped. Memory is bounded by max:
// longer messages are cut to max and flagged, the rest discarded.
type framer struct {
	r   *bufio.Reader
	max int
	buf []byte
	err error // the error that ended a partial message, returned next
}

func newFramer(r *bufio.Reader, max int) *framer {
	return &framer{r: r, max: max, buf: make([]byte, 0, min(max, 4096))}
}

// next returns the next message, valid until the following call. At the
// end of the stream it returns a message cut short (flagged partial)
// first, then io.EOF or the reader's error.
func (f *framer) next() ([]byte, frameFlags, error) {
	if f.err != nil {
		// bufio.Reader hands out an error once; another read would wait
		// for another deadline, or block.
		return nil, frameFlags{}, f.err
	}
	for {
		f.buf = f.buf[:0]
		c, err := f.r.ReadByte()
		if err != nil {
			return nil, frameFlags{}, err
		}
		if !isDigit(c) {
			if c == '\n' || c == 0 {
				continue // empty frame
			}
			f.buf = append(f.buf, c)
			return f.line(1)
		}
		n := int64(c - '0')
		f.buf = append(f.buf, c)
		for {
			c, err = f.r.ReadByte()
			if err != nil {
				f.err = err
				return f.capped(frameFlags{partial: true})
			}
			switch {
			case isDigit(c) && len(f.buf) < maxCountDigits:
				n = n*10 + int64(c-'0')
				f.buf = append(f.buf, c)
				continue
			case c == ' ':
				if n == 0 {
					break // "0 ": an empty frame
				}
				return f.counted(n)
			case c == '\n' || c == 0:
				return f.capped(frameFlags{})
			default:
				f.buf = append(f.buf, c)
				return f.line(len(f.buf))
			}
			break
		}
	}
}

// capped returns the digits read so far as a message, cut to the limit.
func (f *framer) capped(fl frameFlags) ([]byte, frameFlags, error) {
	if len(f.buf) > f.max {
		fl.truncated, fl.original = true, len(f.buf)
		f.buf = f.buf[:f.max]
	}
	return f.buf, fl, nil
}

// counted reads an octet-counted message of n bytes.
func (f *framer) counted(n int64) ([]byte, frameFlags, error) {
	fl := frameFlags{octet: true}
	want := n
	if n > int64(f.max) {
		want, fl.truncated, fl.original = int64(f.max), true, int(min(n, math.MaxInt32))
	}
	f.buf = growTo(f.buf[:0], int(want))
	got, err := io.ReadFull(f.r, f.buf)
	f.buf = f.buf[:got]
	if err != nil {
		if got == 0 && errors.Is(err, io.EOF) {
			return nil, frameFlags{}, io.ErrUnexpectedEOF
		}
		f.err = err
		fl.partial = true
		return f.buf, fl, nil
	}
	if fl.truncated {
		rest := n - want
		for rest > 0 {
			d, err := f.r.Discard(int(min(rest, 1<<20)))
			rest -= int64(d)
			if err != nil {
				f.err = err
				fl.partial = true
				return f.buf, fl, nil
			}
		}
	}
	return f.buf, fl, nil
}

// line reads the rest of a newline-framed message; the first have bytes
// are already in f.buf.
func (f *framer) line(have int) ([]byte, frameFlags, error) {
	var fl frameFlags
	total := have
	if total > f.max {
		f.buf = f.buf[:f.max]
		fl.truncated = true
	}
	for {
		if f.r.Buffered() == 0 {
			if _, err := f.r.Peek(1); err != nil {
				f.err = err
				fl.partial = true
				fl.original = origIf(fl.truncated, total)
				return f.buf, fl, nil
			}
		}
		b, _ := f.r.Peek(f.r.Buffered())
		end := -1
		for i, c := range b {
			if c == '\n' || c == 0 {
				end = i
				break
			}
		}
		take := b
		if end >= 0 {
			take = b[:end]
		}
		total += len(take)
		if room := f.max - len(f.buf); room > 0 {
			f.buf = append(f.buf, take[:min(room, len(take))]...)
		}
		if total > f.max {
			fl.truncated = true
		}
		if end >= 0 {
			_, _ = f.r.Discard(end + 1)
			fl.original = origIf(fl.truncated, total)
			return f.buf, fl, nil
		}
		_, _ = f.r.Discard(len(b))
	}
}

func origIf(truncated bool, n int) int {
	if truncated {
		return n
	}
	return 0
}

func growTo(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
