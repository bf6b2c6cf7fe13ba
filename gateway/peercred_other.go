//go:build !linux

package gateway

import "net"

// peerUID cannot tell the peer's user without SO_PEERCRED: audit records
// are refused. Weir runs on Linux; this keeps the package building.
func peerUID(net.Conn) (int, error) { return -1, errNoPeer }
