package spool

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// badgerOptions is the one place the spool chooses Badger's settings.
//
// Both profiles keep every record in the LSM tree (value threshold 1 MiB,
// above MaxAppendBytes): a queue's records then go away with their
// segment's tables, and the value log, whose garbage collection can only
// rewrite files and, for a queue, brings deleted entries' space back
// slowly, stays empty. Neither profile compresses (records are compact
// already) or keeps block and index caches (Badger's 256 MiB default cache
// is a whole board); bloom filters are off, since the spool looks keys up
// only by iterating. Every commit is fsynced (SyncWrites); the writer
// groups concurrent appends so they share it.
//
// small (256–512 MiB boards, 32-bit ARM):
//   - 8 MiB memtables, two of them, mapped as about 10 MiB files: one
//     transaction may hold 15 % of a memtable (1.2 MiB), which is why an
//     Append carries at most MaxAppendBytes.
//   - two levels, few level-0 tables and base tables of max_bytes/128 (8 to
//     64 MiB), so compaction merges new tables into few large ones and a
//     dropped segment's tables are mostly its own.
//   - base tables at least a memtable's size: Badger's table builder starts
//     with twice the base table size of buffer, and a memtable flushed into
//     a bigger table makes it grow a second buffer, which ristretto's
//     allocator indexes wrongly on 32-bit ARM (its buffer index is shifted
//     by 32 in a 32-bit int).
//   - 16 MiB value-log files (Badger's 1 GiB default cannot even be mapped
//     twice in a 32-bit address space).
//
// large: Badger's 64 MiB memtables and five of them, seven levels, 64 MiB
// value-log files.
func badgerOptions(dir string, c Config) badger.Options {
	o := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithNumVersionsToKeep(1).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithBloomFalsePositive(0).
		WithValueThreshold(valueThreshold).
		WithDetectConflicts(false) // one writer: nothing to detect
	if c.Profile == ProfileLarge {
		return o.WithValueLogFileSize(64 << 20)
	}
	const memtable = 8 << 20
	return o.
		WithMemTableSize(memtable).
		WithNumMemtables(2).
		WithMaxLevels(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(6).
		WithBaseTableSize(min(max(int64(c.MaxBytes)/128, memtable), 64<<20)).
		WithNumCompactors(2).
		WithValueLogFileSize(16 << 20)
}

// valueThreshold keeps every record, up to MaxAppendBytes, in the LSM tree.
const valueThreshold = 1 << 20

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
