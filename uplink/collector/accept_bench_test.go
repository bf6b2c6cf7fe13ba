package collector

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink"
)

// BenchmarkAccept is the collector's cost per record of a session's batch
// (make bench): 1,000 tailed lines of 200 bytes, zstd, checked,
// decompressed, decoded and written to a JSONL sink with its fsync.
func BenchmarkAccept(b *testing.B) {
	sink, err := OpenJSONL(filepath.Join(b.TempDir(), "out.jsonl"), slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	defer sink.Close()
	bt := newBatcher(testServer(b, DefaultConfig(), sink), "gw-1", 1000, 1<<20)
	line := strings.Repeat("x", 180)
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var raw []byte
	for i := range 1000 {
		ev := event.Event{Source: "file:/var/log/app/0.log", Kind: event.KindLog, Host: "gw-1", Time: at.Add(time.Duration(i) * time.Microsecond).UnixNano(),
			Message: fmt.Sprintf("%06d %s", i, line), Quality: event.Quality{ErrorBound: -1},
			Fields: []event.Field{event.Str("path", "/var/log/app/0.log"), event.Int("offset", int64(i*201))}}
		rec, err := ev.MarshalBinary()
		require.NoError(b, err)
		raw = uplink.AppendRecord(raw, rec)
	}
	payload := zst(b, raw)
	sink.Resume("gw-1", 0)
	b.ResetTimer()
	for i := range b.N {
		d := &uplink.Data{First: 1 + uint64(i)*1000, Count: 1000, Codec: uplink.CodecZstd, Payload: payload}
		if err := bt.accept(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/record")
}
