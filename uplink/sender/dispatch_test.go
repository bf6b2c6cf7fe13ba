package sender

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDispatcher(t *testing.T) {
	sp := openSpool(t)
	seqs := appendLines(t, sp, 0, 50)
	d, err := newDispatcher(sp, 10, 1<<20, time.Hour)
	require.NoError(t, err)
	require.Equal(t, seqs[0]-1, d.floor())

	take := func() *batch {
		t.Helper()
		b, due, err := d.take()
		require.NoError(t, err)
		require.NotNil(t, b, "due %s", due)
		return b
	}
	b1, b2, b3 := take(), take(), take()
	require.Equal(t, span{seqs[0], seqs[9]}, b1.span)
	require.Equal(t, span{seqs[10], seqs[19]}, b2.span)
	require.Len(t, b3.recs, 10)

	// b2 acked first (another session): the spool may not move past b1.
	require.NoError(t, d.ack(b2.span))
	require.Less(t, sp.Stats().AckedUpTo, seqs[0])
	// b1's session fails: it is sent again before anything new.
	d.fail([]span{b1.span})
	select {
	case <-d.kicked():
		t.Fatal("a kick channel is closed only once, when the batch is queued")
	default:
	}
	again := take()
	require.Equal(t, b1.span, again.span)
	require.NoError(t, d.ack(again.span))
	require.Equal(t, seqs[19], sp.Stats().AckedUpTo, "b1 and b2 acked: up to b3")
	require.Equal(t, seqs[19], d.floor())

	// A Welcome saying the collector holds up to the middle of b4 ends b3
	// whole; b4 stays out until its own ack.
	b4 := take()
	require.NoError(t, d.resume(seqs[34]))
	require.Equal(t, seqs[29], sp.Stats().AckedUpTo)
	require.NoError(t, d.ack(b4.span))
	require.Equal(t, seqs[39], sp.Stats().AckedUpTo)

	// The last 10 make a full batch; then nothing is left, and a partial
	// batch waits for flush_interval.
	require.Len(t, take().recs, 10)
	appendLines(t, sp, 50, 3)
	b, due, err := d.take()
	require.NoError(t, err)
	require.Nil(t, b)
	require.WithinDuration(t, time.Now().Add(time.Hour), due, time.Minute)
	d.flush = 0
	require.Len(t, take().recs, 3)
}

// TestDispatcherFlushWhenIdle: with flush_when_idle, a partial batch goes
// at once when the session has nothing in flight, and waits for
// flush_interval when it has; without it, it always waits.
func TestDispatcherFlushWhenIdle(t *testing.T) {
	cases := []struct {
		name            string
		flushIdle, idle bool
		sentAtOnce      bool
	}{
		{"idle link", true, true, true},
		{"batch in flight", true, false, false},
		{"off, idle link", false, true, false},
		{"off, batch in flight", false, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sp := openSpool(t)
			appendLines(t, sp, 0, 3)
			d, err := newDispatcher(sp, 10, 1<<20, time.Hour)
			require.NoError(t, err)
			d.flushIdle = c.flushIdle
			b, due, err := d.takeFor(10, 1<<20, c.idle)
			require.NoError(t, err)
			if c.sentAtOnce {
				require.NotNil(t, b)
				require.Len(t, b.recs, 3)
				return
			}
			require.Nil(t, b)
			require.WithinDuration(t, time.Now().Add(time.Hour), due, time.Minute, "a partial batch waits flush_interval")
		})
	}
}
