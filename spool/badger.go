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
// These are a plain first choice, not measured ones; the tuning issue for
// boards with 256–512 MiB of RAM revisits them with RSS figures:
//   - SyncWrites: every commit is fsynced before Append returns.
//   - a 16 MiB memtable (Badger's default is 64 MiB); this also caps one
//     transaction at about 2.4 MiB (15 % of it), which bounds an Append batch.
//   - one version per key: the spool never reads history.
//   - no compression and so no block cache: records are usually already
//     compact, and the cache's 256 MiB default is the size of a whole board.
//   - 64 MiB value-log files instead of 1 GiB: Badger maps each at twice its
//     size, and records below the 1 MiB value threshold never go there.
func badgerOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithMemTableSize(16 << 20).
		WithNumVersionsToKeep(1).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithValueLogFileSize(64 << 20)
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
