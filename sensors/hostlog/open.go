package hostlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// errSymlink is the refusal of a symbolic link while follow_symlinks is
// off.
var errSymlink = errors.New("is a symbolic link (follow_symlinks is off)")

// globBase is the directory a glob's wildcards start under: the glob's
// leading components without a wildcard, the last one excluded (a glob
// without wildcards names a file, its directory is the base). Links in it
// are the configuration's own and always followed.
func globBase(glob string) string {
	dir := filepath.Dir(glob)
	for d := dir; ; d = filepath.Dir(d) {
		if hasMeta(filepath.Base(d)) {
			dir = filepath.Dir(d)
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// lstatUnder looks at name with Lstat, and at each directory between base
// and it: errSymlink if any is a link. name must be under base.
func lstatUnder(name, base string) (os.FileInfo, error) {
	rel, err := relUnder(name, base)
	if err != nil {
		return nil, err
	}
	p := base
	var fi os.FileInfo
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		p = filepath.Join(p, c)
		if fi, err = os.Lstat(p); err != nil {
			return nil, err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s: %w", p, errSymlink)
		}
	}
	return fi, nil
}

// relUnder is name relative to base, refused unless it lies under it.
func relUnder(name, base string) (string, error) {
	rel, err := filepath.Rel(base, name)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is not under %s", name, base)
	}
	return rel, nil
}
