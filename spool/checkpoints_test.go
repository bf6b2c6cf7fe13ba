package spool

import (
	"errors"
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
