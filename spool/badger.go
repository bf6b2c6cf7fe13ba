package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// badgerOptions is the one place the spool chooses Badger's settings.
//
// Both profiles keep every record in the LSM tree (the value threshold is
// above MaxAppendBytes): a queue's records then go away with their
// segment's tables, and the value log, whose garbage collection would only
// slowly give back a queue's space, stays empty. Neither profile compresses
// (records are compact already) or keeps block and index caches (Badger's
// 256 MiB default cache is a whole board); bloom filters are off, since the
// spool finds keys by iterating. Every commit is fsynced (SyncWrites); the
// writer groups concurrent appends so they share it.
//
// small (256–512 MiB boards, 32-bit ARM), measured by weir-bench with a
// 1 GiB backlog under the gateway's default 64 MiB Go memory limit: about
// 50 MiB of private memory; the mapped table files come on top as page
// cache, which the kernel reclaims.
//   - 2 MiB memtables, two of them. One transaction may hold 15 % of a
//     memtable (307 KiB), which is why an Append carries at most
//     MaxAppendBytes.
//   - 2 MiB tables. Each table Badger builds takes a buffer of twice the
//     table size, and Badger pools up to eight of them: 32 MiB. With 8 MiB
//     tables the pool alone held 128 MiB.
//   - every table the same size, and at least a memtable's: a table
//     builder that outgrows its first buffer grows a second one, which
//     ristretto's allocator indexes wrongly on 32-bit ARM (it shifts the
//     buffer index by 32 in a 32-bit int, and tables come out corrupt).
//     Builders are pooled and reused whatever size is asked for, so a
//     deeper level's larger tables (the default multiplier doubles them)
//     would be built in a smaller level's buffer.
//   - three levels and few level-0 tables: with two, filling a 1 GiB
//     backlog slowed to 33k records/s; with three it keeps 80k.
//   - 16 MiB value-log files (Badger's 1 GiB default cannot even be mapped
//     twice in a 32-bit address space).
//
// large: Badger's defaults for memory (five 64 MiB memtables, seven
// levels), 64 MiB value-log files; 64-bit only.
func badgerOptions(dir string, c Config) badger.Options {
	o := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithNumVersionsToKeep(1).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithBloomFalsePositive(0).
		WithValueThreshold(valueThreshold).
		WithDetectConflicts(false). // one writer: nothing to detect
		WithChecksumVerificationMode(options.OnBlockRead)
	if c.Profile == ProfileLarge {
		return o.WithValueLogFileSize(64 << 20)
	}
	o.TableSizeMultiplier = 1 // it has no With method
	return o.
		WithMemTableSize(smallMemtable).
		WithNumMemtables(smallMemtables).
		WithMaxLevels(3).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(6).
		WithBaseTableSize(smallMemtable).
		WithNumCompactors(2).
		WithValueLogFileSize(16 << 20)
}

// checkFooter checks that a table's footer (index, index length, checksum,
// checksum length, from the end) fits its file.
func checkFooter(name string) error {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil // Badger says so itself
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size < 12 {
		return fmt.Errorf("damaged: %d bytes, too short for a table", size)
	}
	var b [4]byte
	if _, err := f.ReadAt(b[:], size-4); err != nil {
		return err
	}
	sumLen := int64(binary.BigEndian.Uint32(b[:]))
	if sumLen == 0 || sumLen > size-8 {
		return fmt.Errorf("damaged: checksum length %d in a file of %d bytes", sumLen, size)
	}
	if _, err := f.ReadAt(b[:], size-8-sumLen); err != nil {
		return err
	}
	indexLen := int64(binary.BigEndian.Uint32(b[:]))
	if indexLen == 0 || indexLen > size-8-sumLen {
		return fmt.Errorf("damaged: index length %d in a file of %d bytes", indexLen, size)
	}
	return nil
}

// smallMemtable is the small profile's memtable size, and smallMemtables
// how many it keeps.
const (
	smallMemtable  = 2 << 20
	smallMemtables = 2
	largeMemtable  = 64 << 20 // Badger's default
)

// valueThreshold keeps every record, up to MaxAppendBytes, in the LSM tree.
// It may not exceed the largest transaction of the smallest memtable
// (15 % of it).
const valueThreshold = 256 << 10

// badgerLogger adapts Badger's printf logger to slog, keeping only
// warnings and errors: Badger's info output is a running commentary.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(format string, args ...any) {
	l.log.Error(strings.TrimSpace(fmt.Sprintf(format, args...)), "lib", "badger")
}

func (l badgerLogger) Warningf(format string, args ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprintf(format, args...)), "lib", "badger")
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
