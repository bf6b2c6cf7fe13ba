package seal

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/merkle"
)

// Head is what a seal states, signed with its epoch's key: the Merkle
// log's head just before the seal's own record, the evictions declared
// since the previous seal, the time and how well it was known, and the
// next epoch's public key.
type Head struct {
	Gateway string
	Epoch   uint64
	First   uint64      // sequence of the log's leaf 0
	Size    uint64      // leaves covered: First .. First+Size-1; the seal itself is First+Size
	Root    merkle.Hash // RFC 9162 root of those leaves
	Time    int64       // ns since the Unix epoch, the gateway's clock
	Quality event.Quality
	NextKey ed25519.PublicKey // the key of epoch Epoch+1
	// Began says why the log began, on the first seal of a log (a new
	// spool, a spool written before the log, a new key); "" after.
	Began   string
	Evicted []Declared // records dropped by the spool's policy since the previous seal
}

// Declared is a record the spool dropped unacknowledged (eviction,
// expiry): still a leaf, its hash given in the seal.
type Declared struct {
	Seq  uint64
	Leaf merkle.Hash
}

// Bounds on a seal, so that one always fits a spool append and a parser
// never allocates from a count it did not check.
const (
	MaxDeclared = 1000 // evictions per seal; more wait for the next seal
	maxString   = 256
	magic       = "WEIRSEAL1"
	// MaxSize is the largest seal in bytes.
	MaxSize = len(magic) + 2*(binary.MaxVarintLen64+maxString) + 4*8 + 32 + 8 + 2 + 8 + 32 + binary.MaxVarintLen64 + MaxDeclared*(8+32) + ed25519.SignatureSize
)

// Statement is the signed bytes: everything but the signature.
func (h *Head) Statement() ([]byte, error) { return h.statement() }

func (h *Head) statement() ([]byte, error) {
	if len(h.Gateway) > maxString || len(h.Began) > maxString {
		return nil, fmt.Errorf("seal: gateway id or reason longer than %d bytes", maxString)
	}
	if len(h.Evicted) > MaxDeclared {
		return nil, fmt.Errorf("seal: %d evictions declared, more than %d", len(h.Evicted), MaxDeclared)
	}
	if len(h.NextKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("seal: next key of %d bytes", len(h.NextKey))
	}
	b := make([]byte, 0, MaxSize)
	b = append(b, magic...)
	b = appendString(b, h.Gateway)
	b = binary.BigEndian.AppendUint64(b, h.Epoch)
	b = binary.BigEndian.AppendUint64(b, h.First)
	b = binary.BigEndian.AppendUint64(b, h.Size)
	b = append(b, h.Root[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Time))
	b = append(b, byte(h.Quality.Source), byte(h.Quality.State))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Quality.ErrorBound))
	b = append(b, h.NextKey...)
	b = appendString(b, h.Began)
	b = binary.AppendUvarint(b, uint64(len(h.Evicted)))
	for _, d := range h.Evicted {
		b = binary.BigEndian.AppendUint64(b, d.Seq)
		b = append(b, d.Leaf[:]...)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Sign returns the seal: the statement and its signature by k's current
// epoch key. h.Epoch must be k's epoch.
func Sign(h *Head, k *Keys) ([]byte, error) {
	if h.Epoch != k.Epoch() {
		return nil, fmt.Errorf("seal: head of epoch %d signed with the key of epoch %d", h.Epoch, k.Epoch())
	}
	st, err := h.statement()
	if err != nil {
		return nil, err
	}
	return append(st, k.Sign(st)...), nil
}

// ErrSignature is a seal whose signature does not verify.
var ErrSignature = errors.New("seal: signature does not verify")

// Open parses a seal and checks its signature against pub (the key of the
// epoch it claims). It never panics on any input.
func Open(b []byte, pub ed25519.PublicKey) (Head, error) {
	h, st, sig, err := Parse(b)
	if err != nil {
		return h, err
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, st, sig) {
		return h, fmt.Errorf("%w (epoch %d)", ErrSignature, h.Epoch)
	}
	return h, nil
}

// Parse splits a seal into its head, the signed statement and the
// signature, without checking the signature.
func Parse(b []byte) (h Head, statement, sig []byte, err error) {
	if len(b) > MaxSize {
		return h, nil, nil, fmt.Errorf("seal: %d bytes, more than %d", len(b), MaxSize)
	}
	if len(b) < len(magic)+ed25519.SignatureSize || string(b[:len(magic)]) != magic {
		return h, nil, nil, errors.New("seal: not a seal")
	}
	st, sig := b[:len(b)-ed25519.SignatureSize], b[len(b)-ed25519.SignatureSize:]
	d := reader{b: st[len(magic):]}
	h.Gateway = d.str()
	h.Epoch = d.u64()
	h.First = d.u64()
	h.Size = d.u64()
	copy(h.Root[:], d.take(32))
	h.Time = int64(d.u64())
	q := d.take(2)
	if q != nil {
		h.Quality.Source, h.Quality.State = event.TimeSource(q[0]), event.ClockState(q[1])
	}
	h.Quality.ErrorBound = int64(d.u64())
	h.NextKey = ed25519.PublicKey(append([]byte(nil), d.take(ed25519.PublicKeySize)...))
	h.Began = d.str()
	n := d.uvarint()
	if d.err == nil && n > MaxDeclared {
		d.err = fmt.Errorf("%d evictions declared, more than %d", n, MaxDeclared)
	}
	if d.err == nil {
		h.Evicted = make([]Declared, 0, min(n, uint64(len(d.b)/40)))
		for range n {
			var x Declared
			x.Seq = d.u64()
			copy(x.Leaf[:], d.take(32))
			if d.err != nil {
				break
			}
			h.Evicted = append(h.Evicted, x)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes after the declared evictions", len(d.b))
	}
	if d.err == nil && h.First+h.Size < h.First {
		d.err = errors.New("first + size overflows")
	}
	if d.err != nil {
		return Head{}, nil, nil, fmt.Errorf("seal: malformed: %w", d.err)
	}
	return h, st, sig, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = errors.New("cut short")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	// One encoding per seal: a padded varint would make two statements
	// of one head.
	if n != len(binary.AppendUvarint(nil, v)) {
		r.err = errors.New("varint not in its shortest form")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err == nil && n > maxString {
		r.err = fmt.Errorf("string of %d bytes", n)
	}
	return string(r.take(int(n)))
}
