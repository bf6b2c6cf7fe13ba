package merkle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

// The leaves and roots of Certificate Transparency's reference tests
// (RFC 6962's test vectors, unchanged by RFC 9162).
var ctLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

var ctRoots = []string{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

func TestReferenceRoots(t *testing.T) {
	var f Frontier
	if got := f.Root(); hex.EncodeToString(got[:]) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("empty root %x", got)
	}
	var leaves []Hash
	for i, l := range ctLeaves {
		b, _ := hex.DecodeString(l)
		leaves = append(leaves, LeafHash(b))
		f.Append(leaves[i])
		got := f.Root()
		if hex.EncodeToString(got[:]) != ctRoots[i] {
			t.Errorf("frontier root of %d leaves %x, want %s", i+1, got, ctRoots[i])
		}
		if r := Root(leaves); r != got {
			t.Errorf("recursive root of %d leaves %x, frontier %x", i+1, r, got)
		}
	}
}

func leavesOf(n int) []Hash {
	out := make([]Hash, n)
	for i := range out {
		out[i] = RecordLeaf(uint64(1000+i), fmt.Appendf(nil, "record %d", i))
	}
	return out
}

func TestFrontierMatchesRecursiveRoot(t *testing.T) {
	leaves := leavesOf(300)
	var f Frontier
	for i, l := range leaves {
		f.Append(l)
		if got, want := f.Root(), Root(leaves[:i+1]); got != want {
			t.Fatalf("size %d: frontier root %x, recursive %x", i+1, got, want)
		}
		b, _ := f.MarshalBinary()
		var g Frontier
		if err := g.UnmarshalBinary(b); err != nil {
			t.Fatalf("size %d: %v", i+1, err)
		}
		if g.Size() != f.Size() || g.Root() != f.Root() {
			t.Fatalf("size %d: round trip changed the frontier", i+1)
		}
	}
}

func TestInclusionProofs(t *testing.T) {
	leaves := leavesOf(70)
	for n := 1; n <= len(leaves); n++ {
		root := Root(leaves[:n])
		for i := 0; i < n; i++ {
			path, err := InclusionProof(leaves[:n], uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(uint64(i), uint64(n), leaves[i], path, root); err != nil {
				t.Fatalf("leaf %d of %d: %v", i, n, err)
			}
			// Each way a proof can be wrong must fail.
			other := leaves[(i+1)%len(leaves)]
			if err := VerifyInclusion(uint64(i), uint64(n), other, path, root); !errors.Is(err, ErrProof) {
				t.Fatalf("leaf %d of %d: another leaf passed (%v)", i, n, err)
			}
			if n > 1 {
				if err := VerifyInclusion(uint64((i+1)%n), uint64(n), leaves[i], path, root); err == nil {
					t.Fatalf("leaf %d of %d: passed at another index", i, n)
				}
				bad := append([]Hash(nil), path...)
				bad[len(bad)-1][0] ^= 1
				if err := VerifyInclusion(uint64(i), uint64(n), leaves[i], bad, root); err == nil {
					t.Fatalf("leaf %d of %d: a damaged path passed", i, n)
				}
				if err := VerifyInclusion(uint64(i), uint64(n), leaves[i], path[:len(path)-1], root); err == nil {
					t.Fatalf("leaf %d of %d: a short path passed", i, n)
				}
			}
			if err := VerifyInclusion(uint64(i), uint64(n), leaves[i], append(path, root), root); err == nil {
				t.Fatalf("leaf %d of %d: a long path passed", i, n)
			}
		}
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	var f Frontier
	f.Append(LeafHash(nil))
	f.Append(LeafHash(nil))
	f.Append(LeafHash(nil))
	good, _ := f.MarshalBinary()
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short header": good[:5],
		"version":      append([]byte{9}, good[1:]...),
		"missing hash": good[:len(good)-32],
		"extra hash":   append(append([]byte(nil), good...), make([]byte, 32)...),
		"partial hash": good[:len(good)-1],
	} {
		var g Frontier
		if err := g.UnmarshalBinary(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzFrontier(f *testing.F) {
	var fr Frontier
	for i := 0; i < 5; i++ {
		fr.Append(LeafHash([]byte{byte(i)}))
		b, _ := fr.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var g Frontier
		if err := g.UnmarshalBinary(b); err != nil {
			return
		}
		out, _ := g.MarshalBinary()
		if string(out) != string(b) {
			t.Fatalf("round trip changed %x into %x", b, out)
		}
		g.Append(LeafHash(b))
		_ = g.Root()
	})
}

func BenchmarkRecordLeafAndAppend(b *testing.B) {
	data := make([]byte, 200)
	var f Frontier
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.Append(RecordLeaf(uint64(i), data))
	}
}
