package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
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
