package spool

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckpointsByPrefix(t *testing.T) {
	s := openTemp(t)
	_, err := s.appendBytes(payloads("a", 1), []Checkpoint{
		{Source: "fim:/etc/passwd", Position: []byte("p1")},
		{Source: "fim:/etc/group", Position: []byte("g1")},
		{Source: "file:/var/log/messages", Position: []byte("f1")},
		{Source: "fim:/etc/empty", Position: nil},
		{Source: "fi", Position: []byte("short")},
	})
	require.NoError(t, err)
	// A later commit replaces a position; the listing shows the newest.
	_, err = s.appendBytes(nil, []Checkpoint{{Source: "fim:/etc/passwd", Position: []byte("p2")}})
	require.NoError(t, err)

	list := func(prefix string) map[string]string {
		got := map[string]string{}
		var order []string
		require.NoError(t, s.Checkpoints(prefix, func(source string, pos []byte) error {
			require.NotNil(t, pos, source)
			got[source] = string(pos)
			order = append(order, source)
			return nil
		}))
		require.IsIncreasing(t, order)
		return got
	}

	tests := []struct {
		prefix string
		want   map[string]string
	}{
		{"fim:", map[string]string{"fim:/etc/passwd": "p2", "fim:/etc/group": "g1", "fim:/etc/empty": ""}},
		{"fim:/etc/p", map[string]string{"fim:/etc/passwd": "p2"}},
		{"file:", map[string]string{"file:/var/log/messages": "f1"}},
		{"nothing:", map[string]string{}},
		{"", map[string]string{
			"fim:/etc/passwd": "p2", "fim:/etc/group": "g1", "fim:/etc/empty": "",
			"file:/var/log/messages": "f1", "fi": "short",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			require.Equal(t, tt.want, list(tt.prefix))
		})
	}
}

func TestCheckpointsStopsOnError(t *testing.T) {
	s := openTemp(t)
	_, err := s.appendBytes(nil, []Checkpoint{
		{Source: "x:1", Position: []byte("1")},
		{Source: "x:2", Position: []byte("2")},
		{Source: "x:3", Position: []byte("3")},
	})
	require.NoError(t, err)
	stop := errors.New("stop")
	calls := 0
	err = s.Checkpoints("x:", func(string, []byte) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 2, calls)
}

func TestCheckpointsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	_, err := s.appendBytes(nil, []Checkpoint{{Source: "fim:/a", Position: []byte("A")}})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Checkpoints("", func(string, []byte) error { return nil }), ErrClosed)

	s = openAt(t, dir)
	got := map[string]string{}
	require.NoError(t, s.Checkpoints("fim:", func(source string, pos []byte) error {
		got[source] = string(pos)
		return nil
	}))
	require.Equal(t, map[string]string{"fim:/a": "A"}, got)
}

func TestCheckpointDelete(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	list := func(s *Spool) map[string]string {
		t.Helper()
		got := map[string]string{}
		require.NoError(t, s.Checkpoints("fim:", func(source string, pos []byte) error {
			got[source] = string(pos)
			return nil
		}))
		return got
	}
	_, err := s.appendBytes(nil, []Checkpoint{
		{Source: "fim:/a", Position: []byte("A")},
		{Source: "fim:/b", Position: []byte("B")},
		{Source: "fim:/c", Position: []byte("C")},
	})
	require.NoError(t, err)

	t.Run("alone", func(t *testing.T) {
		first, err := s.appendBytes(nil, []Checkpoint{{Source: "fim:/a", Position: []byte("ignored"), Delete: true}})
		require.NoError(t, err)
		require.Zero(t, first)
		pos, err := s.Checkpoint("fim:/a")
		require.NoError(t, err)
		require.Nil(t, pos)
		require.Equal(t, map[string]string{"fim:/b": "B", "fim:/c": "C"}, list(s))
	})

	t.Run("with records", func(t *testing.T) {
		before := s.Stats().Records
		first, err := s.appendBytes(payloads("d", 2), []Checkpoint{
			{Source: "fim:/b", Delete: true},
			{Source: "fim:/d", Position: []byte("D")},
		})
		require.NoError(t, err)
		require.NotZero(t, first)
		require.Equal(t, before+2, s.Stats().Records)
		recs, err := s.Read(first, 10, 0)
		require.NoError(t, err)
		require.Len(t, recs, 2)
		require.Equal(t, map[string]string{"fim:/c": "C", "fim:/d": "D"}, list(s))
	})

	t.Run("missing", func(t *testing.T) {
		_, err := s.appendBytes(payloads("m", 1), []Checkpoint{
			{Source: "fim:/never", Delete: true},
			{Source: "fim:/a", Delete: true}, // deleted already
		})
		require.NoError(t, err)
		pos, err := s.Checkpoint("fim:/never")
		require.NoError(t, err)
		require.Nil(t, pos)
		require.Equal(t, map[string]string{"fim:/c": "C", "fim:/d": "D"}, list(s))
	})

	t.Run("last wins", func(t *testing.T) {
		_, err := s.appendBytes(nil, []Checkpoint{
			{Source: "fim:/e", Position: []byte("E")},
			{Source: "fim:/e", Delete: true},
			{Source: "fim:/d", Delete: true},
			{Source: "fim:/d", Position: []byte("D2")},
		})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"fim:/c": "C", "fim:/d": "D2"}, list(s))
	})

	t.Run("no source", func(t *testing.T) {
		_, err := s.appendBytes(nil, []Checkpoint{{Delete: true}})
		require.Error(t, err)
	})

	t.Run("survives reopen", func(t *testing.T) {
		require.NoError(t, s.Close())
		s = openAt(t, dir)
		for _, src := range []string{"fim:/a", "fim:/b", "fim:/e"} {
			pos, err := s.Checkpoint(src)
			require.NoError(t, err)
			require.Nil(t, pos, src)
		}
		require.Equal(t, map[string]string{"fim:/c": "C", "fim:/d": "D2"}, list(s))
	})
}

// Deletions count against MaxAppendRecords as any checkpoint does.
func TestCheckpointDeleteLimit(t *testing.T) {
	s := openTemp(t)
	cps := make([]Checkpoint, MaxAppendRecords)
	for i := range cps {
		cps[i] = Checkpoint{Source: fmt.Sprintf("fim:/%d", i), Delete: true}
	}
	_, err := s.appendBytes(payloads("x", 1), cps)
	require.ErrorContains(t, err, "split the batch")
	_, err = s.appendBytes(nil, cps)
	require.NoError(t, err)
}
