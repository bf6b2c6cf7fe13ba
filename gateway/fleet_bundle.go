package gateway

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

// Files of remote configuration in <data_dir>/fleet (mode 0700): the
// bundle in force, the one being applied, and the agent's state. A
// bundle becomes current.bundle only once it passed its health check, by
// a rename; so at any instant the disk holds one whole configuration to
// boot into: the file with current.bundle, or the file alone.
const (
	fleetDirName      = "fleet"
	fleetCurrentFile  = "current.bundle"
	fleetStagedFile   = "staged.bundle"
	fleetStateFile    = "state.json"
	fleetDirMode      = 0o700
	fleetFileMode     = 0o600
	fleetBundleSource = "fleet bundle v%d"
)

// FleetBundle is the bundle a configuration was merged with.
type FleetBundle struct {
	Version uint64        `json:"version"`
	KeyID   string        `json:"key_id"`
	Digest  uplink.Digest `json:"-"`
	Raw     []byte        `json:"-"`
}

// LoadInForce is Load, then the fleet bundle in force (the last one
// applied and checked) merged over the file, under the WEIR_* variables:
// the configuration `weir run` starts with and a SIGHUP reloads. A bundle
// that no longer checks out against the file (a key no longer pinned, a
// target that no longer selects the gateway, a protected key, a value
// the schema refuses) is not used: the file alone is in force, with a
// warning. It never mixes the two.
func LoadInForce(path string, explicit bool) (*Loaded, error) {
	l, err := Load(path, explicit)
	if err != nil {
		return nil, err
	}
	if !l.Fleet.Enabled() {
		return l, nil
	}
	dir := FleetDir(l.Config)
	if dir == "" {
		return l, nil
	}
	cur := filepath.Join(dir, fleetCurrentFile)
	raw, err := readBundleFile(cur)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err == nil {
		var m *Loaded
		if m, err = mergeBundle(path, explicit, l, raw); err == nil {
			return m, nil
		}
	}
	l.Warnings = append(l.Warnings, fmt.Sprintf("fleet: %s not used, the local file alone is in force: %s", cur, oneLine(err)))
	return l, nil
}

// FleetDir is where the fleet's files of cfg are: under data_dir, else
// under the first default data directory that has them ("" if none).
func FleetDir(cfg Config) string {
	if cfg.DataDir != "" {
		return filepath.Join(cfg.DataDir, fleetDirName)
	}
	for _, d := range DataDirCandidates() {
		if fi, err := os.Stat(filepath.Join(d, fleetDirName)); err == nil && fi.IsDir() {
			return filepath.Join(d, fleetDirName)
		}
	}
	return ""
}

// errNotNewer, errTarget: refusals that do not spend the version.
var (
	errNotForUs = errors.New("not for this gateway")
)

// mergeBundle checks raw against the fleet section of the file's
// configuration local (its signature by a pinned key, a target that
// selects this gateway, no protected key set) and decodes it over the
// file as Load would. Its problems are placed in the bundle.
func mergeBundle(path string, explicit bool, local *Loaded, raw []byte) (*Loaded, error) {
	b, keyID, err := pki.OpenBundle(raw, local.Fleet.publicKeys())
	if err != nil {
		return nil, err
	}
	if !b.Target.Matches(local.Gateway.ID, local.Fleet.Labels) {
		return nil, fmt.Errorf("bundle v%d is targeted at %s, %w (%s)", b.Version, b.Target, errNotForUs, describeGateway(local))
	}
	return mergeOpened(path, explicit, local, b, keyID, raw)
}

// mergeOpened is mergeBundle once the bundle is opened and its target
// checked.
func mergeOpened(path string, explicit bool, local *Loaded, b *pki.Bundle, keyID string, raw []byte) (*Loaded, error) {
	if set := protectedSet(b.Config, local.Fleet.protected()); len(set) > 0 {
		return nil, fmt.Errorf("bundle v%d sets protected keys (%s); remote configuration may never change them", b.Version, strings.Join(set, ", "))
	}
	over := &overlay{name: fmt.Sprintf(fleetBundleSource, b.Version), node: b.Config}
	if b.Config == nil {
		over = nil
	}
	m, err := load(path, explicit, over)
	if err != nil {
		return nil, err
	}
	if !m.Uplink.Enabled() {
		return nil, fmt.Errorf("bundle v%d leaves the uplink without an endpoint; the fleet would lose the gateway", b.Version)
	}
	// What the bundle names was checked above; this holds every key's
	// value to it as well.
	var changed []string
	for _, k := range changedKeys(&local.Config, &m.Config) {
		if isProtected(k, local.Fleet.protected()) {
			changed = append(changed, k)
		}
	}
	if len(changed) > 0 {
		return nil, fmt.Errorf("bundle v%d changes protected keys (%s)", b.Version, strings.Join(changed, ", "))
	}
	m.Warnings = slices.Concat(local.Warnings, m.Warnings)
	m.Bundle = &FleetBundle{Version: b.Version, KeyID: keyID, Digest: uplink.DigestOf(raw), Raw: raw}
	return m, nil
}

// describeGateway is the gateway as a target sees it.
func describeGateway(l *Loaded) string {
	s := "gateway " + l.Gateway.ID
	if len(l.Fleet.Labels) > 0 {
		var ls []string
		for _, lb := range l.Fleet.labels() {
			ls = append(ls, lb.Key+"="+lb.Value)
		}
		s += " with labels " + strings.Join(ls, ",")
	}
	return s
}

// isProtected says whether key is a protected key or under one.
func isProtected(key string, protected []string) bool {
	key = strings.ToLower(key)
	for _, p := range protected {
		p = strings.ToLower(p)
		if key == p || isUnder(key, p) {
			return true
		}
	}
	return false
}

// protectedSet lists the keys a bundle's configuration sets that are
// protected: a protected key itself, a key under one, or a key holding
// one that is given anything but a mapping of its keys (inputs.syslog:
// null turns off every key under it; a list replaces its items whole).
// Keys are compared without case, as the schema reads them.
func protectedSet(n *yaml.Node, protected []string) []string {
	if n == nil {
		return nil
	}
	var out []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		hit := false
		if path != "" {
			for _, p := range protected {
				p = strings.ToLower(p)
				switch {
				case path == p || isUnder(path, p):
					hit = true
				case isUnder(p, path) && n.Kind != yaml.MappingNode:
					out = append(out, path)
					return
				}
			}
		}
		if hit && (n.Kind != yaml.MappingNode || len(n.Content) == 0) {
			out = append(out, path)
			return
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], joinKey(path, strings.ToLower(n.Content[i].Value)))
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				walk(item, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(n, "")
	return out
}

// readBundleFile reads a bundle file, at most the protocol's bound.
func readBundleFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, uplink.MaxBundleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > uplink.MaxBundleBytes {
		return nil, fmt.Errorf("%s: over the %d-byte bound of a bundle", path, uplink.MaxBundleBytes)
	}
	return b, nil
}

// writeDurable replaces path with data: a temporary file in its
// directory written and synced, renamed, and the directory synced.
func writeDurable(path string, data []byte) (err error) {
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
	if err := tmp.Chmod(fleetFileMode); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
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
	return syncDir(dir)
}

// renameDurable renames from to to and syncs the directory.
func renameDurable(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	return syncDir(filepath.Dir(to))
}

// removeDurable removes path (absent is fine) and syncs its directory.
func removeDurable(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CheckBundle checks a bundle's configuration as far as it can be
// without a gateway's file (weir-collector fleet sign): every key, type
// and value against the schema, the keys every gateway protects. A
// *ConfigError places each problem in the bundle.
func CheckBundle(b *pki.Bundle) error {
	if set := protectedSet(b.Config, alwaysProtected); len(set) > 0 {
		return fmt.Errorf("bundle v%d sets keys every gateway protects (%s); remote configuration may never change them", b.Version, strings.Join(set, ", "))
	}
	if b.Config == nil {
		return nil
	}
	var c Config
	cfg := reflect.ValueOf(&c).Elem()
	root, _ := parseYAML("", defaultYAML)
	(&decoder{}).decodeInto(root, cfg, "")
	d := &decoder{file: fmt.Sprintf(fleetBundleSource, b.Version)}
	d.decodeInto(b.Config, cfg, "")
	if len(d.probs) > 0 {
		sortProblems(d.probs)
		return &ConfigError{Problems: d.probs}
	}
	return nil
}
