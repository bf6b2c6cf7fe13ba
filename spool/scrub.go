package spool

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/dgraph-io/ristretto/v2/z"
)

// Before Badger opens a spool, the spool checks every table the manifest
// lists, block by block (scrubTables), because of what Badger does with
// damage once it runs:
//
//   - It opens tables in goroutines of its own. A table cut short or
//     overwritten with zeros makes it read out of range there: a panic no
//     caller can recover, at every start. Checked here first, such a table
//     is an error like any Badger returns, and the spool is moved aside.
//   - Its iterators end a table silently at a block whose checksum fails.
//     A compaction that reads the table then writes out what came before
//     the block and deletes the rest: thousands of records lost without a
//     word. So the readable records of a table with a damaged block are
//     written again (salvage) before any compaction may run; a compaction
//     can then drop the table's rest, and only the damaged block's records
//     are lost, which Read quarantines and reports.
//
// Checking reads every table once at each start; on a warm page cache a
// 1 GiB backlog takes well under a second (see the spool's figures in
// docs/ARCHITECTURE.md).

// damagedTable is a table with a block whose checksum fails.
type damagedTable struct {
	name              string
	smallest, biggest []byte // user keys
	err               error
}

// scrubTables checks the manifest's tables. It returns an error for a table
// Badger could not open at all, and the tables it could open with blocks
// that fail their checksum. A manifest that cannot be read is left for
// Badger to refuse.
func scrubTables(o badger.Options) ([]damagedTable, error) {
	f, err := os.Open(filepath.Join(o.Dir, badger.ManifestFilename))
	if err != nil {
		return nil, nil
	}
	m, end, err := badger.ReplayManifestFile(f, o.ExternalMagicVersion, o)
	fi, serr := f.Stat()
	f.Close()
	if err != nil || serr != nil {
		return nil, nil
	}
	torn := end < fi.Size()
	ids := make([]uint64, 0, len(m.Tables))
	for id := range m.Tables {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if err := checkOrphans(o.Dir, m, torn); err != nil {
		return nil, err
	}
	var damaged []damagedTable
	for _, id := range ids {
		name := table.NewFilename(id, o.Dir)
		d, err := scrubTable(name, o)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", name, err)
		}
		if d != nil {
			damaged = append(damaged, *d)
		}
	}
	return damaged, nil
}

// checkOrphans looks for tables the manifest does not list, which Badger
// deletes at Open. A compaction or a drop killed between writing its
// change and removing or adopting its files leaves a few such tables; that
// is normal. A manifest that lists no table at all while tables are in the
// directory, and either ends in a torn entry or has two or more tables
// beside it, was cut short (a file system that lost its tail after a power
// cut): Badger would delete every table and start an empty spool without a
// word, so the spool is moved aside with them instead. (A first flush
// killed before its manifest entry leaves one table and a whole entry, or
// none: its records are still in the write-ahead log.) A manifest that
// lost only some entries costs the records of the tables it forgot, which
// Read finds missing and quarantines.
func checkOrphans(dir string, m badger.Manifest, torn bool) error {
	if len(m.Tables) > 0 {
		return nil
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		return err
	}
	if len(names) >= 2 || (torn && len(names) > 0) {
		return fmt.Errorf("the manifest lists no table, and %d tables are in the directory: the manifest lost its entries", len(names))
	}
	return nil
}

// scrubTable opens one table read-only and reads every block.
func scrubTable(name string, o badger.Options) (d *damagedTable, err error) {
	if _, err := os.Stat(name); errors.Is(err, os.ErrNotExist) {
		return nil, nil // Badger says so itself
	}
	if err := checkFooter(name); err != nil {
		return nil, err
	}
	mf, err := z.OpenMmapFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			d, err = nil, fmt.Errorf("damaged: badger: %v", r)
		}
	}()
	t, err := table.OpenTable(mf, table.Options{ReadOnly: true, ChkMode: options.OnBlockRead,
		BlockSize: o.BlockSize, Compression: options.None, TableSize: uint64(o.BaseTableSize)})
	if err != nil {
		_ = mf.Close(-1)
		return nil, err
	}
	defer t.Close(-1) // unmaps; DecrRef to zero would delete the file
	// Seeking to each block's first key reads that block, checksum
	// checked. (Table.VerifyChecksum would do it, but dereferences the nil
	// block it gets back from a damaged one.)
	it := t.NewIterator(table.NOCACHE)
	defer it.Close()
	var bad []int
	for i, k := range t.KeySplits(math.MaxInt32, nil) {
		if it.Seek([]byte(k)); !it.Valid() {
			bad = append(bad, i)
		}
	}
	if len(bad) > 0 {
		return &damagedTable{name: name, smallest: y.ParseKey(t.Smallest()), biggest: y.ParseKey(t.Biggest()),
			err: fmt.Errorf("%d of its blocks fail their checksum (first: block %d)", len(bad), bad[0])}, nil
	}
	return nil, nil
}

// salvage writes again every readable key of the damaged tables, on a
// database opened without compactors, so that the newest version of each
// lives in a sound table. Records are looked for one sequence at a time,
// as Read does: the iterator would stop at the damaged block. Other keys
// (marks, checkpoints, index) are taken as far as iteration reaches them.
func (s *Spool) salvage(db *badger.DB, damaged []damagedTable) (int, error) {
	var segs []segment
	var next, acked uint64
	err := db.View(func(txn *badger.Txn) error {
		var err error
		if segs, err = loadSegments(txn); err != nil {
			return err
		}
		if _, acked, err = getUint64(txn, keyAcked); err != nil {
			return err
		}
		_, next, err = getUint64(txn, keyNext)
		return err
	})
	if err != nil {
		return 0, err
	}
	v := readView{segs: segs}
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	n := 0
	set := func(k, val []byte) error {
		n++
		return wb.Set(bytes.Clone(k), bytes.Clone(val))
	}
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for _, d := range damaged {
			// Records: every sequence the table's range can hold.
			lo, hi := uint64(0), next
			if _, seq, _, err := parseRecordKey(d.smallest); err == nil {
				lo = seq
			} else if bytes.Compare(d.smallest, []byte(recordPrefix)) > 0 {
				lo = next // the table holds no records
			} else if len(segs) > 0 {
				lo = segs[0].first
			}
			if _, seq, _, err := parseRecordKey(d.biggest); err == nil {
				hi = seq
			}
			for seq := max(lo, acked+1); seq <= hi && seq < next; seq++ {
				it.Seek(recordSeekKey(v.segmentOf(seq), seq))
				if !it.Valid() {
					continue
				}
				_, got, _, err := parseRecordKey(it.Item().Key())
				if err != nil || got != seq {
					continue
				}
				if err := it.Item().Value(func(val []byte) error { return set(it.Item().Key(), val) }); err != nil {
					return err
				}
			}
			// Everything else in the range, as far as iteration goes.
			from := d.smallest
			if bytes.Compare(from, []byte(metaPrefix)) < 0 {
				from = []byte(metaPrefix)
			}
			for it.Seek(from); it.Valid() && bytes.Compare(it.Item().Key(), d.biggest) <= 0; it.Next() {
				if err := it.Item().Value(func(val []byte) error { return set(it.Item().Key(), val) }); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, wb.Flush()
}
