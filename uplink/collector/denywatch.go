package collector

import (
	"os"
	"sync"
	"time"

	"github.com/weirgw/weir/uplink/pki"
)

// denyWatch holds the deny list as the file is now: a stat at every use
// and a re-read when its size or modification time changed, as the CA
// bundle is. A list that does not parse refuses every gateway until it is
// fixed: a typo must not silently let a revoked gateway back in.
type denyWatch struct {
	path string

	mu      sync.Mutex
	stamp   stamp
	list    *pki.DenyList
	err     error
	version uint64 // counts reloads, so open sessions are checked again
}

type stamp struct {
	mod  time.Time
	size int64
	ok   bool
}

func newDenyWatch(path string) *denyWatch {
	if path == "" {
		return nil
	}
	return &denyWatch{path: path}
}

// current returns the list and its version, reloading it if the file
// changed.
func (d *denyWatch) current() (*pki.DenyList, uint64, error) {
	if d == nil {
		return nil, 0, nil
	}
	var st stamp
	if fi, err := os.Stat(d.path); err == nil {
		st = stamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.version > 0 && st == d.stamp {
		return d.list, d.version, d.err
	}
	d.list, d.err = pki.ReadDenyList(d.path)
	d.stamp = st
	d.version++
	return d.list, d.version, d.err
}
