package docs

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/weirgw/weir"

// layers reads the fenced ```layers block of ARCHITECTURE.md: one layer per
// line, highest first, each a list of top-level folders. It returns each
// folder's rank (0 is the ground floor).
func layers(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```layers":
			in = true
		case in && line == "```":
			in = false
		case in && line != "":
			rows = append(rows, strings.Fields(line))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 2 {
		t.Fatal("ARCHITECTURE.md: no ```layers block with at least two layers")
	}
	rank := map[string]int{}
	for i, row := range rows {
		for _, dir := range row {
			if _, dup := rank[dir]; dup {
				t.Fatalf("ARCHITECTURE.md layers: %s is in two layers", dir)
			}
			rank[dir] = len(rows) - 1 - i
		}
	}
	return rank
}

// imports maps each package folder of the module (relative, slash
// separated) to the module packages its Go files import, tests included.
func imports(t *testing.T, root string) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if p == module || strings.HasPrefix(p, module+"/") {
				if out[rel] == nil {
					out[rel] = map[string]bool{}
				}
				out[rel][strings.TrimPrefix(strings.TrimPrefix(p, module), "/")] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func top(dir string) string { return strings.SplitN(dir, "/", 2)[0] }

// violations lists the imports that run from a lower layer to a higher
// one, and the folders no layer names.
func violations(rank map[string]int, imps map[string]map[string]bool) []string {
	var bad []string
	for dir, set := range imps {
		from, ok := rank[top(dir)]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s: folder %s is in no layer of ARCHITECTURE.md", dir, top(dir)))
			continue
		}
		for imp := range set {
			to, ok := rank[top(imp)]
			if !ok {
				bad = append(bad, fmt.Sprintf("%s imports %s, whose folder is in no layer", dir, imp))
			} else if to > from {
				bad = append(bad, fmt.Sprintf("%s (layer %d) imports %s (layer %d): a lower layer may not import a higher one", dir, from, imp, to))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

func TestLayers(t *testing.T) {
	rank := layers(t)
	if bad := violations(rank, imports(t, "..")); len(bad) > 0 {
		t.Errorf("the import graph breaks the layer order of ARCHITECTURE.md:\n%s", strings.Join(bad, "\n"))
	}
}

// The check itself must be able to fail: an upward import and an unranked
// folder are both reported.
func TestLayersCatchesUpwardImport(t *testing.T) {
	rank := map[string]int{"cmd": 2, "gateway": 1, "sensors": 0}
	imps := map[string]map[string]bool{
		"sensors/audit": {"gateway": true},
		"cmd/weir":      {"sensors/audit": true},
		"tools":         {"gateway": true},
	}
	bad := violations(rank, imps)
	if len(bad) != 2 || !strings.Contains(bad[0], "sensors/audit (layer 0) imports gateway (layer 1)") || !strings.Contains(bad[1], "tools: folder tools is in no layer") {
		t.Fatalf("got %q", bad)
	}
}

// TestPackageDocsPointToMap: every package but the commands has a doc.go
// whose package comment points to this map, so a reader who starts in the
// code finds it.
func TestPackageDocsPointToMap(t *testing.T) {
	fset := token.NewFileSet()
	dirs := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != ".." && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			rel, err := filepath.Rel("..", filepath.Dir(path))
			if err != nil {
				return err
			}
			dirs[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !dirs["event"] || !dirs["spool"] {
		t.Fatalf("the walk missed the ground floor: %v", dirs)
	}
	for dir := range dirs {
		if top(dir) == "cmd" {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join("..", dir, "doc.go"), nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Errorf("%s: no doc.go saying what the package owns: %v", dir, err)
			continue
		}
		if f.Doc == nil || !strings.Contains(f.Doc.Text(), "docs/ARCHITECTURE.md") {
			t.Errorf("%s/doc.go: its package comment does not point to docs/ARCHITECTURE.md", dir)
		}
	}
}
