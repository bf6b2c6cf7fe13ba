package sender

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
)

// TestReconnectCost: each session's handshake and the time from its end to
// the session's first ack are shown, and later acks leave the first alone.
func TestReconnectCost(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	es := newEndpointStats(uplink.Endpoint{Address: "127.0.0.1:7443"}, func() time.Time { return now })

	cases := []struct {
		handshake, toFirstAck time.Duration
	}{
		{120 * time.Millisecond, 45 * time.Millisecond},
		{300 * time.Millisecond, 2 * time.Second},
	}
	for _, c := range cases {
		start := now
		now = now.Add(c.handshake)
		es.handshook(now.Sub(start), now)
		require.Equal(t, ms(c.handshake), es.snapshot().HandshakeMillis)
		require.Zero(t, es.snapshot().FirstAckMillis, "no ack yet in this session")

		now = now.Add(c.toFirstAck)
		es.acked(10, 1000, 100, 40*time.Millisecond, now)
		now = now.Add(time.Second)
		es.acked(10, 1000, 100, 40*time.Millisecond, now)
		require.Equal(t, ms(c.toFirstAck), es.snapshot().FirstAckMillis)
	}
}
