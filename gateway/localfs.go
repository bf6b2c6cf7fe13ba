package gateway

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The data directory holds the spool and the admin socket. Whoever can
// write it, or rename or replace a directory above it, can swap the
// spool (records forged or dropped before they leave), plant a socket
// where the gateway and the CLI expect theirs, or a symbolic link that
// makes the gateway write elsewhere. So it is checked at start as the
// configuration file is: owner, mode, links.

// checkDataDir refuses a data directory another user could tamper with:
// it must be a directory, not a symbolic link, owned by the user weir runs
// as, not writable by group or others; every directory above it must pass
// checkAncestors.
func checkDataDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link; give the directory it points at", abs)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", abs)
	}
	if uid, ok := fileOwner(fi); ok && int(uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by %s, not by %s that weir runs as; chown -R it or pick another data_dir",
			abs, userName(uid), userName(uint32(os.Geteuid())))
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %04o); chmod go-w %s", abs, perm, abs)
	}
	return checkAncestors(filepath.Dir(abs))
}

// checkSocketDir refuses a directory for the admin socket that another
// user could write: owned by root or the user weir runs as, not writable
// by group or others, even with the sticky bit (anyone could take the
// socket's name there first); above it, checkAncestors.
func checkSocketDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return err
	}
	if err := checkOwner(resolved, fi); err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %04o); another user could take the socket's name there", resolved, perm)
	}
	if err := checkAncestors(filepath.Dir(abs)); err != nil {
		return err
	}
	return checkAncestors(filepath.Dir(resolved))
}

// checkAncestors checks dir and every directory above it, from the root
// down, following symbolic links (the target's directories are checked
// in turn; the link itself is as safe as the directory holding it): each
// must be owned by root or the user weir runs as, and not writable by
// group or others unless it is sticky and owned by root (/tmp), where
// nobody else can rename or remove what is ours.
func checkAncestors(dir string) error {
	return walkUp(dir, 0)
}

func walkUp(dir string, depth int) error {
	if depth > 16 {
		return fmt.Errorf("%s: too many levels of symbolic links", dir)
	}
	p := string(filepath.Separator)
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(dir), p), string(filepath.Separator))
	if parts[0] == "" {
		parts = nil
	}
	for i := -1; i < len(parts); i++ {
		if i >= 0 {
			p = filepath.Join(p, parts[i])
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return err
			}
			if err := walkUp(target, depth+1); err != nil {
				return err
			}
			continue
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
		if err := checkOwner(p, fi); err != nil {
			return err
		}
		perm := fi.Mode().Perm()
		uid, _ := fileOwner(fi)
		if perm&0o022 != 0 && !(fi.Mode()&fs.ModeSticky != 0 && uid == 0) {
			return fmt.Errorf("%s is writable by group or others (mode %04o), so they could replace what is below it; chmod go-w %s", p, perm, p)
		}
	}
	return nil
}

// checkOwner accepts root and the user weir runs as.
func checkOwner(p string, fi fs.FileInfo) error {
	uid, ok := fileOwner(fi)
	if !ok || uid == 0 || int(uid) == os.Geteuid() {
		return nil
	}
	return fmt.Errorf("%s is owned by %s, neither root nor %s that weir runs as", p, userName(uid), userName(uint32(os.Geteuid())))
}

// prepareSpoolDir makes the spool's directory 0700, creating it, so that
// nobody but the gateway reads the records waiting there, whatever mode
// an older version or a hand left it with.
func prepareSpoolDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.Mkdir(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if uid, ok := fileOwner(fi); ok && int(uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by %s, not by %s that weir runs as; chown -R it", dir, userName(uid), userName(uint32(os.Geteuid())))
	}
	if fi.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}
