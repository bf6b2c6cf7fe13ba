//go:build !linux

package syslog

import (
	"errors"
	"net"
)

const oobSize = 0

func enableDropCount(*net.UDPConn) error {
	return errors.New("socket drop counts need Linux (SO_RXQ_OVFL)")
}

func dropCount([]byte) (uint32, bool) { return 0, false }

// truncatedDatagram cannot tell; the buffer holds max_message_bytes.
func truncatedDatagram(int) bool { return false }

const dropCountSupported = false
