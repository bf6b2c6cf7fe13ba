package collector

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

// The collector's side of remote configuration lives in one directory
// (weir-collector run --fleet-dir), written by `weir-collector fleet
// push` and read back by `fleet status`:
//
//	desired.json                         the pushes: version, target, bundle file, digest, key, when
//	bundles/v<version>-<digest>.bundle   each bundle pushed, as signed
//	status.json                          per gateway: its labels and what it last reported
//
// Every file is replaced whole (written, synced, renamed, directory
// synced). The collector never signs and holds no key: a bundle is
// offered as pushed, and only the gateway decides, by the keys it pins,
// whether to take it.
const (
	DesiredFile = "desired.json"
	StatusFile  = "status.json"
	bundlesDir  = "bundles"
)

// MaxPushes bounds the pushes a directory holds (each bundle is at most
// uplink.MaxBundleBytes, and all are kept in memory).
const MaxPushes = 64

// maxReports bounds the gateways status.json remembers: ids come only
// from verified certificates, so this is the CA's issue, not a peer's.
const maxReports = 100_000

// Push is one bundle pushed for a target.
type Push struct {
	Version uint64    `json:"version"`
	Target  string    `json:"target"` // as --target takes it
	File    string    `json:"file"`   // under bundles/
	Digest  string    `json:"sha256"`
	Size    int       `json:"size"`
	KeyID   string    `json:"key_id"`
	Pushed  time.Time `json:"pushed"`
}

// desired is desired.json.
type desired struct {
	Pushes []Push `json:"pushes"`
}

// Report is what one gateway last said of its configuration
// (uplink.ConfigStatus) and what it was last offered.
type Report struct {
	Labels    map[string]string `json:"labels,omitempty"`
	Applied   uint64            `json:"applied"`
	Highest   uint64            `json:"highest"`
	Version   uint64            `json:"version,omitempty"`
	Result    string            `json:"result,omitempty"`
	Error     string            `json:"error,omitempty"`
	Reported  time.Time         `json:"reported"`
	Offered   uint64            `json:"offered,omitempty"`
	OfferedAt time.Time         `json:"offered_at,omitzero"`
	Sent      uint64            `json:"sent,omitempty"` // the version last sent on a pull
}

// PushBundle checks a signed bundle (its size, signature line and
// document; the signature itself only with pub) and adds it to dir for
// target, or for the bundle's own target when target is empty. A
// version already pushed for the same target is replaced.
func PushBundle(dir string, raw []byte, target pki.Target, pub ed25519.PublicKey, now time.Time) (Push, error) {
	if len(raw) > uplink.MaxBundleBytes {
		return Push{}, fmt.Errorf("fleet push: the bundle is %d bytes, over the %d-byte limit", len(raw), uplink.MaxBundleBytes)
	}
	s, err := pki.ParseSigned(raw)
	if err != nil {
		return Push{}, fmt.Errorf("fleet push: %w (sign it with weir-collector fleet sign)", err)
	}
	if pub != nil {
		if _, err := s.Verify([]ed25519.PublicKey{pub}); err != nil {
			return Push{}, fmt.Errorf("fleet push: %w", err)
		}
	}
	b, err := pki.ParseBundle(s.Body)
	if err != nil {
		return Push{}, fmt.Errorf("fleet push: %w", err)
	}
	if target.Empty() {
		target = b.Target
	}
	d := uplink.DigestOf(raw)
	p := Push{Version: b.Version, Target: target.String(), Size: len(raw), KeyID: s.KeyID, Pushed: now.UTC(),
		Digest: hex.EncodeToString(d[:]), File: fmt.Sprintf("v%d-%x.bundle", b.Version, d[:6])}
	if err := os.MkdirAll(filepath.Join(dir, bundlesDir), 0o750); err != nil {
		return Push{}, fmt.Errorf("fleet push: %w", err)
	}
	cur, err := readDesired(dir)
	if err != nil {
		return Push{}, err
	}
	cur.Pushes = slices.DeleteFunc(cur.Pushes, func(q Push) bool { return q.Version == p.Version && q.Target == p.Target })
	if len(cur.Pushes) >= MaxPushes {
		return Push{}, fmt.Errorf("fleet push: %s holds %d pushes already, the most it keeps; remove old ones from %s", dir, MaxPushes, DesiredFile)
	}
	cur.Pushes = append(cur.Pushes, p)
	if err := writeAtomic(filepath.Join(dir, bundlesDir, p.File), raw, 0o640); err != nil {
		return Push{}, fmt.Errorf("fleet push: %w", err)
	}
	js, _ := json.MarshalIndent(cur, "", "  ")
	if err := writeAtomic(filepath.Join(dir, DesiredFile), append(js, '\n'), 0o640); err != nil {
		return Push{}, fmt.Errorf("fleet push: %w", err)
	}
	return p, nil
}

// ReadPushes lists the pushes in dir.
func ReadPushes(dir string) ([]Push, error) {
	d, err := readDesired(dir)
	return d.Pushes, err
}

func readDesired(dir string) (desired, error) {
	var d desired
	b, err := os.ReadFile(filepath.Join(dir, DesiredFile))
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("fleet: %w", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("fleet: %s: %w", filepath.Join(dir, DesiredFile), err)
	}
	return d, nil
}

// ReadReports reads what each gateway last reported, as the collector
// last wrote it.
func ReadReports(dir string) (map[string]Report, error) {
	out := map[string]Report{}
	b, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", filepath.Join(dir, StatusFile), err)
	}
	return out, nil
}

// DesiredFor is the push a gateway should run: the highest version
// whose target selects it.
func DesiredFor(pushes []Push, id string, labels map[string]string) (Push, bool) {
	var best Push
	found := false
	for _, p := range pushes {
		t, err := pki.ParseTarget(p.Target)
		if err != nil || !t.Matches(id, labels) {
			continue
		}
		if !found || p.Version > best.Version {
			best, found = p, true
		}
	}
	return best, found
}

// Bundles serves the pushes of a directory to the sessions of a running
// collector: it reads desired.json again when it changes, offers the
// sessions the bundles that became theirs, and keeps what gateways report
// in status.json.
type Bundles struct {
	dir   string
	log   *slog.Logger
	check time.Duration

	mu      sync.Mutex
	stamp   fileStamp
	pushes  []Push
	raw     map[string][]byte // by file
	reports map[string]Report
	dirty   bool
	subs    map[*session]struct{}
}

type fileStamp struct {
	size int64
	mod  time.Time
}

// OpenBundles reads dir (made if missing) and re-reads its pushes every
// check interval.
func OpenBundles(dir string, check time.Duration, log *slog.Logger) (*Bundles, error) {
	if log == nil {
		log = slog.Default()
	}
	if check <= 0 {
		check = time.Second
	}
	if err := os.MkdirAll(filepath.Join(dir, bundlesDir), 0o750); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	reports, err := ReadReports(dir)
	if err != nil {
		log.Warn("fleet: gateway reports not read; starting from none", "err", err)
		reports = map[string]Report{}
	}
	b := &Bundles{dir: dir, log: log, check: check, raw: map[string][]byte{}, reports: reports, subs: map[*session]struct{}{}}
	if _, err := b.refresh(); err != nil {
		return nil, err
	}
	return b, nil
}

// refresh reads desired.json and its bundles again if the file changed;
// it says whether anything did. A push whose bundle is missing, too
// large or not what desired.json says is left out and logged.
func (b *Bundles) refresh() (bool, error) {
	path := filepath.Join(b.dir, DesiredFile)
	var st fileStamp
	if fi, err := os.Stat(path); err == nil {
		st = fileStamp{fi.Size(), fi.ModTime()}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("fleet: %w", err)
	}
	b.mu.Lock()
	same := st == b.stamp
	b.mu.Unlock()
	if same {
		return false, nil
	}
	d, err := readDesired(b.dir)
	if err != nil {
		return false, err
	}
	var pushes []Push
	raw := map[string][]byte{}
	for _, p := range d.Pushes {
		if len(pushes) == MaxPushes {
			b.log.Warn("fleet: more pushes than the collector keeps; the rest are left out", "max", MaxPushes)
			break
		}
		data, err := readBounded(filepath.Join(b.dir, bundlesDir, filepath.Base(p.File)), uplink.MaxBundleBytes)
		if err == nil {
			if d := uplink.DigestOf(data); hex.EncodeToString(d[:]) != p.Digest {
				err = errors.New("its digest is not the one pushed")
			}
		}
		if err != nil {
			b.log.Warn("fleet: a pushed bundle is left out", "version", p.Version, "file", p.File, "err", err)
			continue
		}
		raw[p.File] = data
		pushes = append(pushes, p)
	}
	b.mu.Lock()
	b.stamp, b.pushes, b.raw = st, pushes, raw
	b.mu.Unlock()
	return true, nil
}

func readBounded(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}

// Run re-reads the pushes every check interval, offers what changed to
// the open sessions, and writes the gateways' reports when they changed,
// until ctx is done.
func (b *Bundles) Run(ctx context.Context) error {
	t := time.NewTicker(b.check)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.flush()
			return nil
		case <-t.C:
		}
		changed, err := b.refresh()
		if err != nil {
			b.log.Warn("fleet: pushes not read again; the ones read before stay", "err", err)
		}
		if changed {
			b.mu.Lock()
			subs := slices.Collect(maps.Keys(b.subs))
			b.mu.Unlock()
			for _, s := range subs {
				s.offerBundle()
			}
		}
		b.flush()
	}
}

// flush writes status.json if a report changed.
func (b *Bundles) flush() {
	b.mu.Lock()
	if !b.dirty {
		b.mu.Unlock()
		return
	}
	js, err := json.MarshalIndent(b.reports, "", "  ")
	b.dirty = false
	b.mu.Unlock()
	if err == nil {
		err = writeAtomic(filepath.Join(b.dir, StatusFile), append(js, '\n'), 0o640)
	}
	if err != nil {
		b.log.Warn("fleet: gateway reports not written", "err", err)
	}
}

// desiredFor is the push for a gateway and its bundle's bytes.
func (b *Bundles) desiredFor(id string, labels map[string]string) (Push, []byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := DesiredFor(b.pushes, id, labels)
	if !ok {
		return Push{}, nil, false
	}
	return p, b.raw[p.File], true
}

// report keeps what a gateway said.
func (b *Bundles) report(id string, st *uplink.ConfigStatus, now time.Time) map[string]string {
	labels := make(map[string]string, len(st.Labels))
	for _, l := range st.Labels {
		labels[l.Key] = l.Value
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, known := b.reports[id]
	if !known && len(b.reports) >= maxReports {
		return labels
	}
	r.Labels, r.Applied, r.Highest, r.Version, r.Result, r.Error, r.Reported =
		labels, st.Applied, st.Highest, st.Version, st.Result, st.Error, now.UTC()
	b.reports[id], b.dirty = r, true
	return labels
}

// noted records an offer or a bundle sent to a gateway.
func (b *Bundles) noted(id string, f func(*Report)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, known := b.reports[id]
	if !known && len(b.reports) >= maxReports {
		return
	}
	f(&r)
	b.reports[id], b.dirty = r, true
}

func (b *Bundles) subscribe(s *session) {
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
}

func (b *Bundles) unsubscribe(s *session) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// writeAtomic replaces path with data: a temporary file written and
// synced, renamed, and the directory synced, so a crash leaves the old
// file or the new one.
func writeAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
