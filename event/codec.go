package event

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Version is the encoding version written as the first byte of every
// encoded record. Decoders refuse versions they do not know rather than
// guess, so a newer gateway never feeds garbage to an older collector.
// Version 2 is version 1 with a CRC-32C trailer; version 1 records (from
// spools written before) still decode.
const Version = 2

// ErrChecksum says a record's bytes are not the ones its encoder wrote.
var ErrChecksum = errors.New("event: decode: record checksum mismatch (damaged record)")

// castagnoli is the CRC-32C table; hardware-assisted on amd64 and arm64.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcLen is the size of the version 2 trailer.
const crcLen = 4

// Limits that bound what a decoder will allocate for hostile input.
const (
	MaxFields     = 1024
	MaxStringSize = 16 << 20
)

// Encoding, version 2:
//
//	version     byte (2; 1 for the same layout without the trailer)
//	kind, severity, priority, time source, clock state, checksum: 1 byte each
//	time        zig-zag varint, ns
//	error bound zig-zag varint, ns (negative: unknown)
//	observed    zig-zag varint, ns (0: none)
//	gateway, source, host, message: uvarint length + bytes
//	fields      uvarint count, then per field: key (uvarint length + bytes),
//	            type byte, value (string/bytes: uvarint length + bytes;
//	            int: zig-zag varint; uint, bool: uvarint; float: 8 bytes LE)
//	crc         4 bytes BE: CRC-32C of everything before it (version 2)
//
// Varints keep a typical 200-byte log line's overhead near 20 bytes. The
// CRC is the record's own, end to end: computed where the gateway encodes
// the record and checked wherever it is decoded (the collector, weir
// spool show), whatever carried it in between.

var errShort = errors.New("truncated")

// AppendBinary appends the encoding of e to b. It allocates only when b
// must grow.
func (e *Event) AppendBinary(b []byte) ([]byte, error) {
	if len(e.Fields) > MaxFields {
		return b, fmt.Errorf("event: %d fields, more than %d", len(e.Fields), MaxFields)
	}
	start := len(b)
	b = append(b, Version, byte(e.Kind), byte(e.Severity), byte(e.Priority),
		byte(e.Quality.Source), byte(e.Quality.State), byte(e.Checksum))
	b = binary.AppendVarint(b, e.Time)
	b = binary.AppendVarint(b, e.Quality.ErrorBound)
	b = binary.AppendVarint(b, e.Observed)
	b = appendString(b, e.Gateway)
	b = appendString(b, e.Source)
	b = appendString(b, e.Host)
	b = appendString(b, e.Message)
	b = binary.AppendUvarint(b, uint64(len(e.Fields)))
	for i := range e.Fields {
		f := &e.Fields[i]
		b = appendString(b, f.Key)
		b = append(b, byte(f.Value.Type))
		switch f.Value.Type {
		case TypeString, TypeBytes:
			b = appendString(b, f.Value.Str)
		case TypeInt:
			b = binary.AppendVarint(b, int64(f.Value.Num))
		case TypeUint, TypeBool:
			b = binary.AppendUvarint(b, f.Value.Num)
		case TypeFloat:
			b = binary.LittleEndian.AppendUint64(b, f.Value.Num)
		default:
			return b, fmt.Errorf("event: field %q has unknown type %d", f.Key, f.Value.Type)
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli)), nil
}

// MarshalBinary returns the encoding of e.
func (e *Event) MarshalBinary() ([]byte, error) {
	return e.AppendBinary(make([]byte, 0, e.MaxEncodedLen()))
}

// MaxEncodedLen is the most bytes AppendBinary appends for e: room taken
// ahead for it is never outgrown (and copied) half-way.
func (e *Event) MaxEncodedLen() int {
	const varint = binary.MaxVarintLen64
	n := 7 + 3*varint + 4*varint + len(e.Gateway) + len(e.Source) + len(e.Host) + len(e.Message) + varint + 4
	for i := range e.Fields {
		f := &e.Fields[i]
		n += varint + len(f.Key) + 1 + varint + len(f.Value.Str)
	}
	return n
}

// UnmarshalBinary decodes b into e, replacing its contents except Seq.
// It reuses e.Fields' backing array. Strings are copied, so b may be reused.
// A version 2 record whose CRC does not match is refused with ErrChecksum
// before any of it is decoded.
func (e *Event) UnmarshalBinary(b []byte) error { return e.UnmarshalBinaryAfter(b, nil) }

// UnmarshalBinaryAfter is UnmarshalBinary for a run of records, prev being
// the one decoded before b (nil: none). A string equal to the same string
// of prev (gateway, source, host, message, a field's key or value at the
// same place) is shared with prev rather than copied: the records of one
// batch mostly share all but their message, and the copies were most of
// the collector's allocations. prev is only read.
func (e *Event) UnmarshalBinaryAfter(b []byte, prev *Event) error {
	var like Event
	if prev != nil {
		like = *prev
	}
	if len(b) == 0 {
		return errors.New("event: decode: empty record")
	}
	switch b[0] {
	case 1:
	case 2:
		if len(b) < 1+crcLen {
			return fmt.Errorf("event: decode: checksum: %w", errShort)
		}
		body := b[:len(b)-crcLen]
		if binary.BigEndian.Uint32(b[len(body):]) != crc32.Checksum(body, castagnoli) {
			return ErrChecksum
		}
		b = body
	default:
		return fmt.Errorf("event: decode: unsupported encoding version %d (want %d, or 1)", b[0], Version)
	}
	d := decoder{b: b}
	if len(b) < 7 {
		return fmt.Errorf("event: decode: header: %w", errShort)
	}
	e.Kind, e.Severity, e.Priority = Kind(b[1]), Severity(b[2]), Priority(b[3])
	e.Quality.Source, e.Quality.State, e.Checksum = TimeSource(b[4]), ClockState(b[5]), Checksum(b[6])
	if e.Kind >= kindCount || e.Severity > SevDebug || e.Priority >= priorityCount ||
		e.Quality.Source >= timeSourceCount || e.Quality.State >= clockStateCount || e.Checksum >= checksumCount {
		return errors.New("event: decode: header holds an out-of-range enum")
	}
	d.off = 7
	e.Time = d.varint()
	e.Quality.ErrorBound = d.varint()
	e.Observed = d.varint()
	e.Gateway = d.str(like.Gateway)
	e.Source = d.str(like.Source)
	e.Host = d.str(like.Host)
	e.Message = d.str(like.Message)
	n := d.uvarint()
	if d.err != nil {
		return fmt.Errorf("event: decode: %w", d.err)
	}
	// Each field takes at least 3 bytes, so a count the input cannot hold is
	// refused before anything is allocated for it.
	if n > MaxFields || n > uint64(len(b)-d.off)/3 {
		return fmt.Errorf("event: decode: field count %d exceeds what the record can hold", n)
	}
	e.Fields = e.Fields[:0]
	for i := uint64(0); i < n && d.err == nil; i++ {
		var f, lf Field
		if i < uint64(len(like.Fields)) {
			lf = like.Fields[i]
		}
		f.Key = d.str(lf.Key)
		f.Value.Type = ValueType(d.byte())
		switch f.Value.Type {
		case TypeString, TypeBytes:
			f.Value.Str = d.str(lf.Value.Str)
		case TypeInt:
			f.Value.Num = uint64(d.varint())
		case TypeUint:
			f.Value.Num = d.uvarint()
		case TypeBool:
			f.Value.Num = d.uvarint()
			if f.Value.Num > 1 {
				d.fail(fmt.Errorf("field %q: bool value %d", f.Key, f.Value.Num))
			}
		case TypeFloat:
			f.Value.Num = d.u64()
		default:
			d.fail(fmt.Errorf("field %q: unknown type %d", f.Key, f.Value.Type))
		}
		e.Fields = append(e.Fields, f)
	}
	if d.err != nil {
		return fmt.Errorf("event: decode: %w", d.err)
	}
	if d.off != len(b) {
		return fmt.Errorf("event: decode: %d trailing bytes", len(b)-d.off)
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads varints and strings, remembering the first error so the
// caller checks once.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail(errShort)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(errors.New("bad varint"))
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail(errors.New("bad varint"))
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 8 {
		d.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// str reads a string; one equal to like is like itself, not a copy.
func (d *decoder) str(like string) string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > MaxStringSize || n > uint64(len(d.b)-d.off) {
		d.fail(fmt.Errorf("string of %d bytes: %w", n, errShort))
		return ""
	}
	if b := d.b[d.off : d.off+int(n)]; len(like) == len(b) && string(b) == like {
		d.off += int(n)
		return like
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}
