package poll

import (
	"encoding/binary"
	"testing"

	"github.com/weirgw/weir/event"
)

// refLayout is an independent statement of the orders: the index, in the
// big-endian value's bytes, of each byte on the wire, for 2, 4 and 8 bytes.
var refLayout = map[string]map[int][]int{
	"ABCD": {2: {0, 1}, 4: {0, 1, 2, 3}, 8: {0, 1, 2, 3, 4, 5, 6, 7}},
	"DCBA": {2: {1, 0}, 4: {3, 2, 1, 0}, 8: {7, 6, 5, 4, 3, 2, 1, 0}},
	"BADC": {2: {1, 0}, 4: {1, 0, 3, 2}, 8: {1, 0, 3, 2, 5, 4, 7, 6}},
	"CDAB": {2: {0, 1}, 4: {2, 3, 0, 1}, 8: {6, 7, 4, 5, 2, 3, 0, 1}},
}

// FuzzDecodeRegisters decodes arbitrary register contents as every type in
// every order: no panic, and unsigned integers agree with refLayout.
func FuzzDecodeRegisters(f *testing.F) {
	f.Add([]byte{0x41, 0x48, 0, 0, 0xde, 0xad, 0xbe, 0xef})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, wire []byte) {
		if len(wire) < 8 {
			return
		}
		wire = wire[:8]
		regs := make([]uint16, 4)
		for i := range regs {
			regs[i] = binary.BigEndian.Uint16(wire[2*i:])
		}
		for _, o := range orders {
			for _, typ := range dataTypes {
				r := RegisterConfig{Name: "v", Register: "holding", Type: typ, Order: o, Length: 4}
				if typ == "bitfield" {
					r.Length, r.Bits = 2, []BitConfig{{Bit: 31, Name: "top"}}
				}
				n := r.count()
				fs := r.appendFields(nil, regs[:n], nil)
				if len(fs) == 0 {
					t.Fatalf("%s %s: no field", typ, o)
				}
				if typ != "uint16" && typ != "uint32" && typ != "uint64" {
					continue
				}
				var want uint64
				be := make([]byte, 2*n)
				for wi, vi := range refLayout[o][2*n] {
					be[vi] = wire[wi]
				}
				for _, b := range be {
					want = want<<8 | uint64(b)
				}
				if fs[0].Value.Type != event.TypeUint || fs[0].Value.Num != want {
					t.Fatalf("%s %s of % x: got %v, want %d", typ, o, wire[:2*n], fs[0].Value, want)
				}
			}
		}
	})
}

func BenchmarkDecodeReading(b *testing.B) {
	d := DefaultDeviceConfig()
	for i, typ := range []string{"float32", "int32", "uint16", "int16", "float64", "uint32", "int64", "uint16"} {
		d.Registers = append(d.Registers, RegisterConfig{Name: "r" + typ + string(rune('a'+i)), Register: "holding",
			Address: 4 * i, Type: typ, Order: orders[i%4]})
	}
	regs := make([]uint16, 32)
	for i := range regs {
		regs[i] = uint16(i * 7919)
	}
	fields := make([]event.Field, 0, len(d.Registers))
	b.ReportAllocs()
	for b.Loop() {
		fields = fields[:0]
		for _, r := range d.Registers {
			fields = r.appendFields(fields, regs[r.Address:r.Address+r.count()], nil)
		}
	}
}
