//go:build !linux

package rudp

import "net"

// sizeBuffers asks for bytes of socket buffer each way; where the
// platform's reported figure is not known to be doubled, it is taken as is.
func sizeBuffers(pc *net.UDPConn, bytes int) (rcv, snd int) {
	_ = pc.SetReadBuffer(bytes)
	_ = pc.SetWriteBuffer(bytes)
	return bytes, bytes
}

// recvErrors does nothing here: where ICMP errors do not reach an
// unconnected socket, a dial to a collector that is down runs to its
// handshake timeout.
func recvErrors(*net.UDPConn, bool, bool) {}
