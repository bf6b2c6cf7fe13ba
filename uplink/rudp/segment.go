package rudp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Segment kinds. The kind is the low nibble of the first byte; the high
// nibble is the wire version, so a future format is refused, not misread.
const (
	kindData = 1 // carries payload at seq; a data segment with kindFin ends the stream
	kindAck  = 2 // acknowledgement only: cumulative, window, SACK blocks
	kindPing = 3 // keepalive or probe: the peer answers at once with an ack
	kindFin  = 4 // end of stream; occupies one sequence number like data
)

const (
	wireVersion = 1
	headerLen   = 30
	blockLen    = 8
	// maxBlocks bounds the SACK blocks one segment may carry (as many as
	// fit a 1200-byte MTU); the count is a byte on the wire.
	maxBlocks = 128
)

// sackBlock is a run of received sequence numbers [start, end) above the
// cumulative ack.
type sackBlock struct{ start, end uint64 }

// segment is one datagram's plaintext. Every segment carries the sender's
// view of the reverse direction (ack, window, timestamp echo), so data
// flowing both ways acknowledges itself without extra datagrams.
type segment struct {
	kind    uint8
	seq     uint64 // data, fin: this segment's sequence number; otherwise 0
	ack     uint64 // every sequence number below ack has been received
	wnd     uint32 // segments the receiver accepts at and above ack
	tsval   uint32 // sender's clock in microseconds, wrapping
	tsecr   uint32 // the peer's most recent tsval, echoed; 0 when none
	blocks  []sackBlock
	payload []byte // aliases the decoded buffer
}

var (
	errShort    = errors.New("shorter than a segment header")
	errVersion  = errors.New("unknown wire version")
	errKind     = errors.New("unknown segment kind")
	errBlocks   = errors.New("SACK blocks run past the datagram")
	errBlockOrd = errors.New("SACK blocks empty, overlapping or out of order")
	errPayload  = errors.New("payload on a segment kind that carries none")
)

// appendSegment appends s's wire form to b. Blocks beyond maxBlocks are
// dropped; the caller sizes payloads so the result fits the MTU.
func appendSegment(b []byte, s *segment) []byte {
	blocks := s.blocks
	if len(blocks) > maxBlocks {
		blocks = blocks[:maxBlocks]
	}
	b = append(b, wireVersion<<4|s.kind, byte(len(blocks)))
	b = binary.BigEndian.AppendUint64(b, s.seq)
	b = binary.BigEndian.AppendUint64(b, s.ack)
	b = binary.BigEndian.AppendUint32(b, s.wnd)
	b = binary.BigEndian.AppendUint32(b, s.tsval)
	b = binary.BigEndian.AppendUint32(b, s.tsecr)
	for _, k := range blocks {
		// Offsets from ack keep blocks at 8 bytes; a block more than 2^32
		// segments above ack cannot exist within any window.
		b = binary.BigEndian.AppendUint32(b, uint32(k.start-s.ack))
		b = binary.BigEndian.AppendUint32(b, uint32(k.end-k.start))
	}
	return append(b, s.payload...)
}

// decodeSegment parses p into s, reusing s.blocks' storage. The payload
// aliases p. It never allocates more than maxBlocks blocks and checks every
// length against p first: p comes from the network.
func decodeSegment(p []byte, s *segment) error {
	if len(p) < headerLen {
		return fmt.Errorf("segment of %d bytes: %w", len(p), errShort)
	}
	if v := p[0] >> 4; v != wireVersion {
		return fmt.Errorf("segment version %d: %w", v, errVersion)
	}
	kind := p[0] & 0x0f
	if kind < kindData || kind > kindFin {
		return fmt.Errorf("segment kind %d: %w", kind, errKind)
	}
	n := int(p[1])
	if n > maxBlocks || len(p) < headerLen+n*blockLen {
		return fmt.Errorf("%d SACK blocks in %d bytes: %w", n, len(p), errBlocks)
	}
	s.kind = kind
	s.seq = binary.BigEndian.Uint64(p[2:])
	s.ack = binary.BigEndian.Uint64(p[10:])
	s.wnd = binary.BigEndian.Uint32(p[18:])
	s.tsval = binary.BigEndian.Uint32(p[22:])
	s.tsecr = binary.BigEndian.Uint32(p[26:])
	s.blocks = s.blocks[:0]
	prev := s.ack
	q := p[headerLen:]
	for i := 0; i < n; i++ {
		off := uint64(binary.BigEndian.Uint32(q))
		length := uint64(binary.BigEndian.Uint32(q[4:]))
		q = q[blockLen:]
		start := s.ack + off
		end := start + length
		// A block starts above the ack (the ack is the first hole), is not
		// empty, follows the previous one with a gap, and does not wrap.
		if off == 0 || length == 0 || start <= prev || end < start {
			return fmt.Errorf("SACK block %d [+%d, %d): %w", i, off, length, errBlockOrd)
		}
		s.blocks = append(s.blocks, sackBlock{start, end})
		prev = end
	}
	s.payload = q
	if len(q) > 0 && kind != kindData {
		return fmt.Errorf("%d bytes after a kind %d segment: %w", len(q), kind, errPayload)
	}
	return nil
}
