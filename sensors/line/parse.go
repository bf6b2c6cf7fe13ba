package line

import (
	"bytes"
	"hash/crc32"
)

// Verdict is what a line's checksum says.
type Verdict uint8

// Verdicts.
const (
	// VerdictNone: the sensor has no checksum.
	VerdictNone Verdict = iota
	// VerdictOK: the trailer matches the line.
	VerdictOK
	// VerdictMismatch: a well-formed trailer that does not match; Got
	// (from the line) and Want (computed) say how.
	VerdictMismatch
	// VerdictMissing: no trailer (no separator, or for NMEA no "*").
	VerdictMissing
	// VerdictMalformed: a trailer of the wrong length or with non-hex
	// digits, an NMEA line without "$" or "!", or a piece of an overlong
	// line.
	VerdictMalformed
	verdictCount
)

var verdictNames = [...]string{"none", "ok", "mismatch", "missing", "malformed"}

func (v Verdict) String() string {
	if v < verdictCount {
		return verdictNames[v]
	}
	return "verdict(?)"
}

// Good reports whether a line with this verdict may be taken as a reading.
func (v Verdict) Good() bool { return v == VerdictOK || v == VerdictNone }

// Result is a parsed line. Payload aliases the line given to Parse.
type Result struct {
	// Payload is the line without its checksum: for NMEA the body between
	// the start character and "*" (the whole line after the start character
	// when the trailer is missing), for CRCs the bytes before the
	// separator, for none (and malformed lines) the whole line.
	Payload []byte
	Verdict Verdict
	// Got and Want are the trailer's value and the computed checksum, set
	// for ok and mismatch.
	Got, Want uint32
	// Width is the trailer's width in hex digits (2, 4 or 8), for
	// formatting Got and Want; 0 for none.
	Width int
}

// Parser verifies lines. The zero value's Kind is invalid; build it from a
// validated Config or set Kind and Sep.
type Parser struct {
	Kind ChecksumKind
	Sep  byte // CRC trailer separator
}

// Parse verifies one line (terminator already removed). It never
// allocates and never fails: what is wrong with the line is in the verdict.
func (p Parser) Parse(line []byte) Result {
	switch p.Kind {
	case ChecksumNMEA:
		return parseNMEA(line)
	case ChecksumCRC16CCITT:
		return parseCRC(line, p.Sep, 4, func(b []byte) uint32 { return uint32(crc16(0xFFFF, b)) })
	case ChecksumCRC16XModem:
		return parseCRC(line, p.Sep, 4, func(b []byte) uint32 { return uint32(crc16(0, b)) })
	case ChecksumCRC32:
		return parseCRC(line, p.Sep, 8, crc32.ChecksumIEEE)
	}
	return Result{Payload: line, Verdict: VerdictNone}
}

// Append appends line with a correct trailer for the parser's checksum to
// dst: what an instrument would send. For none it appends line unchanged.
func (p Parser) Append(dst, line []byte) []byte {
	switch p.Kind {
	case ChecksumNMEA:
		dst = append(dst, line...)
		return appendHex(append(dst, '*'), uint32(nmeaXOR(line[min(1, len(line)):])), 2)
	case ChecksumCRC16CCITT:
		return appendHex(append(append(dst, line...), p.Sep), uint32(crc16(0xFFFF, line)), 4)
	case ChecksumCRC16XModem:
		return appendHex(append(append(dst, line...), p.Sep), uint32(crc16(0, line)), 4)
	case ChecksumCRC32:
		return appendHex(append(append(dst, line...), p.Sep), crc32.ChecksumIEEE(line), 8)
	}
	return append(dst, line...)
}

func parseNMEA(line []byte) Result {
	if len(line) == 0 || (line[0] != '$' && line[0] != '!') {
		return Result{Payload: line, Verdict: VerdictMalformed, Width: 2}
	}
	star := bytes.LastIndexByte(line, '*')
	if star < 0 {
		return Result{Payload: line[1:], Verdict: VerdictMissing, Width: 2}
	}
	body := line[1:star]
	got, ok := parseHex(line[star+1:], 2)
	if !ok {
		return Result{Payload: body, Verdict: VerdictMalformed, Width: 2}
	}
	return verdict(body, got, uint32(nmeaXOR(body)), 2)
}

func parseCRC(line []byte, sep byte, width int, sum func([]byte) uint32) Result {
	i := bytes.LastIndexByte(line, sep)
	if i < 0 {
		return Result{Payload: line, Verdict: VerdictMissing, Width: width}
	}
	got, ok := parseHex(line[i+1:], width)
	if !ok {
		return Result{Payload: line[:i], Verdict: VerdictMalformed, Width: width}
	}
	return verdict(line[:i], got, sum(line[:i]), width)
}

func verdict(payload []byte, got, want uint32, width int) Result {
	v := VerdictOK
	if got != want {
		v = VerdictMismatch
	}
	return Result{Payload: payload, Verdict: v, Got: got, Want: want, Width: width}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// parseHex reads exactly width hex digits, either case.
func parseHex(b []byte, width int) (uint32, bool) {
	if len(b) != width {
		return 0, false
	}
	var v uint32
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}

// appendHex appends v as width upper-case hex digits (NMEA's case).
func appendHex(dst []byte, v uint32, width int) []byte {
	const digits = "0123456789ABCDEF"
	for i := width - 1; i >= 0; i-- {
		dst = append(dst, digits[v>>(4*uint(i))&0xf])
	}
	return dst
}

// SplitNMEA splits an NMEA payload (Result.Payload of an nmea line) at its
// commas, appending the fields after the address to dst: for
// "GPGGA,123519,4807.038,N" the address is "GPGGA", talker "GP" and type
// "GGA" (for proprietary "P..." addresses talker is "P" and type the
// rest), fields ["123519", "4807.038", "N"]. Empty fields are kept: their
// position is their meaning. All results alias payload.
func SplitNMEA(payload []byte, dst [][]byte) (talker, typ []byte, fields [][]byte) {
	addr := payload
	rest := []byte(nil)
	if i := bytes.IndexByte(payload, ','); i >= 0 {
		addr, rest = payload[:i], payload[i+1:]
	}
	switch {
	case len(addr) > 0 && addr[0] == 'P':
		talker, typ = addr[:1], addr[1:]
	case len(addr) >= 2:
		talker, typ = addr[:2], addr[2:]
	default:
		talker = addr
	}
	if rest == nil {
		return talker, typ, dst
	}
	for {
		i := bytes.IndexByte(rest, ',')
		if i < 0 {
			return talker, typ, append(dst, rest)
		}
		dst = append(dst, rest[:i])
		rest = rest[i+1:]
	}
}
