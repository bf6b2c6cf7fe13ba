package gateway

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
)

func TestUplinkConfigKeys(t *testing.T) {
	const identity = `
  tls: {ca: /etc/weir/ca.pem, cert: /etc/weir/gw.pem, key: /etc/weir/gw-key.pem}`
	cases := []struct {
		name  string
		yaml  string
		want  []string // substrings of the error; none: valid
		check func(*testing.T, *Loaded)
	}{
		{"both transports, balance", `uplink:
  mode: balance
  compression: none
  flush_interval: 50ms
  endpoints:
    - {address: "a:7443"}
    - {address: "a:7444", transport: dtls, server_name: collector}` + identity, nil, func(t *testing.T, l *Loaded) {
			require.Equal(t, uplink.ModeBalance, l.Uplink.Mode)
			require.Equal(t, uplink.TransportTLS, l.Uplink.Endpoints[0].Proto(), "tls when not given")
			require.Equal(t, uplink.TransportDTLS, l.Uplink.Endpoints[1].Proto())
			require.Equal(t, 50*time.Millisecond, l.Uplink.FlushInterval)
			require.Equal(t, time.Minute, l.Uplink.TelemetryInterval, "default kept")
			require.Equal(t, 1200, l.Uplink.DTLSMTU)
		}},
		{"unknown endpoint key", `uplink:
  endpoints:
    - {address: "a:7443", transprot: dtls}` + identity, []string{"transprot"}, nil},
		{"bad transport", `uplink:
  endpoints:
    - {address: "a:7443", transport: quic}` + identity, []string{`uplink.endpoints[0].transport: "quic" is not tls or dtls`}, nil},
		{"bad mode and codec", `uplink:
  mode: spray
  compression: lz4
  compression_level: 0`, []string{`uplink.mode: "spray"`, `uplink.compression: "lz4"`, "uplink.compression_level: 0"}, nil},
		{"bad durations", `uplink:
  flush_interval: 0s
  telemetry_interval: 10ms
  cert_expiry_warning: -1h`, []string{"uplink.flush_interval", "uplink.telemetry_interval: 10ms is below 1s", "uplink.cert_expiry_warning"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "weir.yaml")
			require.NoError(t, os.WriteFile(p, []byte("gateway:\n  id: gw-1\n"+c.yaml+"\n"), 0o600))
			l, err := Load(p, true)
			if len(c.want) == 0 {
				require.NoError(t, err)
				c.check(t, l)
				return
			}
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}
