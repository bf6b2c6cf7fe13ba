package spool

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/weirgw/weir/merkle"
)

// The spool's records are the leaves of a Merkle log (package merkle), in
// sequence order: leaf i is the record with sequence First+i, hashed with
// merkle.RecordLeaf over its sequence and the bytes it was given. The
// frontier is written in the transaction that writes the records, so the
// tree and the records never disagree after a crash. Records that eviction
// or expiry removes stay leaves; each is written to the eviction log (its
// sequence and leaf hash, in the transaction that removes it) for the
// gateway to declare in its next seal.

// TreeHead is where the spool's Merkle log stands.
type TreeHead struct {
	First uint64      // sequence of leaf 0: where this log began
	Size  uint64      // leaves: the records First .. First+Size-1
	Root  merkle.Hash // RFC 9162 root of those leaves
	// Began says why the log began at Open with this spool ("" when Open
	// found it and continued it): "new spool", "spool without a tree"
	// (written by firmware before the log), or the disagreement that
	// made it start again.
	Began string
	// Evicted is, for AppendHead's builder only, the eviction log from
	// the number it asked for: every eviction before the record, its own
	// admission's included.
	Evicted []Eviction
}

// Last is the sequence of the newest leaf (First-1 when the log is empty).
func (h TreeHead) Last() uint64 { return h.First + h.Size - 1 }

// Eviction is a record eviction or expiry removed before it was
// acknowledged: still a leaf of the log, declared in the next seal.
type Eviction struct {
	N    uint64      // its place in the eviction log
	Seq  uint64      // the record's sequence
	Leaf merkle.Hash // its leaf hash
}

const (
	keyTree        = "s/tree" // first sequence (8 BE) + marshalled frontier
	keyEvictNext   = "s/evn"  // next eviction number
	evictionPrefix = "s/ev/"  // s/ev/<n: 8 BE> → seq (8 BE) + leaf hash
)

// Tree returns the log's head as of the last commit.
func (s *Spool) Tree() TreeHead {
	s.mu.Lock()
	defer s.mu.Unlock()
	return TreeHead{First: s.treeFirst, Size: s.tree.Size(), Root: s.tree.Root(), Began: s.treeBegan}
}

func encodeTree(first uint64, f *merkle.Frontier) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+9+64*32), first)
	return f.AppendBinary(b)
}

func decodeTree(v []byte) (uint64, merkle.Frontier, error) {
	var f merkle.Frontier
	if len(v) < 8 {
		return 0, f, fmt.Errorf("tree of %d bytes", len(v))
	}
	err := f.UnmarshalBinary(v[8:])
	return binary.BigEndian.Uint64(v), f, err
}

// loadTree reads the frontier and the eviction counter, or starts a log at
// s.next when the tree is missing or disagrees with the records.
func (s *Spool) loadTree(txn *badger.Txn) error {
	var err error
	if _, s.evictNext, err = getUint64(txn, keyEvictNext); err != nil {
		return err
	}
	item, err := txn.Get([]byte(keyTree))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		s.treeFirst, s.tree, s.treeBegan = 0, merkle.Frontier{}, "spool without a tree"
		return nil
	case err != nil:
		return err
	}
	var first uint64
	var f merkle.Frontier
	derr := item.Value(func(v []byte) (err error) {
		first, f, err = decodeTree(v)
		return err
	})
	if derr != nil {
		s.treeFirst, s.tree, s.treeBegan = 0, merkle.Frontier{}, fmt.Sprintf("tree unreadable: %v", derr)
		return nil
	}
	s.treeFirst, s.tree, s.treeBegan = first, f, ""
	return nil
}

// settleTree runs once s.next is final at Open: a tree that does not end
// just below it begins again there (nothing is lost: its records stay in
// the spool, and they were leaves of seals already made).
func (s *Spool) settleTree(fresh bool) {
	switch {
	case fresh:
		s.treeFirst, s.tree, s.treeBegan = s.next, merkle.Frontier{}, "new spool"
	case s.treeBegan != "":
		s.treeFirst, s.tree = s.next, merkle.Frontier{}
	case s.treeFirst+s.tree.Size() != s.next:
		s.treeBegan = fmt.Sprintf("tree ends at %d, records at %d", s.treeFirst+s.tree.Size()-1, s.next-1)
		s.treeFirst, s.tree = s.next, merkle.Frontier{}
	}
	if s.treeBegan != "" {
		s.log.Info("spool: the Merkle log begins", "dir", s.dir, "first", s.treeFirst, "why", s.treeBegan)
	}
}

func evictionKey(n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(evictionPrefix), n)
}

// Evictions returns up to max entries of the eviction log from number
// from on, oldest first.
func (s *Spool) Evictions(from uint64, max int) ([]Eviction, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.readEvictions(from, max)
}

// readEvictions is Evictions without the close lock (the writer's).
func (s *Spool) readEvictions(from uint64, max int) ([]Eviction, error) {
	var out []Eviction
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(evictionPrefix), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(evictionKey(from)); it.Valid() && len(out) < max; it.Next() {
			k := it.Item().Key()
			if len(k) != len(evictionPrefix)+8 {
				return fmt.Errorf("malformed eviction key %x", k)
			}
			e := Eviction{N: binary.BigEndian.Uint64(k[len(evictionPrefix):])}
			err := it.Item().Value(func(v []byte) error {
				if len(v) != 8+len(e.Leaf) {
					return fmt.Errorf("eviction %d: value of %d bytes", e.N, len(v))
				}
				e.Seq = binary.BigEndian.Uint64(v)
				copy(e.Leaf[:], v[8:])
				return nil
			})
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool: read the eviction log in %s: %w", s.dir, err)
	}
	return out, nil
}

// EvictionsNext is the number the next eviction will get.
func (s *Spool) EvictionsNext() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evictNext
}

// ForgetEvictions deletes the eviction log's entries below n, once a seal
// that declares them is spooled.
func (s *Spool) ForgetEvictions(below uint64) error {
	r := &forgetReq{below: below, err: make(chan error, 1)}
	select {
	case s.forgetCh <- r:
	case <-s.quit:
		return ErrClosed
	}
	return <-r.err
}

type forgetReq struct {
	below uint64
	err   chan error
}

// forget runs in the writer.
func (s *Spool) forget(below uint64) error {
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(evictionPrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if len(k) != len(evictionPrefix)+8 || binary.BigEndian.Uint64(k[len(evictionPrefix):]) >= below {
				break
			}
			keys = append(keys, k)
		}
		return nil
	})
	for start := 0; err == nil && start < len(keys); start += deletePairsPerTxn {
		err = s.db.Update(func(txn *badger.Txn) error {
			for _, k := range keys[start:min(start+deletePairsPerTxn, len(keys))] {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("spool: forget evictions below %d in %s: %w", below, s.dir, err)
	}
	return nil
}

// leafOf is the leaf hash of a stored record. A record that cannot be read
// or fails its checksum gets the zero hash: declared so, it fails every
// check of the seals that cover it, as a damaged record should.
func (s *Spool) leafOf(txn *badger.Txn, seg uint32, seq uint64, cl Class) merkle.Hash {
	key := appendRecordKey(nil, seg, seq, cl)
	item, err := txn.Get(key)
	if err != nil {
		return merkle.Hash{}
	}
	var leaf merkle.Hash
	_ = item.Value(func(v []byte) error {
		if _, data, kind := parseRecordValue(key, v, seq >= s.checkedFrom); kind == valueRecord {
			leaf = merkle.RecordLeaf(seq, data)
		}
		return nil
	})
	return leaf
}
