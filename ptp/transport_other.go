//go:build !linux

package ptp

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

const (
	stampSoftware = "software"
	stampUser     = "user"
)

var ptpMulticast = netip.MustParseAddr("224.0.1.129")

type packet struct {
	b     []byte
	event bool
	from  netip.Addr
	at    time.Time
}

type transport struct{ stamping string }

func openTransport(context.Context, BuiltinConfig) (*transport, error) {
	return nil, errors.New("the built-in PTP slave needs Linux")
}

func (*transport) close()                                   {}
func (*transport) unblock()                                 {}
func (*transport) readEvent([]byte) (packet, error)         { return packet{}, errors.New("unsupported") }
func (*transport) readGeneral([]byte) (packet, error)       { return packet{}, errors.New("unsupported") }
func (*transport) send([]byte) (time.Time, error)           { return time.Time{}, errors.New("unsupported") }
func (*transport) sendGeneral([]byte, netip.AddrPort) error { return errors.New("unsupported") }
