package uplink

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// bitWriter writes the little-endian bit fields of zstd's forward bit
// streams (FSE table descriptions, RFC 8878 4.1.1).
type bitWriter struct {
	b   []byte
	acc uint64
	n   uint
}

func (w *bitWriter) add(v uint64, bits uint) {
	w.acc |= v << w.n
	w.n += bits
	for w.n >= 8 {
		w.b = append(w.b, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.n > 0 {
		return append(w.b, byte(w.acc))
	}
	return w.b
}

// fseTable writes an FSE table description of the normalized counts norm
// (-1: "less than one") at tableLog, as RFC 8878 4.1.1 reads it.
func fseTable(tableLog uint, norm []int) []byte {
	w := &bitWriter{}
	w.add(uint64(tableLog-5), 4)
	remaining := 1<<tableLog + 1
	threshold := 1 << tableLog
	nbBits := tableLog + 1
	for i := 0; i < len(norm) && remaining > 1; i++ {
		max := 2*threshold - 1 - remaining
		remaining -= abs(norm[i])
		v := norm[i] + 1
		if v >= threshold {
			v += max
		}
		bits := nbBits
		if v < max {
			bits--
		}
		w.add(uint64(v), bits)
		if norm[i] == 0 {
			// Repeat flags: how many more symbols have a zero count.
			zeros := 0
			for i+1+zeros < len(norm) && norm[i+1+zeros] == 0 {
				zeros++
			}
			for ; zeros >= 3; zeros -= 3 {
				w.add(3, 2)
			}
			w.add(uint64(zeros), 2)
			i += zeros
		}
		for remaining < threshold {
			nbBits--
			threshold >>= 1
		}
	}
	return w.bytes()
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// literalsBlock is a compressed zstd block holding only Huffman-coded
// literals (one stream, no sequences) whose weights table is the FSE
// stream weights.
func literalsBlock(last bool, weights, stream []byte, regen int) []byte {
	tree := append([]byte{byte(len(weights))}, weights...)
	comp := len(tree) + len(stream)
	h := uint32(2) | uint32(regen)<<4 | uint32(comp)<<14 // compressed literals, one stream, 10-bit sizes
	content := []byte{byte(h), byte(h >> 8), byte(h >> 16)}
	content = append(content, tree...)
	content = append(content, stream...)
	content = append(content, 0) // no sequences
	bh := uint32(2)<<1 | uint32(len(content))<<3
	if last {
		bh |= 1
	}
	return append([]byte{byte(bh), byte(bh >> 8), byte(bh >> 16)}, content...)
}

// twoBlockFrame is a zstd frame of two blocks whose Huffman weights are
// FSE-coded at tableLog 15, which the format does not allow for weights.
// The first block is valid: its table (counts 0, -1, 16383, 16384) puts
// both FSE states in the one cell of weight 1, giving weights 1, 1 (and an
// implied 2), and seven literals follow. The second table gives its one
// symbol the whole table, a count of 1<<15 that klauspost/compress before
// v1.20.2 truncated to an int16: it then built the second table over the
// first one's cells and decoded with zero-bit states read as garbage,
// indexing past the table (GO-2026-6865). A decoder must refuse it.
func twoBlockFrame() []byte {
	frame := binary.LittleEndian.AppendUint32(nil, 0xFD2FB528)
	frame = append(frame, 0x00, 0x00) // no content size, no checksum; 1 KiB window
	first := append(fseTable(15, []int{0, -1, 16383, 16384}), 0xff, 0xff, 0xff, 0x7f)
	frame = append(frame, literalsBlock(false, first, []byte{0xff}, 7)...)
	second := append(fseTable(15, []int{0, 1 << 15}), bytes.Repeat([]byte{0x5a}, 16)...)
	second = append(second, 0x01)
	return append(frame, literalsBlock(true, second, []byte{0xff}, 7)...)
}

// twoBlockFile holds twoBlockFrame for the tests of other packages (the
// collector's session test, its batch fuzzer's seed, the hostile-client
// suite).
const twoBlockFile = "testdata/zstd-two-block.bin"

func TestTwoBlockFrameFile(t *testing.T) {
	want := twoBlockFrame()
	if os.Getenv("WEIR_UPDATE_TESTDATA") != "" {
		require.NoError(t, os.WriteFile(twoBlockFile, want, 0o644))
	}
	got, err := os.ReadFile(filepath.FromSlash(twoBlockFile))
	require.NoError(t, err)
	require.Equal(t, want, got, "%s is stale: WEIR_UPDATE_TESTDATA=1 go test -run TestTwoBlockFrameFile ./uplink", twoBlockFile)
}

// TestDecompressTwoBlockFrame: the frame is an error, not a panic (with
// klauspost/compress v1.20.1 it panics: index out of range [44310] with
// length 32768).
func TestDecompressTwoBlockFrame(t *testing.T) {
	d, err := NewDecompressor(1 << 20)
	require.NoError(t, err)
	defer d.Close()
	for range 3 { // the decoder's state and the package's pools are reused
		_, err := d.Decompress(CodecZstd, twoBlockFrame(), nil)
		require.Error(t, err)
	}
}
