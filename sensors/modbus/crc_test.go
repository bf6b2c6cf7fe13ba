package modbus

import (
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
)

func TestCRC16(t *testing.T) {
	tests := []struct {
		name string
		in   string // hex, or text when prefixed with "="
		want uint16
	}{
		{"catalogue check value", "=123456789", 0x4B37},
		{"empty is the initial value", "", 0xFFFF},
		{"read holding request", "01 03 00 00 00 0a", 0xCDC5},
		{"spec response example", "11 03 06 ae 41 56 52 43 40", 0xAD49},
		{"write single coil", "11 05 00 ac ff 00", 0x8B4E},
		{"single zero byte", "00", 0x40BF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in []byte
			if s, ok := strings.CutPrefix(tt.in, "="); ok {
				in = []byte(s)
			} else {
				var err error
				in, err = hex.DecodeString(strings.ReplaceAll(tt.in, " ", ""))
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := CRC16(in); got != tt.want {
				t.Fatalf("CRC16(%q) = 0x%04X, want 0x%04X", tt.in, got, tt.want)
			}
			// A frame with its CRC appended checks, and any single flipped
			// bit is caught.
			f := AppendCRC(in)
			if ok, _, _ := checkCRC(f); len(f) >= 3 && !ok {
				t.Fatalf("checkCRC(AppendCRC) failed for % x", f)
			}
			for bit := range 8 * len(f) {
				g := append([]byte(nil), f...)
				g[bit/8] ^= 1 << (bit % 8)
				if ok, _, _ := checkCRC(g); ok && len(g) >= 3 {
					t.Fatalf("flip of bit %d in % x not caught", bit, f)
				}
			}
		})
	}
}

// TestCRCTableMatchesBitwise guards the table against the bitwise
// definition over every byte value and a longer run.
func TestCRCTableMatchesBitwise(t *testing.T) {
	bitwise := func(b []byte) uint16 {
		c := uint16(0xFFFF)
		for _, x := range b {
			c ^= uint16(x)
			for range 8 {
				if c&1 != 0 {
					c = c>>1 ^ 0xA001
				} else {
					c >>= 1
				}
			}
		}
		return c
	}
	buf := make([]byte, 1024)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	for n := range len(buf) {
		if got, want := CRC16(buf[:n]), bitwise(buf[:n]); got != want {
			t.Fatalf("len %d: table 0x%04X, bitwise 0x%04X", n, got, want)
		}
	}
}

func BenchmarkCRC16(b *testing.B) {
	for _, size := range []int{8, 256, 64 << 10} {
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = byte(i)
		}
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			var sink uint16
			for b.Loop() {
				sink ^= CRC16(buf)
			}
			_ = sink
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
