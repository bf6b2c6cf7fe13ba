package gateway

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/gateway/console"
	"github.com/weirgw/weir/process"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/rules"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/hostlog"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/line"
	"github.com/weirgw/weir/sensors/modbus/poll"
	"github.com/weirgw/weir/sensors/syslog"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
	"github.com/weirgw/weir/uplink/siem/outputs"
)

// DefaultConfigFile is read when --config is not given; its absence is not
// an error, since the embedded defaults make a working gateway.
const DefaultConfigFile = "/etc/weir/weir.yaml"

// EnvPrefix starts every environment override.
const EnvPrefix = "WEIR"

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default configuration, every key with
// its default and a comment.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Config is the whole gateway configuration.
type Config struct {
	Gateway GatewayConfig `mapstructure:"gateway" yaml:"gateway"`
	DataDir string        `mapstructure:"data_dir" yaml:"data_dir"`
	// TelemetryInterval is how often the gateway spools a record of its own
	// figures (spool backlog, evictions, refusals).
	TelemetryInterval time.Duration `mapstructure:"telemetry_interval" yaml:"telemetry_interval"`
	Log               LogConfig     `mapstructure:"log" yaml:"log"`
	Admin             AdminConfig   `mapstructure:"admin" yaml:"admin"`
	Metrics           MetricsConfig `mapstructure:"metrics" yaml:"metrics"`
	Clock             ptp.Config    `mapstructure:"clock" yaml:"clock"`
	Spool             spool.Config  `mapstructure:"spool" yaml:"spool"`
	Inputs            InputsConfig  `mapstructure:"inputs" yaml:"inputs"`
	Uplink            uplink.Config `mapstructure:"uplink" yaml:"uplink"`
	// Fleet is remote configuration: the keys a bundle from the head-end
	// must be signed by, this gateway's labels, the keys no bundle may
	// set (gateway/fleet.go).
	Fleet FleetConfig `mapstructure:"fleet" yaml:"fleet"`
	// Console is `weir console`'s, the technician's serial shell.
	Console console.Config `mapstructure:"console" yaml:"console"`
	// Board is the appliance's hardware (LEDs, tamper switch, RS-485
	// driver enable, watchdog); off while nil. Its watchdog timings also
	// pace systemd's watchdog without it.
	Board *board.Config `mapstructure:"board" yaml:"board"`
	// Outputs deliver records straight to SIEMs (gateway/outputs.go).
	Outputs []outputs.Config `mapstructure:"outputs" yaml:"outputs"`
	// Rules watch the records on their way to the spool and raise alerts
	// (gateway/rules.go).
	Rules rules.Config `mapstructure:"rules" yaml:"rules"`
	// Processors drop, sample, redact, parse and enrich records between
	// the rules and the spool (gateway/processors.go).
	Processors process.Config `mapstructure:"processors" yaml:"processors"`
	// SealInterval and SealRecords say how often the gateway seals its
	// Merkle log (a signed tree head, gateway/seal.go): every interval and
	// every so many records, and at a clean shutdown. 0s turns seals off.
	SealInterval time.Duration `mapstructure:"seal_interval" yaml:"seal_interval"`
	SealRecords  int           `mapstructure:"seal_records" yaml:"seal_records"`
	// SealKeyDir holds the seal key (empty: <data_dir>/seal).
	SealKeyDir string `mapstructure:"seal_key_dir" yaml:"seal_key_dir"`
}

// GatewayConfig names the gateway.
type GatewayConfig struct {
	ID string `mapstructure:"id" yaml:"id"`
	// MemoryLimit is the Go runtime's soft memory limit (0: none). The
	// spool's compactions make garbage in bursts; without a limit the heap
	// grows to several times what is live before the collector runs.
	// GOMEMLIMIT, if set, wins.
	MemoryLimit spool.ByteSize `mapstructure:"memory_limit" yaml:"memory_limit"`
}

// LogConfig sets the daemon's own logging.
type LogConfig struct {
	Level  string `mapstructure:"level" yaml:"level"`
	Format string `mapstructure:"format" yaml:"format"`
}

// AdminConfig places the admin socket.
type AdminConfig struct {
	Socket string `mapstructure:"socket" yaml:"socket"`
	// Group is the socket's group (a name or a gid): its members may run
	// the diagnostics (weir status, sensors read ...) without being the
	// gateway's user. Empty: the gateway's own group. They also need to
	// reach the socket's directory (data_dir is 0750 at most, so for
	// another group put the socket in its own directory, e.g.
	// /run/weir/weir.sock with /run/weir 0750 weir:<group>).
	Group string `mapstructure:"group" yaml:"group"`
}

// MetricsConfig places the Prometheus endpoint.
type MetricsConfig struct {
	Listen string `mapstructure:"listen" yaml:"listen"`
}

// InputsConfig lists the sources.
type InputsConfig struct {
	Files  []hostlog.FileConfig `mapstructure:"files" yaml:"files"`
	Modbus poll.Config          `mapstructure:"modbus" yaml:"modbus"`
	Lines  []line.Config        `mapstructure:"lines" yaml:"lines"`
	// Syslog, Audit and Integrity are off while nil (null, or absent, in
	// the file): syslog would open ports, and audit and integrity read
	// what only a hardened site wants read. A section given, even empty
	// ({}), turns its input on, keys it omits taking the package's
	// defaults (syslog: UDP and TCP on 127.0.0.1:514; integrity: /etc,
	// plus the gateway's own binary and configuration file).
	Syslog    *syslog.Config    `mapstructure:"syslog" yaml:"syslog"`
	Audit     *audit.Config     `mapstructure:"audit" yaml:"audit"`
	Integrity *integrity.Config `mapstructure:"integrity" yaml:"integrity"`
}

// Loaded is a configuration with where it came from.
type Loaded struct {
	Config
	File     string   // the file read, "" for built-in defaults only
	Env      []string // WEIR_* variables that overrode keys
	Warnings []string // problems worth telling but not worth refusing
	// Bundle is the fleet's bundle merged over the file (LoadInForce);
	// nil for the file alone.
	Bundle *FleetBundle
}

// Source describes where the configuration came from, for error messages.
func (l *Loaded) Source() string {
	s := "built-in defaults"
	if l.File != "" {
		s = l.File
	}
	if l.Bundle != nil {
		s += fmt.Sprintf(" with fleet bundle v%d", l.Bundle.Version)
	}
	if len(l.Env) > 0 {
		s += " with " + strings.Join(l.Env, ", ")
	}
	return s
}

// Load reads the embedded defaults, then the file at path (when explicit
// is false a missing file is fine), then WEIR_* environment overrides, and
// validates the result. A *ConfigError lists every problem, each placed
// at its file, line and column (or its variable) with its key.
func Load(path string, explicit bool) (*Loaded, error) { return load(path, explicit, nil) }

// overlay is a fleet bundle's configuration, decoded over the file and
// under the WEIR_* variables: what it gives replaces the file's value
// (a list whole), what it leaves out is the file's.
type overlay struct {
	name string // "fleet bundle v7", where its problems are placed
	node *yaml.Node
}

func load(path string, explicit bool, over *overlay) (*Loaded, error) {
	l := &Loaded{}
	cfg := reflect.ValueOf(&l.Config).Elem()
	root, probs := parseYAML("", defaultYAML)
	defaults := &decoder{}
	defaults.decodeInto(root, cfg, "")
	if probs = append(probs, defaults.probs...); len(probs) > 0 {
		return nil, fmt.Errorf("config: built-in defaults: %w", &ConfigError{Problems: probs})
	}
	file := &decoder{places: map[string]place{}}
	if path != "" {
		b, err := readConfigFile(path, explicit)
		if err != nil {
			return nil, err
		}
		if b != nil {
			l.File, file.file = path, path
			root, probs := parseYAML(path, b)
			if len(probs) > 0 {
				return nil, &ConfigError{Problems: probs}
			}
			file.decodeInto(root, cfg, "")
		}
	}
	layers := []*decoder{file}
	if over != nil {
		bundle := &decoder{file: over.name, places: map[string]place{}}
		bundle.decodeInto(over.node, cfg, "")
		layers = append(layers, bundle)
	}
	env, envKeys, envProbs := applyEnv(&l.Config, os.Environ())
	l.Env = env
	var bad []string
	for _, d := range layers {
		probs = append(probs, d.probs...)
		bad = append(bad, d.bad...)
	}
	probs = append(probs, envProbs...)

	if l.Gateway.ID == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("config: gateway.id is empty and the host name is unknown: %w", err)
		}
		l.Gateway.ID = h
	}
	l.resolveDefaults()
	probs = append(probs, validationProblems(l.Validate(), layers, envKeys, append(bad, badKeys(envProbs)...))...)
	if len(probs) > 0 {
		sortProblems(probs)
		return nil, &ConfigError{Problems: probs}
	}
	l.Warnings = append(l.Warnings, l.processorWarnings()...)
	if l.File != "" && l.holdsSecrets() {
		if fi, err := os.Stat(l.File); err == nil && fi.Mode().Perm()&0o004 != 0 {
			l.Warnings = append(l.Warnings, fmt.Sprintf("config %s is world-readable (mode %04o) and names key material or a password hash; chmod o-r %s", l.File, fi.Mode().Perm(), l.File))
		}
	}
	return l, nil
}

// resolveDefaults writes in the values that zero stands for, so that the
// configuration printed is the one in force: the spool's platform bound,
// an endpoint's transport and the name its certificate must carry.
func (c *Config) resolveDefaults() {
	if c.Spool.MaxBytes == 0 {
		c.Spool.MaxBytes = spool.DefaultConfig().MaxBytes
	}
	for i := range c.Uplink.Endpoints {
		e := &c.Uplink.Endpoints[i]
		e.Transport = e.Proto()
		if e.ServerName == "" {
			e.ServerName = e.Server()
		}
	}
}

func readConfigFile(path string, explicit bool) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config %s: no such file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("config %s: is a directory", path)
	}
	// Anyone who can write the config can point the uplink elsewhere.
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("config %s: refusing a group- or world-writable file (mode %04o); chmod go-w %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return b, nil
}

// badKeys are the keys of problems with a value.
func badKeys(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		if p.Key != "" {
			out = append(out, p.Key)
		}
	}
	return out
}

// validationProblems places each of Validate's errors ("key: what is
// wrong") at the key's value in the file (or the bundle over it, which
// wins), or at the variable that set it; a key the file does not give is
// placed at the nearest section it gives. An error about a key whose
// value was already refused, or about the list or section holding it, is
// left out: it only repeats that.
func validationProblems(err error, layers []*decoder, envKeys map[string]string, bad []string) []Problem {
	file := layers[0]
	var out []Problem
	for _, e := range flattenErrors(err) {
		for _, text := range strings.Split(e.Error(), "\n") {
			key, msg, ok := strings.Cut(text, ": ")
			if !ok || strings.ContainsAny(strings.ReplaceAll(key, ", ", ","), " \t") {
				key, msg = "", text
			}
			first, _, _ := strings.Cut(key, ",")
			if slices.ContainsFunc(bad, func(b string) bool { return first == b || isUnder(first, b) || isUnder(b, first) }) {
				continue
			}
			p := Problem{Key: key, Message: msg, File: file.file}
			if name, ok := envKeys[first]; ok {
				p.File, p.Env = "", name
			} else {
			placed:
				for q := first; q != ""; q = parentKey(q) {
					for i := len(layers) - 1; i >= 0; i-- {
						if pl, ok := layers[i].places[q]; ok {
							p.File, p.Line, p.Column = layers[i].file, pl.keyLine, pl.keyCol
							if q == first {
								p.Line, p.Column = pl.valLine, pl.valCol
							}
							break placed
						}
					}
				}
			}
			out = append(out, p)
		}
	}
	return out
}

// isUnder says whether key a is inside key b (a.b under a, a[0] under a).
func isUnder(a, b string) bool {
	return strings.HasPrefix(a, b+".") || strings.HasPrefix(a, b+"[")
}

// parentKey is the key holding k: a.b[0].c, a.b[0], a.b, a, "".
func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i < 0 {
		return ""
	}
	return k[:i]
}

// flattenErrors lists the errors joined in err, however deeply.
func flattenErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// Validate checks the whole configuration without I/O. Errors name keys.
func (c *Config) Validate() error {
	var errs []error
	add := func(key string, err error) {
		if err == nil {
			return
		}
		for _, e := range flattenErrors(err) {
			errs = append(errs, fmt.Errorf("%s.%w", key, e))
		}
	}
	if err := pki.ValidateID(c.Gateway.ID); err != nil {
		msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "pki: gateway id"), ": ")
		errs = append(errs, fmt.Errorf("gateway.id: %s", strings.TrimSpace(msg)))
	}
	if m := c.Gateway.MemoryLimit; m != 0 && m < 16<<20 {
		errs = append(errs, fmt.Errorf("gateway.memory_limit: %s is below 16MiB; the collector would run without pause (0 turns the limit off)", m))
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			errs = append(errs, fmt.Errorf("metrics.listen: %q is not host:port", c.Metrics.Listen))
		}
	}
	if c.TelemetryInterval < time.Second {
		errs = append(errs, fmt.Errorf("telemetry_interval: %s is below 1s", c.TelemetryInterval))
	}
	if c.SealInterval != 0 && c.SealInterval < time.Second {
		errs = append(errs, fmt.Errorf("seal_interval: %s is below 1s (0s turns seals off)", c.SealInterval))
	}
	if c.SealRecords != 0 && (c.SealRecords < 100 || c.SealRecords > 10_000_000) {
		errs = append(errs, fmt.Errorf("seal_records: %d is not between 100 and 10000000 (0: by time only)", c.SealRecords))
	}
	add("clock", c.Clock.Validate())
	add("spool", c.Spool.Validate())
	// Every input's records carry its name as their source (and its
	// checkpoints are keyed by it): two inputs may not share one.
	claimed := map[string]string{}
	claim := func(key, source string) {
		if other, dup := claimed[source]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is already used by %s", key, source, other))
			return
		}
		claimed[source] = key
	}
	for i, f := range c.Inputs.Files {
		key := fmt.Sprintf("inputs.files[%d]", i)
		add(key, f.Validate())
		claim(key, f.Name)
	}
	add("inputs.modbus", c.Inputs.Modbus.Validate())
	for i, lc := range c.Inputs.Lines {
		key := fmt.Sprintf("inputs.lines[%d]", i)
		add(key, lc.Validate())
		claim(key, lc.Name)
	}
	if sc := c.Inputs.Syslog; sc != nil {
		add("inputs.syslog", sc.Validate())
		claim("inputs.syslog", cmp.Or(sc.Name, syslog.DefaultConfig().Name))
	}
	if ac := c.Inputs.Audit; ac != nil {
		add("inputs.audit", ac.Validate())
		claim("inputs.audit", cmp.Or(ac.Name, audit.DefaultConfig().Name))
	}
	if c.Inputs.Integrity != nil {
		add("inputs.integrity", c.Inputs.Integrity.Validate())
		claim("inputs.integrity", integrity.Source)
	}
	add("uplink", c.Uplink.Validate())
	add("fleet", c.Fleet.Validate())
	add("console", c.Console.Validate())
	if c.Board != nil {
		add("board", c.Board.Validate())
	}
	errs = append(errs, c.validateOutputs()...)
	add("rules", c.Rules.Validate())
	errs = append(errs, validateRuleLEDs(c.Rules)...)
	errs = append(errs, c.validateProcessors()...)
	return errors.Join(errs...)
}

func (c *Config) holdsSecrets() bool {
	return c.Uplink.TLS.Key != "" || c.Uplink.TLS.KeyPEM != "" || c.Console.PasswordHash != "" || c.outputsHoldSecrets() ||
		c.Processors.HoldsSecrets()
}

// Redacted returns a copy safe to print or log.
func (c Config) Redacted() Config {
	if c.Uplink.TLS.KeyPEM != "" {
		c.Uplink.TLS.KeyPEM = "<redacted>"
	}
	if c.Console.PasswordHash != "" {
		c.Console.PasswordHash = "<redacted>"
	}
	c.Uplink.Endpoints = slices.Clone(c.Uplink.Endpoints)
	c.Inputs.Files = slices.Clone(c.Inputs.Files)
	c.Outputs = slices.Clone(c.Outputs)
	for i := range c.Outputs {
		c.Outputs[i] = c.Outputs[i].Redacted()
	}
	c.Inputs.Modbus.Buses = slices.Clone(c.Inputs.Modbus.Buses)
	c.Inputs.Modbus.Devices = slices.Clone(c.Inputs.Modbus.Devices)
	c.Inputs.Lines = slices.Clone(c.Inputs.Lines)
	c.Inputs.Syslog = clonePtr(c.Inputs.Syslog)
	c.Inputs.Audit = clonePtr(c.Inputs.Audit)
	c.Board = clonePtr(c.Board)
	c.Rules.Rules = slices.Clone(c.Rules.Rules)
	c.Processors = c.Processors.Redacted()
	if c.Inputs.Integrity = clonePtr(c.Inputs.Integrity); c.Inputs.Integrity != nil {
		c.Inputs.Integrity.Paths = slices.Clone(c.Inputs.Integrity.Paths)
		c.Inputs.Integrity.Exclude = slices.Clone(c.Inputs.Integrity.Exclude)
	}
	return c
}

// clonePtr copies what p points at, so a redacted copy shares nothing.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// shortDuration writes d as it would be written by hand: 1m, 720h,
// 1h30m, 250ms (not 1m0s, 720h0m0s).
func shortDuration(d time.Duration) string {
	s := strings.ReplaceAll(d.String(), "µs", "us")
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Map renders c as nested maps keyed like the YAML file, durations as
// strings ("250ms"), for printing the effective configuration.
func (c Config) Map() map[string]any {
	return toMap(reflect.ValueOf(c)).(map[string]any)
}

func toMap(v reflect.Value) any {
	if v.Kind() == reflect.Pointer {
		// An optional section: null while off.
		if v.IsNil() {
			return nil
		}
		return toMap(v.Elem())
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		return shortDuration(time.Duration(v.Int()))
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok && v.Kind() != reflect.Struct {
		if b, err := m.MarshalText(); err == nil {
			if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
				return n // a plain number prints as one, not as "0"
			}
			return string(b)
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		m := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" {
				for k, x := range toMap(v.Field(i)).(map[string]any) {
					m[k] = x
				}
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			m[name] = toMap(v.Field(i))
		}
		return m
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toMap(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			break
		}
		m := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			m[it.Key().String()] = toMap(it.Value())
		}
		return m
	}
	return v.Interface()
}
