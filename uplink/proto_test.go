package uplink

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFrameRoundTrip(t *testing.T) {
	payload := AppendRecord(AppendRecord(nil, []byte("one record, 21 bytes.")), []byte("another record, here."))
	msgs := []Message{
		&Hello{Version: ProtocolVersion, Gateway: "gw-01", BootID: "b0", Floor: 9, MaxRecords: 1000, MaxBytes: 1 << 20},
		&Welcome{Version: ProtocolVersion, Highest: 1<<63 + 5, MaxRecords: 500, MaxBytes: 64 << 10},
		&Hello{Version: 2, Gateway: "gw-01", BootID: "b0", Floor: 9}, // a version 2 gateway states no limits
		&Welcome{Version: 2, Highest: 7},
		&Data{First: 10, Count: 2, Codec: CodecNone, Payload: payload},
		&Data{First: 12, Count: 2, Codec: CodecZstd, Payload: []byte{1, 2, 3}},
		&Ack{Cumulative: 11},
		&Error{Code: ErrIdentity, Message: "no"},
		&Ping{Nonce: 77},
		&Pong{Nonce: 1 << 40},
		&ConfigStatus{Applied: 6, Highest: 7, Version: 7, Result: ConfigRolledBack, Error: "the uplink did not deliver",
			Labels: []Label{{"region", "north"}, {"site", "pump-3"}}},
		&ConfigStatus{},
		&ConfigOffer{Version: 8, Size: 1200, Digest: DigestOf([]byte("bundle"))},
		&ConfigPull{Version: 8, Digest: DigestOf([]byte("bundle"))},
		&ConfigBundle{Version: 8, Bundle: []byte("bundle")},
	}
	var stream []byte
	for _, m := range msgs {
		stream = AppendFrame(stream, m)
	}
	r := bufio.NewReader(bytes.NewReader(stream))
	var buf []byte
	for _, want := range msgs {
		typ, body, b, err := ReadFrame(r, buf, DefaultMaxFrame)
		require.NoError(t, err)
		buf = b
		require.Equal(t, want.Type(), typ)
		got, err := Decode(typ, body)
		require.NoError(t, err)
		if d, ok := got.(*Data); ok {
			d.Payload = bytes.Clone(d.Payload) // body aliases buf
		}
		if b, ok := got.(*ConfigBundle); ok {
			b.Bundle = bytes.Clone(b.Bundle)
		}
		require.Equal(t, want, got)
	}
}

// TestConfigMessageBounds: what a peer declares in the configuration
// messages is checked before anything is sized by it.
func TestConfigMessageBounds(t *testing.T) {
	many := &ConfigStatus{}
	for i := range MaxConfigLabels + 1 {
		many.Labels = append(many.Labels, Label{Key: fmt.Sprintf("k%03d", i), Value: "v"})
	}
	unsorted := &ConfigStatus{Labels: []Label{{"b", "1"}, {"a", "2"}}}
	big := &ConfigBundle{Version: 1, Bundle: make([]byte, MaxBundleBytes+1)}
	for _, c := range []struct {
		m    Message
		want string
	}{
		{many, "33 labels, more than 32"},
		{unsorted, "labels not sorted"},
		{big, "more than 262144"},
		{&ConfigBundle{Version: 0, Bundle: []byte("x")}, "version 0"},
		{&ConfigStatus{Error: strings.Repeat("x", 5000)}, "too long"},
	} {
		body := c.m.appendBody(nil)
		_, err := Decode(c.m.Type(), body)
		require.ErrorContains(t, err, c.want)
	}
	_, err := Decode(MsgConfigOffer, []byte{1, 2, 3})
	require.ErrorContains(t, err, "truncated")
}

// TestFrameReaderLimitByType: with Limit set, a frame is refused by its
// type's bound before its body is read, whatever Max allows.
func TestFrameReaderLimitByType(t *testing.T) {
	status := AppendFrame(nil, &ConfigStatus{Error: strings.Repeat("x", 4000), Labels: []Label{{"a", strings.Repeat("y", 4000)}, {"b", strings.Repeat("z", 4000)}, {"c", strings.Repeat("w", 4000)}, {"d", strings.Repeat("v", 4000)}}})
	require.Greater(t, len(status), HelloMaxFrame)
	// Only the header and the type byte are there: the reader must not
	// wait for the rest to refuse it.
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write(status[:5]) }()
	fr := NewFrameReader(bufio.NewReader(pr), DefaultMaxFrame)
	fr.Limit = ControlFrameMax
	_, _, err := fr.Next()
	require.ErrorIs(t, err, ErrFrameTooLarge)
	require.ErrorContains(t, err, "config_status frame")
	pw.Close()

	bundle := AppendFrame(nil, &ConfigBundle{Version: 1, Bundle: make([]byte, MaxBundleBytes)})
	fr = NewFrameReader(bufio.NewReader(bytes.NewReader(bundle)), DefaultMaxFrame)
	fr.Limit = ControlFrameMax
	typ, _, err := fr.Next()
	require.NoError(t, err)
	require.Equal(t, MsgConfigBundle, typ)
}

func TestReadFrameBounds(t *testing.T) {
	huge := binary.BigEndian.AppendUint32(nil, 2<<30)
	_, _, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(huge)), nil, DefaultMaxFrame)
	require.ErrorContains(t, err, "exceeds the 16777216-byte limit")

	empty := binary.BigEndian.AppendUint32(nil, 0)
	_, _, _, err = ReadFrame(bufio.NewReader(bytes.NewReader(empty)), nil, DefaultMaxFrame)
	require.ErrorContains(t, err, "empty frame")

	short := append(binary.BigEndian.AppendUint32(nil, 10), 1, 2)
	_, _, _, err = ReadFrame(bufio.NewReader(bytes.NewReader(short)), nil, DefaultMaxFrame)
	require.ErrorContains(t, err, "read 10-byte frame")
}

// TestFrameReaderGrowsAsBytesArrive: a header announcing a large frame
// costs nothing until its bytes come, and then the buffer grows with them,
// each step reserved first.
func TestFrameReaderGrowsAsBytesArrive(t *testing.T) {
	pr, pw := io.Pipe()
	fr := NewFrameReader(bufio.NewReaderSize(pr, 4096), DefaultMaxFrame)
	var reserved []int
	steps := make(chan int, 16)
	fr.Reserve = func(n int) error { reserved = append(reserved, n); steps <- n; return nil }
	type result struct {
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		_, body, err := fr.Next()
		done <- result{body, err}
	}()
	const n = 1 << 20
	_, err := pw.Write(append(binary.BigEndian.AppendUint32(nil, n), byte(MsgData)))
	require.NoError(t, err)
	require.Equal(t, frameChunk, <-steps, "one byte in, one chunk reserved")
	select {
	case g := <-steps:
		t.Fatalf("reserved %d more with nothing more sent", g)
	case <-time.After(50 * time.Millisecond):
	}
	_, err = pw.Write(make([]byte, n-1))
	require.NoError(t, err)
	r := <-done
	require.NoError(t, r.err)
	require.Len(t, r.body, n-1)
	sum := 0
	for _, g := range reserved {
		sum += g
	}
	require.Equal(t, n, sum)
	require.Equal(t, n, fr.Held())
	require.Equal(t, []int{32 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10}, reserved)
	require.Equal(t, n, fr.Shrink(64<<10))
	require.Zero(t, fr.Held())

	refuse := errors.New("over budget")
	fr = NewFrameReader(bufio.NewReader(bytes.NewReader(append(binary.BigEndian.AppendUint32(nil, 100), make([]byte, 100)...))), 1000)
	fr.Reserve = func(int) error { return refuse }
	_, _, err = fr.Next()
	require.ErrorIs(t, err, refuse)
}

func TestDecodeRejects(t *testing.T) {
	cases := map[string]struct {
		typ  MsgType
		body []byte
		want string
	}{
		"unknown type":       {99, nil, "unknown message type 99"},
		"hello trailing":     {MsgHello, append((&Hello{Gateway: "g"}).appendBody(nil), 0), "trailing"},
		"hello v3 no limits": {MsgHello, append([]byte{3}, (&Hello{Version: 2, Gateway: "g"}).appendBody(nil)[1:]...), "bad varint"},
		"data zero":          {MsgData, (&Data{First: 1, Count: 0}).appendBody(nil), "bad sequence range"},
		"data seq 0":         {MsgData, (&Data{First: 0, Count: 1}).appendBody(nil), "bad sequence range"},
		"data wraps":         {MsgData, (&Data{First: 1<<64 - 1, Count: 2}).appendBody(nil), "bad sequence range"},
		"data codec":         {MsgData, (&Data{First: 1, Count: 1, Codec: 7}).appendBody(nil), "unknown codec 7"},
		"ack ranges":         {MsgAck, []byte{5, 1}, "selective ack"},
		"long string":        {MsgHello, []byte{1, 0xff, 0xff, 0x03}, "too long"},
		"bad varint":         {MsgWelcome, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "bad varint"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(c.typ, c.body)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestSplitRecords(t *testing.T) {
	a, b, c := strings.Repeat("a", MinRecord), strings.Repeat("b", 100), strings.Repeat("c", 300)
	p := AppendRecord(AppendRecord(AppendRecord(nil, []byte(a)), []byte(b)), []byte(c))
	var got []string
	require.NoError(t, SplitRecords(p, 3, func(i uint64, r []byte) error {
		got = append(got, string(r))
		return nil
	}))
	require.Equal(t, []string{a, b, c}, got)
	nop := func(uint64, []byte) error { return nil }
	require.ErrorContains(t, SplitRecords(p, 2, nop), "more than the 2 records")
	require.ErrorContains(t, SplitRecords(p, 4, nop), "holds 3 records, 4 announced")
	require.ErrorContains(t, SplitRecords([]byte{90, 1}, 1, nop), "exceeds payload")
	require.ErrorContains(t, SplitRecords(AppendRecord(nil, nil), 1, nop), "record 0: 0 bytes, shorter than the 15-byte minimum")
	require.ErrorContains(t, SplitRecords(AppendRecord(p, []byte("short")), 4, nop), "record 3: 5 bytes")
}

func TestBounds(t *testing.T) {
	// The gateway's defaults: 1000 records of 1 MiB.
	require.Equal(t, 1<<20+3000, PayloadBound(1000, 1<<20))
	// A single record of the largest size fits whatever the byte limit.
	require.Equal(t, MaxRecordBytes+3, PayloadBound(1, MinBatchBytes))
	require.Greater(t, FrameBound(1000, 1<<20), PayloadBound(1000, 1<<20))
	require.LessOrEqual(t, FrameBound(MaxBatchRecords, MaxBatchBytes), DefaultMaxFrame)
}

func FuzzDecode(f *testing.F) {
	for _, m := range []Message{
		&Hello{Version: 2, Gateway: "gw", BootID: "b", Floor: 3}, &Welcome{Version: 2, Highest: 7},
		&Ping{Nonce: 1}, &Pong{Nonce: 2}, &Data{First: 5, Count: 1, Codec: CodecZstd, Payload: []byte{0x28, 0xb5, 0x2f, 0xfd}},
		&Data{First: 1, Count: 1, Payload: AppendRecord(nil, []byte("x"))}, &Ack{Cumulative: 3},
		&Error{Code: ErrProtocol, Message: "bad"},
		&ConfigStatus{Applied: 1, Highest: 2, Version: 2, Result: "refused", Error: "why", Labels: []Label{{"a", "b"}}},
		&ConfigOffer{Version: 3, Size: 10}, &ConfigPull{Version: 3}, &ConfigBundle{Version: 3, Bundle: []byte("x")},
	} {
		f.Add(AppendFrame(nil, m))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		var buf []byte
		for {
			typ, body, b, err := ReadFrame(r, buf, 1<<16)
			if err != nil {
				return
			}
			buf = b
			m, err := Decode(typ, body)
			if err != nil {
				continue
			}
			if d, ok := m.(*Data); ok {
				_ = SplitRecords(d.Payload, d.Count, func(uint64, []byte) error { return nil })
			}
			// A decoded message must encode back to the body it came from.
			if again := m.appendBody(nil); m.Type() != MsgAck && !bytes.Equal(again, body) {
				if _, err := Decode(typ, again); err != nil {
					t.Fatalf("re-encoded %s does not decode: %v", typ, err)
				}
			}
		}
	})
}

func TestCompressRoundTrip(t *testing.T) {
	plain := bytes.Repeat(AppendRecord(nil, []byte("Nov 22 10:00:01 host sshd[1]: Accepted publickey")), 200)
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			c, err := NewCompressor(codec, 3)
			require.NoError(t, err)
			defer c.Close()
			packed := c.Compress(nil, plain)
			if codec == CodecZstd {
				require.Less(t, len(packed), len(plain)/5, "repetitive log lines compress well")
			}
			d, err := NewDecompressor(len(plain))
			require.NoError(t, err)
			defer d.Close()
			got, err := d.Decompress(codec, packed, nil)
			require.NoError(t, err)
			require.Equal(t, plain, got)

			small, err := NewDecompressor(len(plain) - 1)
			require.NoError(t, err)
			defer small.Close()
			_, err = small.Decompress(codec, packed, nil)
			require.ErrorIs(t, err, ErrTooLarge)
		})
	}
}
