package uplink

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Compressor compresses Data payloads. It is not safe for concurrent use;
// each session holds its own.
type Compressor struct {
	codec Codec
	enc   *zstd.Encoder
}

// NewCompressor builds a compressor for codec at a zstd level (1..22, as
// the zstd command line tool counts; mapped to the nearest of the
// encoder's speeds).
func NewCompressor(codec Codec, level int) (*Compressor, error) {
	c := &Compressor{codec: codec}
	switch codec {
	case CodecNone:
	case CodecZstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, fmt.Errorf("uplink: zstd encoder at level %d: %w", level, err)
		}
		c.enc = enc
	default:
		return nil, fmt.Errorf("uplink: unknown codec %d", codec)
	}
	return c, nil
}

// Codec is what Compress produces.
func (c *Compressor) Codec() Codec { return c.codec }

// Compress appends the encoded form of payload to dst.
func (c *Compressor) Compress(dst, payload []byte) []byte {
	if c.enc == nil {
		return append(dst, payload...)
	}
	return c.enc.EncodeAll(payload, dst)
}

// Close releases the encoder.
func (c *Compressor) Close() {
	if c.enc != nil {
		_ = c.enc.Close()
	}
}

// Decompressor undoes a Compressor with a bound on the decoded size, so a
// small payload that expands enormously (a zip bomb) is an error rather
// than an allocation. Not safe for concurrent use.
type Decompressor struct {
	max int
	dec *zstd.Decoder
}

// NewDecompressor bounds decoded payloads to limit bytes.
func NewDecompressor(limit int) (*Decompressor, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)),
		zstd.WithDecoderMaxWindow(uint64(max(limit, zstd.MinWindowSize))))
	if err != nil {
		return nil, fmt.Errorf("uplink: zstd decoder: %w", err)
	}
	return &Decompressor{max: limit, dec: dec}, nil
}

// ErrTooLarge says a payload decodes to more than the bound.
var ErrTooLarge = errors.New("decoded payload exceeds the limit")

// Decompress returns the plain payload of a Data message; for CodecNone it
// is payload itself, otherwise it is decoded into buf (reused).
func (d *Decompressor) Decompress(codec Codec, payload, buf []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		if len(payload) > d.max {
			return nil, fmt.Errorf("uplink: %d-byte payload: %w (%d)", len(payload), ErrTooLarge, d.max)
		}
		return payload, nil
	case CodecZstd:
		out, err := d.dec.DecodeAll(payload, buf[:0])
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) || len(out) > d.max {
			return nil, fmt.Errorf("uplink: zstd payload of %d bytes: %w (%d)", len(payload), ErrTooLarge, d.max)
		}
		if err != nil {
			return nil, fmt.Errorf("uplink: zstd payload of %d bytes: %w", len(payload), err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("uplink: unknown codec %d", codec)
}

// Close releases the decoder.
func (d *Decompressor) Close() { d.dec.Close() }
