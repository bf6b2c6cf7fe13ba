package poll

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/weirgw/weir/event"
)

// orderBytes lays out n registers as bytes in the register's byte and
// word order, most significant byte first, into b.
func orderBytes(b []byte, regs []uint16, order string) []byte {
	n := len(regs)
	b = b[:0]
	for i := range n {
		w := regs[i]
		if order == "CDAB" && n > 1 {
			w = regs[n-1-i] // words least significant first
		}
		b = binary.BigEndian.AppendUint16(b, w)
	}
	switch order {
	case "BADC": // bytes swapped within each word
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	case "DCBA": // little-endian throughout
		for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
	}
	return b
}

// raw decodes the register value to an unsigned integer of its width, in
// its byte and word order.
func rawValue(regs []uint16, order string) uint64 {
	var buf [8]byte
	b := orderBytes(buf[:0], regs, order)
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// appendFields decodes one register map entry from its registers (or bits)
// and appends its fields. regs and bits hold exactly the entry's span.
func (r RegisterConfig) appendFields(dst []event.Field, regs []uint16, bits []bool) []event.Field {
	t := r.dataType()
	if r.isBit() {
		return append(dst, event.Bool(r.Name, bits[0]))
	}
	order := r.Order
	if order == "" {
		order = "ABCD"
	}
	scale := r.Scale
	if scale == 0 {
		scale = 1
	}
	scaled := scale != 1 || r.Offset != 0
	num := func(f float64) event.Field { return event.Float(r.Name, f*scale+r.Offset) }
	v := rawValue(regs[:min(len(regs), 4)], order)
	switch t {
	case "bool":
		return append(dst, event.Bool(r.Name, regs[0] != 0))
	case "int16", "int32", "int64":
		bitsN := 16 * uint(len(regs))
		s := int64(v<<(64-bitsN)) >> (64 - bitsN) // sign-extend
		if scaled {
			return append(dst, num(float64(s)))
		}
		return append(dst, event.Int(r.Name, s))
	case "uint16", "uint32", "uint64":
		if scaled {
			return append(dst, num(float64(v)))
		}
		return append(dst, event.Uint(r.Name, v))
	case "float32":
		// The shortest decimal that is this float32 (12.75, not
		// 12.75000011920929): what the device means, and the same float32
		// when narrowed again.
		f := math.Float32frombits(uint32(v))
		d, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
		if err != nil { // NaN and infinities
			d = float64(f)
		}
		return append(dst, num(d))
	case "float64":
		return append(dst, num(math.Float64frombits(v)))
	case "string":
		b := make([]byte, 0, 2*len(regs))
		for _, w := range regs {
			if order == "BADC" || order == "DCBA" {
				b = append(b, byte(w), byte(w>>8))
			} else {
				b = append(b, byte(w>>8), byte(w))
			}
		}
		if i := strings.IndexByte(string(b), 0); i >= 0 {
			b = b[:i]
		}
		return append(dst, event.Str(r.Name, strings.TrimRight(string(b), " ")))
	case "bitfield":
		dst = append(dst, event.Uint(r.Name, v))
		for _, bit := range r.Bits {
			dst = append(dst, event.Bool(r.Name+"."+bit.Name, v&(1<<bit.Bit) != 0))
		}
		return dst
	}
	return dst
}
