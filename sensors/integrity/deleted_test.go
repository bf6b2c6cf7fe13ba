package integrity

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/spool"
)

// A deleted path leaves no entry behind; recreated, it is reported as
// created once.
func TestDeletedLeavesNoEntry(t *testing.T) {
	h := newHarness(t)
	h.write("a", "1")
	h.write("d/b", "2")
	h.write("d/c", "3")
	h.start(h.testConfig())
	h.settled()
	require.Len(t, h.entries(), 5)

	require.NoError(t, os.Remove(h.path("a")))
	require.Equal(t, []change{{h.path("a"), ChangeDeleted}}, changes(h.awaitRecords(1)))
	require.NotContains(t, h.entries(), h.path("a"))

	require.NoError(t, os.RemoveAll(h.path("d")))
	require.Len(t, h.awaitRecords(3), 3)
	require.Equal(t, map[string]FileType{h.tree: TypeDir}, h.entries())
	require.Equal(t, int64(1), h.m.Status().Files)

	h.write("a", "again")
	require.Equal(t, []change{{h.path("a"), ChangeCreated}}, changes(h.awaitRecords(1)))
	require.Empty(t, h.settled(), "created once")
	require.Equal(t, map[string]FileType{h.tree: TypeDir, h.path("a"): TypeFile}, h.entries())

	h.stop()
	h.start(h.testConfig())
	require.Empty(t, h.settled(), "a restart reports nothing")
	require.Equal(t, int64(2), h.m.Status().Files)
}

// The tombstones an older version kept for deleted paths report nothing
// and are deleted by the first scan; a path back since is reported as
// created.
func TestOldTombstones(t *testing.T) {
	h := newHarness(t)
	h.write("keep", "k")
	h.start(h.testConfig())
	h.settled()
	h.halt()

	tombstone := []byte{entryVersion, byte(TypeAbsent)}
	var cps []spool.Checkpoint
	for _, rel := range []string{"gone", "back", "d/x"} {
		cps = append(cps, spool.Checkpoint{Source: sourcePrefix + h.path(rel), Position: tombstone})
	}
	outside := filepath.Join(filepath.Dir(h.tree), "elsewhere")
	cps = append(cps, spool.Checkpoint{Source: sourcePrefix + outside, Position: tombstone})
	_, err := h.sp.Append(context.Background(), nil, cps)
	require.NoError(t, err)
	h.write("back", "b")

	h.start(h.testConfig())
	require.Equal(t, []change{{h.path("back"), ChangeCreated}}, changes(h.settled()))
	require.Equal(t, map[string]FileType{
		h.tree: TypeDir, h.path("keep"): TypeFile, h.path("back"): TypeFile,
		outside: TypeAbsent, // outside every path: left alone
	}, h.entries())
	require.Equal(t, int64(3), h.m.Status().Files)

	h.stop()
	h.start(h.testConfig())
	require.Empty(t, h.settled(), "a restart reports nothing")
}

// A root that is absent keeps an absent entry, so that it is reported as
// created when it appears, even across a restart.
func TestAbsentRoot(t *testing.T) {
	h := newHarness(t)
	solo := filepath.Join(filepath.Dir(h.tree), "solo")
	cfg := h.testConfig()
	cfg.Paths = append(cfg.Paths, solo)
	h.start(cfg)
	require.Len(t, h.settled(), 1) // the summary
	require.Equal(t, map[string]FileType{h.tree: TypeDir, solo: TypeAbsent}, h.entries())
	require.Equal(t, int64(1), h.m.Status().Files)

	h.stop()
	require.NoError(t, os.WriteFile(solo, []byte("s"), 0o644))
	h.start(cfg)
	require.Equal(t, []change{{solo, ChangeCreated}}, changes(h.settled()))
	require.Equal(t, int64(2), h.m.Status().Files)

	require.NoError(t, os.Remove(solo))
	require.Equal(t, []change{{solo, ChangeDeleted}}, changes(h.awaitRecords(1)))
	require.Equal(t, TypeAbsent, h.entries()[solo])
	require.Equal(t, int64(1), h.m.Status().Files)

	h.stop()
	require.NoError(t, os.WriteFile(solo, []byte("s2"), 0o644))
	h.start(cfg)
	require.Equal(t, []change{{solo, ChangeCreated}}, changes(h.settled()))
}
