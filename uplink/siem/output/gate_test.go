package output_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink/siem/output"
	"github.com/weirgw/weir/uplink/siem/output/outputtest"
)

// TestGateAcksTheLowestMark: the spool lets go of a record only once
// every consumer acknowledged it, and an output's mark survives a
// restart (kept as a spool checkpoint), so it resumes after what it
// delivered, not at the spool's mark.
func TestGateAcksTheLowestMark(t *testing.T) {
	sp, seqs := outputtest.Spool(t, outputtest.Records(100, nil))
	before := sp.Stats().AckedUpTo
	g := output.NewGate(sp, slog.New(slog.DiscardHandler))
	up := g.Consumer("uplink")
	out, err := g.Output("siem")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, 10*time.Millisecond) }()

	require.NoError(t, out.Ack(seqs[80]))
	require.Equal(t, before, sp.Stats().AckedUpTo, "the uplink has acknowledged nothing yet")
	require.NoError(t, up.Ack(seqs[50]))
	require.Equal(t, seqs[50], sp.Stats().AckedUpTo, "the lower mark")
	require.NoError(t, up.Ack(seqs[99]))
	require.Equal(t, seqs[80], sp.Stats().AckedUpTo)
	require.Equal(t, seqs[80], out.Stats().AckedUpTo, "a view's own mark")
	require.Equal(t, seqs[99], up.Stats().AckedUpTo)
	cancel()
	require.NoError(t, <-done)

	// A restart: the output's mark is read back; a new consumer starts
	// at the spool's.
	g2 := output.NewGate(sp, slog.New(slog.DiscardHandler))
	out2, err := g2.Output("siem")
	require.NoError(t, err)
	require.Equal(t, seqs[80], out2.Mark())
	other, err := g2.Output("new")
	require.NoError(t, err)
	require.Equal(t, seqs[80], other.Mark())
}
