package fleet

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Site is what the head-end's operator knows of a gateway's place (the
// gateways send no such thing): fields such as site, region or feeder,
// from the sites file. Site and name come first, the others by key.
type Site [][2]string

// String joins the values: "Pump station 3 · north · F12".
func (s Site) String() string {
	v := make([]string, len(s))
	for i, kv := range s {
		v[i] = kv[1]
	}
	return strings.Join(v, " · ")
}

// MaxSitesFile bounds the sites file read.
const MaxSitesFile = 4 << 20

// LoadSites reads a sites file: a YAML map of gateway id to a map of
// field to value.
//
//	pump-station-3: {site: Pump station 3, region: north, feeder: F12}
func LoadSites(path string) (map[string]Site, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fleet: sites file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSitesFile+1))
	if err != nil {
		return nil, fmt.Errorf("fleet: sites file %s: %w", path, err)
	}
	if len(b) > MaxSitesFile {
		return nil, fmt.Errorf("fleet: sites file %s: larger than %d bytes", path, MaxSitesFile)
	}
	return ParseSites(path, b)
}

// ParseSites parses the content of a sites file named name.
func ParseSites(name string, b []byte) (map[string]Site, error) {
	var raw map[string]map[string]string
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("fleet: sites file %s: %w (want a map of gateway id to a map of field: value)", name, err)
	}
	out := make(map[string]Site, len(raw))
	for id, fields := range raw {
		if id == "" || len(id) > MaxIDLen {
			return nil, fmt.Errorf("fleet: sites file %s: gateway id %q: 1 to %d bytes", name, clip(id, 80), MaxIDLen)
		}
		var s Site
		for k, v := range fields {
			if len(k) > maxKey || len(v) > maxText {
				return nil, fmt.Errorf("fleet: sites file %s: gateway %s: field %q: keys at most %d bytes, values %d", name, id, clip(k, 80), maxKey, maxText)
			}
			if v != "" {
				s = append(s, [2]string{k, v})
			}
		}
		rank := func(k string) int {
			switch k {
			case "site":
				return 0
			case "name":
				return 1
			}
			return 2
		}
		sort.Slice(s, func(i, j int) bool {
			if ri, rj := rank(s[i][0]), rank(s[j][0]); ri != rj {
				return ri < rj
			}
			return s[i][0] < s[j][0]
		})
		out[id] = s
	}
	return out, nil
}
