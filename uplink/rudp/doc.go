// Package rudp ("reliable delivery over DTLS") is the uplink's datagram
// transport: an ordered, reliable byte stream implementing net.Conn over
// pion/dtls/v3 records, so the uplink's frame protocol runs on it
// unchanged. It owns the DTLS configuration (mutual authentication against
// files re-read at every handshake, AEAD suites only, extended master
// secret, connection IDs) and everything between a Write on one side and a
// Read on the other: segmentation to the MTU, acknowledgement, loss
// detection, retransmission, congestion control, pacing, keepalives and
// idle detection. It does not know about frames, batches or the spool.
//
// A Listener owns its UDP socket (mux.go): datagrams are routed to sessions
// by connection ID or source address, and only a ClientHello from an
// unknown address starts a handshake, within a global budget and one per
// source prefix. A handshake whose peer has not echoed its
// HelloVerifyRequest cookie is the first dropped when a budget is spent,
// so forged source addresses cannot crowd out real peers; refusals go to
// Options.OnHandshakeError for the caller to count and log.
//
// # Wire format
//
// Each DTLS record carries one segment; all integers are big-endian.
//
//	off  size
//	0    1     version (high nibble, 1) | kind (low nibble):
//	           1 data, 2 ack, 3 ping, 4 fin
//	1    1     n: number of SACK blocks (at most 128)
//	2    8     seq: data and fin, the segment's sequence number; else 0
//	10   8     ack: every sequence number below it was received
//	18   4     wnd: segments the sender of this segment accepts at and above ack
//	22   4     tsval: sender's clock, microseconds, wrapping (never 0)
//	26   4     tsecr: the latest tsval received from the peer, echoed; 0 none
//	30   8n    SACK blocks: offset of the block's start above ack (u32, > 0),
//	           length in segments (u32, > 0); ascending, disjoint, with gaps
//	30+8n      payload (data only): up to MTU - 64 - 30 bytes
//
// Sequence numbers count segments from 0; a fin takes one, so the end of
// the stream is delivered and acknowledged like data. Every segment carries
// the ack, window and timestamp echo of the reverse direction. A ping asks
// for an immediate ack; its echo measures the RTT of an idle session.
//
// # Reliability and congestion control
//
// The receiver acks every second segment for the first 100, then every
// eighth, or after Options.AckDelay; and at once when a segment opens a
// hole, lands in one, fills one or is a duplicate (a segment extending the
// highest run above the holes waits like in-order data); acks list the
// runs received above the cumulative point (when not all fit, a quarter
// of the room for the lowest, the one holding the latest arrival, and the
// highest, so each run is repeated while it is recent).
// The sender takes RTT samples from echoed timestamps (RFC 7323 style, so
// retransmissions are measured too; the handshake seeds the first), keeps
// SRTT, RTTVAR and the timeout per RFC 6298, declares a segment lost when
// one sent after it was delivered and it is older than an RTT plus a
// reordering allowance (RACK, RFC 8985; spurious retransmissions found by
// the Eifel test widen the allowance), probes the tail after two SRTTs
// without progress, and on a timeout resends the oldest segment, backing
// off. Congestion control is model-based after BBR, with pacing; see
// cc.go for why not AIMD. Sending is bounded by Options.SendBuffer (Write
// blocks) and the peer's window of Options.RecvWindow segments.
//
// docs/ARCHITECTURE.md places this transport under the wire protocol.
package rudp
