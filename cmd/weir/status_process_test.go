package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/process"
)

// The plain-text status lists each processor chain with its steps'
// figures, as the JSON status does; a gateway without processors shows
// no such line.
func TestPrintStatusProcessors(t *testing.T) {
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	st := gateway.Status{Gateway: "gw", Started: now.Add(-time.Hour),
		Processors: []gateway.ProcessorChainStatus{
			{Chain: "global", Steps: []process.StepStats{{Index: 0, Type: "redact", In: 120, Out: 120, Changed: 7}}},
			{Chain: "app", Steps: []process.StepStats{{Index: 0, Type: "drop", In: 1000, Out: 640, Dropped: 360},
				{Index: 1, Type: "truncate", In: 640, Out: 640}}},
		}}
	st.Uplink.State = "disabled"
	var b bytes.Buffer
	printStatus(&b, &st, now)
	require.Contains(t, b.String(), "process  global: redact 120 in, 120 out, 7 changed\n")
	require.Contains(t, b.String(), "process  app: drop 1000 in, 640 out, 360 dropped; truncate 640 in, 640 out\n")

	st.Processors = nil
	b.Reset()
	printStatus(&b, &st, now)
	require.NotContains(t, b.String(), "process  ")
}
