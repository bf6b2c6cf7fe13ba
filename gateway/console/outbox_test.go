package console

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOutboxKeepsUntilSent(t *testing.T) {
	dir := t.TempDir()
	o := OpenOutbox(dir)
	now := time.Now()
	var want []string
	for i := range 100 {
		r := NewRecord(now, ActionCommand, "/dev/ttyS0", "technician")
		r.Command = strings.Repeat("x", i%7+1)
		require.NoError(t, o.Add(r))
		want = append(want, r.ID)
	}
	require.Equal(t, 100, o.Len())

	down := errors.New("gateway down")
	calls := 0
	n, err := o.Flush(now, "/dev/ttyS0", func(rs []Record) error {
		calls++
		if calls == 2 {
			return down
		}
		require.LessOrEqual(t, len(rs), MaxBatch)
		return nil
	})
	require.ErrorIs(t, err, down)
	require.Equal(t, MaxBatch, n)
	require.Equal(t, 100-MaxBatch, o.Len(), "the batch not taken is kept")

	var got []string
	n, err = o.Flush(now, "/dev/ttyS0", func(rs []Record) error {
		for _, r := range rs {
			got = append(got, r.ID)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 100-MaxBatch, n)
	require.Equal(t, want[MaxBatch:], got, "oldest first, none twice")
	require.Equal(t, 0, o.Len())
}

func TestOutboxBoundAndDamage(t *testing.T) {
	dir := t.TempDir()
	o := &Outbox{dir: dir, max: 1000}
	now := time.Now()
	for range 20 {
		require.NoError(t, o.Add(NewRecord(now, ActionLogin, "/dev/ttyS0", "technician")))
	}
	kept := o.Len()
	require.Less(t, kept, 20)
	// A write cut short by a power loss.
	f, err := os.OpenFile(filepath.Join(dir, outboxFile), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"id":"abc`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	var got []Record
	_, err = o.Flush(now, "/dev/ttyS1", func(rs []Record) error { got = append(got, rs...); return nil })
	require.NoError(t, err)
	require.Len(t, got, kept+1)
	last := got[len(got)-1]
	require.Equal(t, ActionLost, last.Action)
	require.Equal(t, 20-kept+1, last.Count, "the records over the bound and the torn line")
	require.Equal(t, "/dev/ttyS1", last.TTY)
	require.NoError(t, last.Check())

	got = nil
	_, err = o.Flush(now, "/dev/ttyS1", func(rs []Record) error { got = append(got, rs...); return nil })
	require.NoError(t, err)
	require.Empty(t, got, "the loss is told once")
}
