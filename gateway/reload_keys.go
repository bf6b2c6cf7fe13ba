package gateway

import (
	"fmt"
	"reflect"
	"strings"
)

// reloadKey says what a reload does with a section of the configuration:
// live ones are applied while the gateway runs, the others need a
// restart, and a reload that changes one is refused whole.
type reloadKey struct {
	key  string
	live bool
	how  string // live: what a change does; otherwise why a restart is needed
}

// reloadKeys classifies every section; TestReloadKeysCoverConfig keeps
// it whole, so a section added to Config must say here what a reload
// does with it. README's "Reloading the configuration" lists the same.
var reloadKeys = []reloadKey{
	{"gateway", false, "the gateway's id names its records and its uplink sessions; memory_limit is set at start"},
	{"data_dir", false, "the spool, the positions and the admin socket live there"},
	{"telemetry_interval", true, "the telemetry loop takes the new interval; its counts go on"},
	{"seal_interval", false, "the sealer is started with its schedule"},
	{"seal_records", false, "the sealer is started with its schedule"},
	{"seal_key_dir", false, "the seal key is opened at start"},
	{"log", false, "the daemon's logger is made at start"},
	{"admin", false, "the admin socket is bound at start"},
	{"metrics", false, "the metrics listener is bound at start"},
	{"clock", false, "the clock that stamps every record is built at start"},
	{"spool", false, "the spool is opened at start with its bounds and profile"},
	{"inputs.files", true, "a file input whose settings changed is stopped at its committed positions and started again from them; one added starts, one removed stops"},
	{"inputs.modbus", true, "a bus whose settings or devices changed is restarted; the other buses poll on"},
	{"inputs.lines", true, "a line sensor whose settings changed is restarted"},
	{"inputs.syslog", true, "restarted: its ports are closed and bound again (UDP sent meanwhile is lost; TCP senders reconnect)"},
	{"inputs.audit", true, "restarted from its checkpoint (over netlink, what the kernel emits meanwhile is lost)"},
	{"inputs.integrity", true, "restarted against its baseline"},
	{"uplink", true, "the sender is restarted; batches in flight are sent again and the collector keeps one copy"},
	{"fleet", true, "the next bundle is checked against the new keys, labels and protected keys; the bundle in force stays if it still checks out"},
	{"console", true, "read by `weir console` when it starts; the daemon uses none of it"},
	{"board", false, "the board's pins and watchdog are opened at start"},
	{"rules", true, "the engine loads the new rules; rules that did not change keep their windows, cooldowns and counts"},
	{"processors", true, "the chains are built again from the new section (their counts, samples and deadbands start again); no input restarts"},
	{"outputs", false, "the outputs share the spool with the uplink through a gate set up at start"},
}

// classify returns the entry of reloadKeys (or a hook's key, live) that
// holds key; an unknown one needs a restart.
func classify(key string, hooks []*sectionHook) reloadKey {
	for _, h := range hooks {
		if key == h.key || isUnder(key, h.key) {
			return reloadKey{key: h.key, live: true, how: "taken by its part in place"}
		}
	}
	best, found := reloadKey{key: key, how: "the reload does not know this section"}, false
	for _, k := range reloadKeys {
		if (key == k.key || isUnder(key, k.key)) && (!found || len(k.key) > len(best.key)) {
			best, found = k, true
		}
	}
	return best
}

// needsRestart lists, one per section, the changed keys a reload cannot
// apply, with why.
func needsRestart(keys []string, cur, next *Config, hooks []*sectionHook) []string {
	var out []string
	seen := map[string]bool{}
	add := func(section, text string) {
		if !seen[section] {
			seen[section] = true
			out = append(out, text)
		}
	}
	for _, k := range keys {
		if c := classify(k, hooks); !c.live {
			add(c.key, fmt.Sprintf("%s (%s)", k, c.how))
		}
	}
	// With outputs, the uplink is one of the gate's consumers, or not:
	// that is set at start.
	if len(next.Outputs) > 0 && cur.Uplink.Enabled() != next.Uplink.Enabled() {
		add("uplink.endpoints", "uplink.endpoints (with outputs, turning the uplink on or off changes the consumers of the spool, set at start)")
	}
	return out
}

// changedKeys lists the keys whose values differ between a and b, as
// the file writes them (inputs.files[1].poll_interval); a list whose
// length changed is one key. Values are never part of it: a key_pem
// changed is named, not shown.
func changedKeys(a, b *Config) []string {
	var out []string
	diffValue(reflect.ValueOf(*a), reflect.ValueOf(*b), "", &out)
	return out
}

func diffValue(a, b reflect.Value, key string, out *[]string) {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				*out = append(*out, key)
			}
			return
		}
		diffValue(a.Elem(), b.Elem(), key, out)
		return
	case reflect.Struct:
		if !hasYAMLFields(a.Type()) {
			break
		}
		for i := 0; i < a.NumField(); i++ {
			f := a.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			sub := key
			if !f.Anonymous || name != "" {
				if name == "" {
					name = strings.ToLower(f.Name)
				}
				sub = joinKey(key, name)
			}
			diffValue(a.Field(i), b.Field(i), sub, out)
		}
		return
	case reflect.Slice:
		if a.Len() != b.Len() {
			*out = append(*out, key)
			return
		}
		for i := 0; i < a.Len(); i++ {
			diffValue(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", key, i), out)
		}
		return
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		*out = append(*out, key)
	}
}

// hasYAMLFields says whether t is a section of the file (its fields have
// keys) rather than a value written as one scalar.
func hasYAMLFields(t reflect.Type) bool {
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).IsExported() && t.Field(i).Tag.Get("yaml") != "" {
			return true
		}
	}
	return false
}
