package fleet

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

// TestSinkSample keeps testdata/sink.jsonl (the fuzzer's seeds) in the
// form the sink writes: each line parses back to the record it was.
// WEIR_UPDATE_TESTDATA=1 writes it again.
func TestSinkSample(t *testing.T) {
	at := t0.Add(-time.Minute)
	evs := []*event.Event{spoolEv(at, 12, 3.5), linkEv(at, "tls://c:7443", "backoff", 40, 0.05, 1e5, 12, 2), clockEv(at, "locked", "holdover", -300),
		busEv(at, "rs485-1", 0.04), tamperEv(at, "open"), reading(at)}
	evs[0].Fields = append(evs[0].Fields, event.Str("config_version", "v3"), event.Str("config_result", "applied"))
	var out []byte
	for i, ev := range evs {
		ev.Seq, ev.Gateway, ev.Host = uint64(100+i), "pump-3", "pump-3.local"
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		out = append(append(out, b...), '\n')
		gw, back, err := ParseRecord(b)
		require.NoError(t, err)
		require.Equal(t, "pump-3", gw)
		require.Equal(t, ev.Seq, back.Seq)
		require.Equal(t, ev.Time, back.Time)
		require.Equal(t, ev.Kind, back.Kind)
		require.Equal(t, ev.Severity, back.Severity)
		require.Equal(t, ev.Quality, back.Quality)
		require.Equal(t, len(ev.Fields), len(back.Fields))
		for _, f := range ev.Fields {
			a, _ := num(ev, f.Key)
			b, _ := num(&back, f.Key)
			require.Equal(t, a, b, f.Key)
			require.Equal(t, str(ev, f.Key), str(&back, f.Key), f.Key)
		}
	}
	if os.Getenv("WEIR_UPDATE_TESTDATA") != "" {
		require.NoError(t, os.WriteFile("testdata/sink.jsonl", out, 0o644))
	}
	b, err := os.ReadFile("testdata/sink.jsonl")
	require.NoError(t, err)
	require.NotEmpty(t, b)
}
