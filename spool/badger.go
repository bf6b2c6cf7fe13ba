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
// small (256–512 MiB boards, 32-bit ARM):
//   - 16 MiB memtables, two of them: Badger maps each at twice its size;
//     one transaction may hold 15 % of a memtable (2.4 MiB), which bounds a
//     group commit and so a source's batch.
//   - values stay in the LSM tree (the 1 MiB default threshold): a record
//     is about 200 bytes, and a queue's deleted values then go away with
//     compaction instead of waiting for value-log GC.
//   - no compression and no block or index cache: records are compact
//     already, and Badger's 256 MiB default cache is a whole board.
//   - 2 MiB base tables and few level-0 tables, so compaction runs often and
//     small, which is what drops the tombstones a queue leaves.
//   - 32 MiB value-log files (Badger's 1 GiB default cannot even be mapped
//     twice in a 32-bit address space).
//
// large: Badger's defaults for memory (64 MiB memtables), 256 MiB value-log
// files. Both profiles fsync every commit (SyncWrites); the writer groups
// concurrent appends so they share it.
func badgerOptions(dir string, p Profile) badger.Options {
	o := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithNumVersionsToKeep(1).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithDetectConflicts(false) // one writer: nothing to detect
	if p == ProfileLarge {
		return o.WithValueLogFileSize(256 << 20)
	}
	return o.
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithValueLogFileSize(32 << 20)
}

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
