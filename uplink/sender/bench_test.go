package sender

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
)

// BenchmarkLoopback delivers b.N spooled log records through a real
// collector on loopback (JSONL sink, fsync per batch) and reports records/s
// and the payload goodput, per transport and codec.
func BenchmarkLoopback(b *testing.B) {
	pkiDir := provision(b, "gw-1")
	for _, c := range []struct{ transport, codec string }{{"tls", "zstd"}, {"tls", "none"}, {"dtls", "zstd"}, {"dtls", "none"}} {
		b.Run(c.transport+"-"+c.codec, func(b *testing.B) {
			j, _ := openSink(b)
			p := startServer(b, pkiDir, j, "", c.transport, quiet())
			sp := openSpool(b)
			for i := 0; i < b.N; i += 1000 {
				appendLines(b, sp, i, min(1000, b.N-i))
			}
			cfg := gatewayConfig(pkiDir, "gw-1", p.addr)
			cfg.Endpoints[0].Transport = uplink.Transport(c.transport)
			cfg.Compression = c.codec
			cfg.BatchMaxRecords, cfg.Window = 1000, 8
			b.ResetTimer()
			start := time.Now()
			s, stop := runSender(b, cfg, "gw-1", sp)
			defer stop()
			for sp.Stats().Records > 0 {
				time.Sleep(time.Millisecond)
			}
			el := time.Since(start)
			b.StopTimer()
			e := s.Status().Endpoints[0]
			b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
			b.ReportMetric(8*float64(e.WireBytesAcked)/el.Seconds()/1e6, "wire-Mbit/s")
			b.ReportMetric(8*float64(e.BytesAcked)/el.Seconds()/1e6, "record-Mbit/s")
			require.Positive(b, e.RecordsAcked)
		})
	}
}
