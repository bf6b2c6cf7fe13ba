package docs

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// nameRef is a name ARCHITECTURE.md gives in backquotes: the package as
// its folder, then a top-level name, then optionally a method or field.
// Config keys are snake_case and never match; a lower-case Go name does
// and is checked like any other.
var nameRef = regexp.MustCompile("`((?:cmd|event|gateway|sensors|ptp|spool|uplink|board|docs)(?:/[a-z0-9-]+)*)\\.([A-Za-z][A-Za-z0-9]*)(?:\\.([A-Za-z][A-Za-z0-9]*))?`")

// fileExt are the endings that make a name a file: `spool/keys.go`.
var fileExt = map[string]bool{"go": true, "md": true, "yaml": true, "sh": true, "c": true, "json": true, "service": true}

// declared lists what the Go files of dir (tests included) declare at the
// top level: functions, types, variables and constants as "Name", methods
// as "Type.Method" and struct fields as "Type.Field".
func declared(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil || len(d.Recv.List) == 0 {
					names[d.Name.Name] = true
					continue
				}
				names[recvName(d.Recv.List[0].Type)+"."+d.Name.Name] = true
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						names[s.Name.Name] = true
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, fl := range st.Fields.List {
								for _, n := range fl.Names {
									names[s.Name.Name+"."+n.Name] = true
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							names[n.Name] = true
						}
					}
				}
			}
		}
	}
	return names, nil
}

func recvName(e ast.Expr) string {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.IndexListExpr:
			e = t.X
		case *ast.Ident:
			return t.Name
		default:
			return ""
		}
	}
}

// missing lists the names doc gives that the tree under root lacks.
func missing(root, doc string) (refs int, bad []string) {
	cache := map[string]map[string]bool{}
	for _, m := range nameRef.FindAllStringSubmatch(doc, -1) {
		refs++
		dir, name := m[1], m[2]
		if m[3] == "" && fileExt[name] {
			// a file: spool/keys.go
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dir+"."+name))); err != nil {
				bad = append(bad, fmt.Sprintf("%s.%s: no such file", dir, name))
			}
			continue
		}
		if m[3] != "" {
			name += "." + m[3]
		}
		names, ok := cache[dir]
		if !ok {
			var err error
			if names, err = declared(filepath.Join(root, filepath.FromSlash(dir))); err != nil {
				bad = append(bad, fmt.Sprintf("%s.%s: %v", dir, name, err))
				cache[dir] = map[string]bool{}
				continue
			}
			cache[dir] = names
		}
		if !names[name] {
			bad = append(bad, fmt.Sprintf("%s.%s: %s declares no %s", dir, name, dir, name))
		}
	}
	sort.Strings(bad)
	return refs, bad
}

func TestNamesExist(t *testing.T) {
	b, err := os.ReadFile("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	refs, bad := missing("..", string(b))
	if refs < 50 {
		t.Errorf("ARCHITECTURE.md names only %d functions and types; the life of a record names more", refs)
	}
	if len(bad) > 0 {
		t.Errorf("ARCHITECTURE.md names what the code does not have (rename in the doc, or write config keys as `key: value`):\n%s", strings.Join(bad, "\n"))
	}
}

func TestNamesCatchesMissing(t *testing.T) {
	doc := "`spool.Spool.Append` `spool.Spool.Vanished` `spool.nosuch` `nowhere.Thing` `event.Event.Seq` `spool.max_bytes` `spool/keys.go` `spool/gone.go`"
	refs, bad := missing("..", doc)
	want := []string{
		"spool.Spool.Vanished: spool declares no Spool.Vanished",
		"spool.nosuch: spool declares no nosuch",
		"spool/gone.go: no such file",
	}
	if refs != 6 || strings.Join(bad, "|") != strings.Join(want, "|") {
		t.Fatalf("refs %d, missing %q; want 6 and %q", refs, bad, want)
	}
}
