package sender

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink"
)

// failingTransport fails every dial with err.
type failingTransport struct{ err error }

func (f failingTransport) Dial(context.Context, uplink.Endpoint, *uplink.Identity) (Link, error) {
	return nil, f.err
}

// TestRefusedDialIsNotBackedOff records the waits between attempts: a dial
// the collector's host refused (nothing listens: a collector restarting)
// is retried every reconnect_min, so the gateway is not asleep when the
// collector returns; other failures (a refused certificate, a handshake
// timing out at a busy collector) still back off to reconnect_max. With
// the backoff applied to refusals, the waits double as in the second case.
func TestRefusedDialIsNotBackedOff(t *testing.T) {
	const lo, hi = 20 * time.Millisecond, 160 * time.Millisecond
	backedOff := []time.Duration{lo, 2 * lo, 4 * lo, hi, hi, hi}
	steady := []time.Duration{lo, lo, lo, lo, lo, lo}
	for _, tt := range []struct {
		name string
		err  error
		want []time.Duration
	}{
		{"refused", fmt.Errorf("rudp: handshake: nothing listens there (ICMP port unreachable): %w", syscall.ECONNREFUSED), steady},
		{"no route", fmt.Errorf("dial tcp: %w", syscall.ENETUNREACH), steady},
		{"timeout", fmt.Errorf("rudp: handshake: %w", context.DeadlineExceeded), backedOff},
		{"certificate", errors.New("remote error: tls: bad certificate"), backedOff},
	} {
		for _, mode := range []uplink.Mode{uplink.ModeFailover, uplink.ModeBalance} {
			t.Run(tt.name+"/"+string(mode), func(t *testing.T) {
				cfg := gatewayConfig(t.TempDir(), "gw-1", "127.0.0.1:9")
				cfg.Mode = mode
				cfg.ReconnectMin, cfg.ReconnectMax = lo, hi
				s, err := New(cfg, "gw-1", "boot", openSpool(t), quiet())
				require.NoError(t, err)
				s.SetTransport(uplink.TransportTLS, failingTransport{tt.err})
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var (
					mu    sync.Mutex
					waits []time.Duration
				)
				s.pause = func(ctx context.Context, d time.Duration) bool {
					mu.Lock()
					defer mu.Unlock()
					if waits = append(waits, d); len(waits) == len(tt.want) {
						cancel()
					}
					return ctx.Err() == nil
				}
				require.NoError(t, s.Run(ctx))
				require.Equal(t, tt.want, waits)
			})
		}
	}
}
