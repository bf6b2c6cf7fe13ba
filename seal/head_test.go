package seal

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
)

func testKeys(t *testing.T) (*Keys, []byte) {
	t.Helper()
	dir := t.TempDir()
	pub, err := Provision(dir)
	require.NoError(t, err)
	k, err := OpenKeys(dir, 0, nil, false)
	require.NoError(t, err)
	return k, pub
}

func TestSealRoundTrip(t *testing.T) {
	k, pub := testKeys(t)
	next, err := k.Prepare()
	require.NoError(t, err)
	h := Head{Gateway: "gw-1", Epoch: 0, First: 1000, Size: 42, Root: merkle.LeafHash([]byte("x")), Time: 1234,
		Quality: event.Quality{Source: event.TimePTP, State: event.ClockLocked, ErrorBound: 150},
		NextKey: next, Began: "new spool", Evicted: []Declared{{Seq: 1003, Leaf: merkle.LeafHash([]byte("y"))}}}
	b, err := Sign(&h, k)
	require.NoError(t, err)
	got, err := Open(b, pub)
	require.NoError(t, err)
	require.Equal(t, h, got)
	_, err = Open(b, next)
	require.True(t, errors.Is(err, ErrSignature), "the next key must not verify this epoch: %v", err)
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x20
		_, err := Open(c, pub)
		require.Error(t, err, "byte %d changed and the seal still verified", i)
	}
	ev := Event(&h, b)
	sb, ok := FromEvent(&ev)
	require.True(t, ok)
	require.Equal(t, b, sb)
	enc, err := ev.MarshalBinary()
	require.NoError(t, err)
	var dec event.Event
	require.NoError(t, dec.UnmarshalBinary(enc))
	sb, ok = FromEvent(&dec)
	require.True(t, ok)
	require.Equal(t, b, sb)
}

func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	Provision(dir)
	k, _ := OpenKeys(dir, 0, nil, false)
	next, _ := k.Prepare()
	h := Head{Gateway: "gw", First: 5, Size: 3, NextKey: next, Evicted: []Declared{{Seq: 6}}}
	b, _ := Sign(&h, k)
	f.Add(b)
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, st, sig, err := Parse(b)
		if err != nil {
			return
		}
		if len(sig) != 64 || !bytes.HasPrefix(b, st) {
			t.Fatal("parse split the seal wrongly")
		}
		again, err := h.statement()
		if err != nil {
			t.Fatalf("parsed head does not encode: %v", err)
		}
		if !bytes.Equal(again, st) {
			t.Fatalf("parse and encode disagree")
		}
	})
}
