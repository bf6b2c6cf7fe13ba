package rudp

import (
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Options tune a Conn. Zero fields take the defaults named beside them.
type Options struct {
	MTU              int           // bytes of UDP payload per datagram, DTLS record included; default 1200
	HandshakeTimeout time.Duration // whole DTLS handshake; default 15s
	IdleTimeout      time.Duration // no datagram from the peer for this long: the Conn fails; default 60s
	KeepAlive        time.Duration // send a keepalive after sending nothing for this long; default 10s
	FlightInterval   time.Duration // DTLS handshake retransmission interval if the dtls.Config sets none; default 200ms
	AckDelay         time.Duration // longest an acknowledgement waits for the segments it would cover; default 5ms
	MinRTO           time.Duration // default 200ms
	MaxRTO           time.Duration // cap on the backed-off timeout, so a restored link is noticed soon; default 4s
	SendBuffer       int           // bytes written but not yet acknowledged before Write blocks; default 2 MiB
	RecvWindow       int           // segments the receiver buffers ahead of Read; default 2048 (about 2.2 MB)
	InitialCwnd      int           // segments; default 16
	CloseTimeout     time.Duration // how long Close waits for written data to be acknowledged; default 5s
	AcceptBacklog    int           // handshaken connections waiting for Accept; default 64
	// HandshakeBudget bounds a listener's handshakes under way, and
	// HandshakesPerPrefix those from one source prefix (an IPv4 /24, an
	// IPv6 /48); defaults 128 and 16.
	HandshakeBudget     int
	HandshakesPerPrefix int
	Logger              *slog.Logger // default slog.Default()
	// OnHandshakeError, if set, is told of each failed server-side
	// handshake (also logged), for telemetry counting failures by reason.
	OnHandshakeError func(remote net.Addr, err error)
}

// recordOverhead is what DTLS adds around a segment: a 13-byte record
// header, up to 8 bytes of connection ID, the inner content type, an 8-byte
// explicit nonce and a 16-byte AEAD tag, rounded up for safety.
const recordOverhead = 64

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt(&o.MTU, 1200)
	def(&o.HandshakeTimeout, 15*time.Second)
	def(&o.IdleTimeout, 60*time.Second)
	def(&o.KeepAlive, 10*time.Second)
	// Short and not doubled (see ClientConfig): each flight lost costs this
	// much, and a handshake at 20 % loss each way loses about four.
	def(&o.FlightInterval, 200*time.Millisecond)
	def(&o.AckDelay, 5*time.Millisecond)
	def(&o.MinRTO, 200*time.Millisecond)
	def(&o.MaxRTO, 4*time.Second)
	defInt(&o.SendBuffer, 2<<20)
	defInt(&o.RecvWindow, 2048)
	defInt(&o.InitialCwnd, 16)
	def(&o.CloseTimeout, 5*time.Second)
	defInt(&o.AcceptBacklog, 64)
	defInt(&o.HandshakeBudget, 128)
	defInt(&o.HandshakesPerPrefix, 16)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// validate checks the options after defaults; errors name the field.
func (o Options) validate() error {
	switch {
	case o.MTU < 256 || o.MTU > 65000:
		return fmt.Errorf("rudp: options: mtu %d is outside 256..65000", o.MTU)
	case o.MaxRTO < o.MinRTO:
		return fmt.Errorf("rudp: options: max_rto %s is below min_rto %s", o.MaxRTO, o.MinRTO)
	case o.KeepAlive >= o.IdleTimeout:
		return fmt.Errorf("rudp: options: keepalive %s must be shorter than idle_timeout %s", o.KeepAlive, o.IdleTimeout)
	case o.RecvWindow > 1<<20:
		return fmt.Errorf("rudp: options: recv_window %d exceeds %d segments", o.RecvWindow, 1<<20)
	case o.HandshakesPerPrefix > o.HandshakeBudget:
		return fmt.Errorf("rudp: options: handshakes_per_prefix %d is above handshake_budget %d", o.HandshakesPerPrefix, o.HandshakeBudget)
	}
	return nil
}

// mss is the payload of one data segment.
func (o Options) mss() int { return o.MTU - recordOverhead - headerLen }
