package integrity

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/weirgw/weir/spool"
)

// BenchmarkBaseline measures the first baseline of a generated tree like
// a board's /etc (2,000 files of 2 KiB in 40 directories): walking,
// hashing and committing the entries to a real spool. files/s counts
// every path.
func BenchmarkBaseline(b *testing.B) {
	tree := benchTree(b)
	ctx := context.Background()
	paths := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		sp, r := benchRunner(b, tree)
		b.StartTimer()
		if err := r.scanAll(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		paths += benchCheck(b, r)
		if err := sp.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(paths)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkRescan measures a periodic rescan of the same tree with
// nothing changed: every file hashed again and compared with its entry.
func BenchmarkRescan(b *testing.B) {
	tree := benchTree(b)
	ctx := context.Background()
	sp, r := benchRunner(b, tree)
	defer sp.Close()
	if err := r.scanAll(ctx); err != nil {
		b.Fatal(err)
	}
	paths := 0
	b.ResetTimer()
	for range b.N {
		if err := r.scanAll(ctx); err != nil {
			b.Fatal(err)
		}
		paths += benchCheck(b, r)
	}
	b.ReportMetric(float64(paths)/b.Elapsed().Seconds(), "files/s")
}

const benchFiles, benchDirs = 2000, 40

func benchTree(b *testing.B) string {
	const files, dirs = benchFiles, benchDirs
	tree := b.TempDir()
	content := make([]byte, 2048)
	for i := range files {
		content[0] = byte(i)
		p := filepath.Join(tree, fmt.Sprintf("d%02d", i%dirs), fmt.Sprintf("f%04d.conf", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return tree
}

// benchRunner opens a fresh spool and a runner without watches over tree.
func benchRunner(b *testing.B, tree string) (*spool.Spool, *runner) {
	sp, err := spool.Open(spool.Options{Dir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	m, err := newMonitor(Config{Paths: []string{tree}}, nil, sp, nil)
	if err != nil {
		b.Fatal(err)
	}
	return sp, &runner{
		m: m, sink: &spoolSink{sp: sp},
		read:      newReader(int64(m.cfg.MaxFileBytes), false),
		pending:   map[string]pendingPath{},
		baselined: map[string]bool{},
	}
}

// benchCheck checks the baseline is whole and returns its paths.
func benchCheck(b *testing.B, r *runner) int {
	st := r.m.Status()
	if want := int64(benchFiles + benchDirs + 1); st.Files != want || st.Changes != 0 {
		b.Fatalf("baseline holds %d paths with %d changes, want %d and none", st.Files, st.Changes, want)
	}
	return int(st.Files)
}
