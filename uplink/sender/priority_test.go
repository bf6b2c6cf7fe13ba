package sender

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// appendCritical spools n critical records "alert <i>" and returns their
// sequences.
func appendCritical(t testing.TB, sp *spool.Spool, from, n int) []uint64 {
	t.Helper()
	var recs []spool.Entry
	for i := from; i < from+n; i++ {
		e := event.Event{Message: fmt.Sprintf("alert %d", i), Source: "weir:rules", Kind: event.KindAlert, Priority: event.PriorityCritical}
		b, err := e.MarshalBinary()
		require.NoError(t, err)
		recs = append(recs, spool.Entry{Class: spool.ClassCritical, Data: b})
	}
	first, err := sp.Append(context.Background(), recs, nil)
	require.NoError(t, err)
	out := make([]uint64, n)
	for i := range out {
		out[i] = first + uint64(i)
	}
	return out
}

func mustTake(t *testing.T, d *dispatcher) *batch {
	t.Helper()
	b, due, err := d.take()
	require.NoError(t, err)
	require.NotNil(t, b, "due %s", due)
	return b
}

// TestDispatcherCriticalAhead: critical records behind a backlog go first,
// are not sent again when the cursor reaches them, and the spool's mark
// passes them only once everything before them is acknowledged.
func TestDispatcherCriticalAhead(t *testing.T) {
	sp := openSpool(t)
	backlog := appendLines(t, sp, 0, 30)
	crit := appendCritical(t, sp, 0, 2)
	after := appendLines(t, sp, 30, 5)
	d, err := newDispatcher(sp, 10, 1<<20, 0)
	require.NoError(t, err)

	a := mustTake(t, d)
	require.Equal(t, span{crit[0], crit[1]}, a.span, "the critical records first")
	b1 := mustTake(t, d)
	require.Equal(t, span{backlog[0], backlog[9]}, b1.span, "then the backlog in order")
	require.Equal(t, backlog[0]-1, d.floor(), "the floor stays below the backlog")

	require.NoError(t, d.ack(a.span))
	require.Less(t, sp.Stats().AckedUpTo, backlog[0], "acked ahead: the mark does not move past the backlog")
	require.NoError(t, d.ack(b1.span))
	require.Equal(t, backlog[9], sp.Stats().AckedUpTo)

	b2, b3 := mustTake(t, d), mustTake(t, d)
	require.Equal(t, span{backlog[20], backlog[29]}, b3.span, "the batch ends before what went ahead")
	b4 := mustTake(t, d)
	require.Equal(t, span{after[0], after[4]}, b4.span, "the records sent ahead are skipped, not sent again")
	for _, b := range []*batch{b2, b3, b4} {
		require.NoError(t, d.ack(b.span))
	}
	require.Equal(t, after[4], sp.Stats().AckedUpTo, "everything acked: the mark passes the records sent ahead")
	require.Empty(t, d.ahead)
	require.Equal(t, uint64(2), d.aheadRecs)
	b, _, err := d.take()
	require.NoError(t, err)
	require.Nil(t, b)
}

// TestDispatcherCriticalAheadFailed: a batch sent ahead whose session
// fails is sent again first; the cursor reaching it meanwhile does not
// send it twice, and the mark never passes it unacknowledged.
func TestDispatcherCriticalAheadFailed(t *testing.T) {
	sp := openSpool(t)
	backlog := appendLines(t, sp, 0, 10)
	crit := appendCritical(t, sp, 0, 1)
	after := appendLines(t, sp, 10, 10)
	d, err := newDispatcher(sp, 10, 1<<20, 0)
	require.NoError(t, err)
	a := mustTake(t, d)
	require.Equal(t, span{crit[0], crit[0]}, a.span)
	b1, b2 := mustTake(t, d), mustTake(t, d)
	require.Equal(t, span{backlog[0], backlog[9]}, b1.span)
	require.Equal(t, span{after[0], after[9]}, b2.span, "skips the one in flight")
	require.NoError(t, d.ack(b1.span))
	require.NoError(t, d.ack(b2.span))
	require.Equal(t, backlog[9], sp.Stats().AckedUpTo, "the mark stops below the critical record in flight")
	require.Equal(t, backlog[9], d.floor())

	d.fail([]span{a.span})
	again := mustTake(t, d)
	require.Equal(t, a.span, again.span, "sent again")
	require.Equal(t, "alert 0", decode(t, again.recs[0].Data).Message)
	require.NoError(t, d.ack(again.span))
	require.Equal(t, after[9], sp.Stats().AckedUpTo)
}

// TestDispatcherResumeInsideAhead: a Welcome whose mark falls among the
// records sent ahead ends what it covers; nothing is sent twice.
func TestDispatcherResumeInsideAhead(t *testing.T) {
	sp := openSpool(t)
	backlog := appendLines(t, sp, 0, 5)
	crit := appendCritical(t, sp, 0, 4)
	after := appendLines(t, sp, 5, 3)
	d, err := newDispatcher(sp, 100, 1<<20, 0)
	require.NoError(t, err)
	a := mustTake(t, d)
	require.Equal(t, span{crit[0], crit[3]}, a.span)
	// The session dies; the collector held the backlog and half the
	// critical run (another session's work).
	d.fail([]span{a.span})
	require.NoError(t, d.resume(crit[1]))
	again := mustTake(t, d)
	require.Equal(t, span{crit[0], crit[3]}, again.span, "a batch held in part is sent whole; the collector dedupes")
	rest := mustTake(t, d)
	require.Equal(t, span{after[0], after[2]}, rest.span)
	require.NoError(t, d.ack(again.span))
	require.NoError(t, d.ack(rest.span))
	require.Equal(t, after[2], sp.Stats().AckedUpTo)
	_ = backlog
}

// TestDispatcherRestartSendsAheadAgainInOrder: after a restart the
// dispatcher knows nothing of what went ahead; the records go again in
// sequence order (the collector dedupes them).
func TestDispatcherRestartSendsAheadAgainInOrder(t *testing.T) {
	sp := openSpool(t)
	backlog := appendLines(t, sp, 0, 5)
	crit := appendCritical(t, sp, 0, 1)
	d, err := newDispatcher(sp, 100, 1<<20, 0)
	require.NoError(t, err)
	a := mustTake(t, d)
	require.NoError(t, d.ack(a.span))
	require.Less(t, sp.Stats().AckedUpTo, backlog[0])

	d2, err := newDispatcher(sp, 100, 1<<20, 0)
	require.NoError(t, err)
	b := mustTake(t, d2)
	require.Equal(t, span{crit[0], crit[0]}, b.span, "not acked by the mark: sent ahead again")
	b = mustTake(t, d2)
	require.Equal(t, span{backlog[0], backlog[4]}, b.span)
}

// TestDispatcherWithoutPriority: a spool that cannot read its critical
// records apart (a view shared with SIEM outputs) is sent in order.
func TestDispatcherWithoutPriority(t *testing.T) {
	sp := openSpool(t)
	backlog := appendLines(t, sp, 0, 5)
	crit := appendCritical(t, sp, 0, 1)
	d, err := newDispatcher(struct{ Spool }{sp}, 100, 1<<20, 0)
	require.NoError(t, err)
	require.Nil(t, d.prio)
	require.Nil(t, d.criticalAppended())
	b := mustTake(t, d)
	require.Equal(t, span{backlog[0], crit[0]}, b.span, "in sequence order")
}

func decode(t *testing.T, b []byte) event.Event {
	t.Helper()
	var e event.Event
	require.NoError(t, e.UnmarshalBinary(b))
	return e
}

// TestCriticalReachesCollectorFirst: against a real collector, an alert
// spooled behind a backlog is the first record the sink writes, and every
// record arrives exactly once with the spool acknowledged to its end.
func TestCriticalReachesCollectorFirst(t *testing.T) {
	pkiDir := provision(t, "gw-prio")
	sink := filepath.Join(t.TempDir(), "sink.jsonl")
	p := startCollector(t, pkiDir, sink, "")
	sp := openSpool(t)
	for i := range 2 {
		appendLines(t, sp, 1000*i, 1000)
	}
	crit := appendCritical(t, sp, 0, 1)
	after := appendLines(t, sp, 2000, 500)
	cfg := gatewayConfig(pkiDir, "gw-prio", p.addr)
	cfg.Window = 1
	s, err := New(cfg, "gw-prio", "boot", sp, quiet())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { return sp.Stats().AckedUpTo == after[len(after)-1] }, 30*time.Second, 20*time.Millisecond)

	got := sinkSeqs(t, sink) // fails on a duplicate
	require.Len(t, got, 2501)
	raw, err := os.ReadFile(sink)
	require.NoError(t, err)
	first, _, _ := strings.Cut(string(raw), "\n")
	require.Contains(t, first, fmt.Sprintf(`"seq":%d`, crit[0]), "the alert is the sink's first line")
	require.Contains(t, first, "alert 0")
	require.Equal(t, uint64(1), s.Status().RecordsAhead)
}
