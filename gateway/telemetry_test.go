package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/spool"
)

func TestSpoolTelemetry(t *testing.T) {
	var last, st spool.Stats
	st.Records, st.Classes[spool.ClassBulk].Refused = 10, 4
	ev := spoolTelemetry(st, last)
	require.Equal(t, event.KindTelemetry, ev.Kind)
	require.Equal(t, event.PriorityNormal, ev.Priority, "waiting for room loses nothing")
	fields := map[string]event.Value{}
	for _, f := range ev.Fields {
		fields[f.Key] = f.Value
	}
	require.Equal(t, int64(10), fields["backlog_records"].Int())
	require.Equal(t, int64(4), fields["bulk_refused"].Int())

	last = st
	st.Classes[spool.ClassBulk].Evicted = 3
	ev = spoolTelemetry(st, last)
	require.Equal(t, event.PriorityCritical, ev.Priority, "evicted records are data lost: report it as critical")
	require.Contains(t, ev.Message, "evicted")

	last = st
	ev = spoolTelemetry(st, last)
	require.Equal(t, event.PriorityNormal, ev.Priority, "only new losses are critical")
}

// TestClockTelemetry: the periodic clock report carries the offset and
// bound, and no from/to, so the head-end plots it without taking it for a
// change of state.
func TestClockTelemetry(t *testing.T) {
	ev := clockTelemetry(ptp.Status{Mode: ptp.ModeBuiltin, State: "locked", OffsetNS: -120, ErrorBoundNS: 900, Grandmaster: "gm-1"})
	require.Equal(t, "weir:clock", ev.Source)
	fields := map[string]event.Value{}
	for _, f := range ev.Fields {
		fields[f.Key] = f.Value
	}
	require.Equal(t, int64(-120), fields["offset_ns"].Int())
	require.Equal(t, int64(900), fields["error_bound_ns"].Int())
	require.Equal(t, "locked", fields["state"].Str)
	require.NotContains(t, fields, "from")
	require.NotContains(t, fields, "to")
}
