package merkle

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Hash is a SHA-256 digest: a leaf, a node or a root.
type Hash [sha256.Size]byte

// Prefixes of RFC 9162 §2.1.1: a leaf's hash can never equal a node's.
const (
	leafPrefix = 0x00
	nodePrefix = 0x01
)

// EmptyRoot is the root of the tree of no leaves: SHA-256 of nothing.
var EmptyRoot = Hash(sha256.Sum256(nil))

// LeafHash is SHA-256(0x00 || data).
func LeafHash(data []byte) Hash {
	h := sha256.New()
	h.Write([]byte{leafPrefix})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// RecordLeaf is the leaf hash of the record with sequence seq and encoded
// bytes data: SHA-256(0x00 || seq (8 bytes BE) || data).
func RecordLeaf(seq uint64, data []byte) Hash {
	h := sha256.New()
	var pre [9]byte
	pre[0] = leafPrefix
	binary.BigEndian.PutUint64(pre[1:], seq)
	h.Write(pre[:])
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// NodeHash is SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash {
	var b [1 + 2*sha256.Size]byte
	b[0] = nodePrefix
	copy(b[1:], left[:])
	copy(b[1+sha256.Size:], right[:])
	return sha256.Sum256(b[:])
}

// Frontier is the right edge of a tree: the roots of its perfect
// subtrees, largest first, one per bit set in its size. It is all that is
// needed to append a leaf and to compute the root.
type Frontier struct {
	size  uint64
	nodes []Hash
}

// Size is the number of leaves.
func (f *Frontier) Size() uint64 { return f.size }

// Clone returns an independent copy.
func (f *Frontier) Clone() Frontier {
	return Frontier{size: f.size, nodes: append([]Hash(nil), f.nodes...)}
}

// Append adds a leaf hash.
func (f *Frontier) Append(leaf Hash) {
	n := leaf
	// Each trailing one bit of the old size is a perfect subtree the new
	// leaf completes into one twice its size.
	for s := f.size; s&1 == 1; s >>= 1 {
		last := len(f.nodes) - 1
		n = NodeHash(f.nodes[last], n)
		f.nodes = f.nodes[:last]
	}
	f.nodes = append(f.nodes, n)
	f.size++
}

// Root is the tree's hash (RFC 9162 §2.1.1): the perfect subtrees folded
// from the right.
func (f *Frontier) Root() Hash {
	if len(f.nodes) == 0 {
		return EmptyRoot
	}
	r := f.nodes[len(f.nodes)-1]
	for i := len(f.nodes) - 2; i >= 0; i-- {
		r = NodeHash(f.nodes[i], r)
	}
	return r
}

// frontierVersion is the first byte of a marshalled frontier.
const frontierVersion = 1

// MarshalBinary is: version (1), size (8 bytes BE), then one hash per bit
// set in size, largest subtree first.
func (f *Frontier) MarshalBinary() ([]byte, error) {
	return f.AppendBinary(nil), nil
}

// AppendBinary appends the marshalled frontier to dst.
func (f *Frontier) AppendBinary(dst []byte) []byte {
	dst = append(dst, frontierVersion)
	dst = binary.BigEndian.AppendUint64(dst, f.size)
	for _, n := range f.nodes {
		dst = append(dst, n[:]...)
	}
	return dst
}

// UnmarshalBinary reads what MarshalBinary wrote, refusing a count of
// hashes that does not match the size.
func (f *Frontier) UnmarshalBinary(b []byte) error {
	if len(b) < 9 {
		return fmt.Errorf("merkle: frontier of %d bytes: shorter than its 9-byte header", len(b))
	}
	if b[0] != frontierVersion {
		return fmt.Errorf("merkle: frontier version %d, want %d", b[0], frontierVersion)
	}
	size := binary.BigEndian.Uint64(b[1:])
	want := bits.OnesCount64(size)
	if len(b)-9 != want*sha256.Size {
		return fmt.Errorf("merkle: frontier of size %d holds %d bytes of hashes, want %d", size, len(b)-9, want*sha256.Size)
	}
	nodes := make([]Hash, want)
	for i := range nodes {
		copy(nodes[i][:], b[9+i*sha256.Size:])
	}
	f.size, f.nodes = size, nodes
	return nil
}

// Root computes the root of a list of leaf hashes directly (RFC 9162's
// recursive definition), for trees held whole.
func Root(leaves []Hash) Hash {
	if len(leaves) == 0 {
		return EmptyRoot
	}
	return subtree(leaves)
}

func subtree(leaves []Hash) Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := split(uint64(len(leaves)))
	return NodeHash(subtree(leaves[:k]), subtree(leaves[k:]))
}

// split is the largest power of two smaller than n (n > 1).
func split(n uint64) uint64 {
	return 1 << (bits.Len64(n-1) - 1)
}

// InclusionProof is the audit path of leaf index in the tree of leaves
// (RFC 9162 §2.1.3.1), nearest the leaf first.
func InclusionProof(leaves []Hash, index uint64) ([]Hash, error) {
	n := uint64(len(leaves))
	if index >= n {
		return nil, fmt.Errorf("merkle: inclusion proof for leaf %d of a tree of %d", index, n)
	}
	var path []Hash
	for n > 1 {
		k := split(n)
		if index < k {
			path = append(path, subtree(leaves[k:]))
			leaves = leaves[:k]
		} else {
			path = append(path, subtree(leaves[:k]))
			leaves = leaves[k:]
			index -= k
		}
		n = uint64(len(leaves))
	}
	// Built from the root down; the proof goes from the leaf up.
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path, nil
}

// ErrProof is a proof that does not lead to the root.
var ErrProof = errors.New("merkle: proof does not match the root")

// VerifyInclusion checks that leaf is leaf index of the tree of size
// leaves whose root is root, by the audit path (RFC 9162 §2.1.3.2).
func VerifyInclusion(index, size uint64, leaf Hash, path []Hash, root Hash) error {
	if index >= size {
		return fmt.Errorf("merkle: leaf %d is not in a tree of %d", index, size)
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range path {
		if sn == 0 {
			return fmt.Errorf("%w: the path is longer than a tree of %d needs", ErrProof, size)
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: the path is shorter than a tree of %d needs", ErrProof, size)
	}
	if r != root {
		return ErrProof
	}
	return nil
}
