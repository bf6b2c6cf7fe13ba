package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// file is one file to write, with its final mode.
type file struct {
	path string
	data []byte
	mode fs.FileMode
}

// refuseExisting fails, naming the file, if any of paths exists.
func refuseExisting(paths ...string) error {
	for _, p := range paths {
		_, err := os.Lstat(p)
		switch {
		case err == nil:
			return existsError(p)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("pki: check %s: %w", p, bare(err))
		}
	}
	return nil
}

func existsError(path string) error {
	return fmt.Errorf("pki: %s: %w (force overwrites it)", path, fs.ErrExist)
}

// writeFiles writes files atomically in order. If one fails, those already
// written are removed again, so a key is never left without its
// certificate.
func writeFiles(force bool, files ...file) error {
	for i, f := range files {
		if err := writeAtomic(f, force); err != nil {
			for _, done := range files[:i] {
				os.Remove(done.path)
			}
			return err
		}
	}
	return nil
}

// writeAtomic writes f through a temporary file in the same directory that
// has its final mode before any data goes in, is synced, and then takes the
// final name. Without force an existing file is never replaced, not even one
// created since refuseExisting looked.
func writeAtomic(f file, force bool) (err error) {
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".tmp*") // mode 0600
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", f.path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if f.mode != 0o600 {
		if err := tmp.Chmod(f.mode); err != nil {
			return fmt.Errorf("pki: write %s: %w", f.path, err)
		}
	}
	if _, err := tmp.Write(f.data); err != nil {
		return fmt.Errorf("pki: write %s: %w", f.path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("pki: write %s: %w", f.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pki: write %s: %w", f.path, err)
	}
	if force {
		if err := os.Rename(tmp.Name(), f.path); err != nil {
			return fmt.Errorf("pki: write %s: %w", f.path, err)
		}
	} else if err := placeNew(tmp.Name(), f.path); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("pki: write %s: sync directory: %w", f.path, err)
	}
	return nil
}

// placeNew gives tmp the name path unless path exists. A hard link fails on
// an existing name atomically; on file systems without hard links (FAT on
// SD cards) it falls back to look-then-rename.
func placeNew(tmp, path string) error {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		if err := os.Remove(tmp); err != nil {
			return fmt.Errorf("pki: write %s: remove temporary file: %w", path, err)
		}
		return nil
	case errors.Is(err, fs.ErrExist):
		return existsError(path)
	}
	if err := refuseExisting(path); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}
