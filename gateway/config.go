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
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/board"
	"github.com/weirgw/weir/ptp"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/hostlog"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/line"
	"github.com/weirgw/weir/sensors/modbus/poll"
	"github.com/weirgw/weir/sensors/syslog"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
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
	// Board is the appliance's hardware (LEDs, tamper switch, RS-485
	// driver enable, watchdog); off while nil. Its watchdog timings also
	// pace systemd's watchdog without it.
	Board *board.Config `mapstructure:"board" yaml:"board"`
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
}

// Source describes where the configuration came from, for error messages.
func (l *Loaded) Source() string {
	s := "built-in defaults"
	if l.File != "" {
		s = l.File
	}
	if len(l.Env) > 0 {
		s += " with " + strings.Join(l.Env, ", ")
	}
	return s
}

// Load reads the embedded defaults, then the file at path (when explicit
// is false a missing file is fine), then WEIR_* environment overrides, and
// validates the result. Errors name the file and the key.
func Load(path string, explicit bool) (*Loaded, error) {
	l := &Loaded{}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(defaultYAML)); err != nil {
		return nil, fmt.Errorf("config: built-in defaults: %w", err)
	}
	if path != "" {
		b, err := readConfigFile(path, explicit, l)
		if err != nil {
			return nil, err
		}
		if b != nil {
			l.File = path
			if err := v.MergeConfig(bytes.NewReader(b)); err != nil {
				return nil, fmt.Errorf("config %s: %w", path, err)
			}
			if err := unknownKeys(b); err != nil {
				return nil, fmt.Errorf("config %s: %w", path, err)
			}
		}
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	env, err := envOverrides(v)
	if err != nil {
		return nil, err
	}
	l.Env = env

	if err := v.Unmarshal(&l.Config, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(dc.DecodeHook, mapstructure.TextUnmarshallerHookFunc())
	}); err != nil {
		return nil, fmt.Errorf("config %s: %s", l.Source(), decodeMessage(err, v))
	}
	// A list item the file gives replaces the default item whole; decode
	// each onto the input's defaults so omitted keys keep them.
	if raw, ok := v.Get("inputs.files").([]any); ok {
		l.Inputs.Files = make([]hostlog.FileConfig, len(raw))
		for i, item := range raw {
			fc := hostlog.DefaultFileConfig()
			if err := decodeStrict(item, &fc); err != nil {
				return nil, fmt.Errorf("config %s: inputs.files[%d]: %w", l.Source(), i, err)
			}
			l.Inputs.Files[i] = fc
		}
	}
	if err := decodeItems(v, "inputs.modbus.buses", poll.DefaultBusConfig, &l.Inputs.Modbus.Buses); err != nil {
		return nil, fmt.Errorf("config %s: %w", l.Source(), err)
	}
	if err := decodeItems(v, "inputs.modbus.devices", poll.DefaultDeviceConfig, &l.Inputs.Modbus.Devices); err != nil {
		return nil, fmt.Errorf("config %s: %w", l.Source(), err)
	}
	if err := decodeItems(v, "inputs.lines", line.DefaultConfig, &l.Inputs.Lines); err != nil {
		return nil, fmt.Errorf("config %s: %w", l.Source(), err)
	}
	if err := decodeSection(v, "inputs.syslog", syslog.DefaultConfig, &l.Inputs.Syslog); err != nil {
		return nil, fmt.Errorf("config %s: %w", l.Source(), err)
	}
	if err := decodeSection(v, "inputs.audit", audit.DefaultConfig, &l.Inputs.Audit); err != nil {
		return nil, fmt.Errorf("config %s: %w", l.Source(), err)
	}
	if err := decodeSection(v, "inputs.integrity", integrity.DefaultConfig, &l.Inputs.Integrity); err != nil {
		return nil, fmt.Errorf("config %s: %w", l.Source(), err)
	}
	if err := decodeSection(v, "board", board.DefaultConfig, &l.Board); err != nil {
		return nil, fmt.Errorf("config %s: %w", l.Source(), err)
	}
	if l.Gateway.ID == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("config: gateway.id is empty and the host name is unknown: %w", err)
		}
		l.Gateway.ID = h
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", l.Source(), err)
	}
	if l.File != "" && l.holdsSecrets() {
		if fi, err := os.Stat(l.File); err == nil && fi.Mode().Perm()&0o004 != 0 {
			l.Warnings = append(l.Warnings, fmt.Sprintf("config %s is world-readable (mode %04o) and names key material; chmod o-r %s", l.File, fi.Mode().Perm(), l.File))
		}
	}
	return l, nil
}

func readConfigFile(path string, explicit bool, l *Loaded) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil, nil
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

// envOverrides lists the WEIR_* variables in use and refuses any that
// names no key, since a typo there would otherwise be silently ignored.
func envOverrides(v *viper.Viper) ([]string, error) {
	known := map[string]bool{EnvPrefix + "_CONFIG": true}
	for _, k := range v.AllKeys() {
		known[EnvPrefix+"_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = true
	}
	var used, unknown []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix+"_") || name == EnvPrefix+"_CONFIG" {
			continue
		}
		if known[name] {
			used = append(used, name)
		} else {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(used)
	sort.Strings(unknown)
	if len(unknown) > 0 {
		return nil, fmt.Errorf("config: environment %s: no such configuration key", strings.Join(unknown, ", "))
	}
	return used, nil
}

// unknownKeys reports every key of the file that names no field of
// Config, with its full path (inputs.modbus.devices[0].bogus). Viper drops
// a key whose value is an empty mapping or null before the decoder's own
// check sees it, so the file is walked as written, against the struct.
func unknownKeys(file []byte) error {
	var doc any
	if err := yaml.Unmarshal(file, &doc); err != nil {
		return fmt.Errorf("yaml: %w", err) // viper read it, so not expected
	}
	var errs []error
	walkKeys("", doc, reflect.TypeFor[Config](), &errs)
	return errors.Join(errs...)
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// walkKeys checks the keys of doc, found at path, against t. A value of
// the wrong shape (a list where a mapping belongs) is left to the decoder,
// which names what it got.
func walkKeys(path string, doc any, t reflect.Type, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[time.Duration]() || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return // written as a string
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if items, ok := doc.([]any); ok {
			for i, item := range items {
				walkKeys(fmt.Sprintf("%s[%d]", path, i), item, t.Elem(), errs)
			}
		}
	case reflect.Map:
		m, _ := doc.(map[string]any)
		for k, v := range m {
			walkKeys(joinKey(path, k), v, t.Elem(), errs)
		}
	case reflect.Struct:
		var keys []string
		m := map[string]any{}
		switch d := doc.(type) {
		case map[string]any:
			m = d
		case map[any]any: // a key YAML does not read as a string, e.g. 1 or true
			for k, v := range d {
				m[fmt.Sprint(k)] = v
			}
		default:
			return
		}
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fieldByKey(t, k)
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s: no such configuration key", joinKey(path, k)))
				continue
			}
			walkKeys(joinKey(path, k), m[k], f.Type, errs)
		}
	}
}

// fieldByKey finds the field of struct t that key k decodes into, as
// mapstructure matches it: by tag, or by name, ignoring case.
func fieldByKey(t reflect.Type, k string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, k) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

var quotedKey = regexp.MustCompile(`'([A-Za-z0-9_.\[\]]+)'`)

// decodeMessage rewords mapstructure's report for people: one problem a
// line, each with the value that was given.
func decodeMessage(err error, v *viper.Viper) string {
	msg := strings.TrimPrefix(err.Error(), "decoding failed due to the following error(s):\n\n")
	lines := strings.Split(msg, "\n")
	for i, line := range lines {
		if m := quotedKey.FindStringSubmatch(line); m != nil && v.IsSet(m[1]) && strings.Contains(line, "cannot parse") {
			lines[i] = fmt.Sprintf("%s (got %q)", line, fmt.Sprint(v.Get(m[1])))
		}
	}
	return strings.Join(lines, "; ")
}

// decodeItems decodes each item of the list at key onto the defaults, so
// omitted keys keep them.
func decodeItems[T any](v *viper.Viper, key string, defaults func() T, out *[]T) error {
	raw, ok := v.Get(key).([]any)
	if !ok {
		return nil
	}
	*out = make([]T, len(raw))
	for i, item := range raw {
		c := defaults()
		if err := decodeStrict(item, &c); err != nil {
			return fmt.Errorf("%s[%d]: %w", key, i, err)
		}
		(*out)[i] = c
	}
	return nil
}

// decodeSection decodes the optional section at key onto the defaults, so
// omitted keys keep them; a section absent or null leaves *out nil (off).
func decodeSection[T any](v *viper.Viper, key string, defaults func() T, out **T) error {
	raw := v.Get(key)
	if raw == nil {
		*out = nil
		return nil
	}
	if _, ok := raw.(map[string]any); !ok {
		return fmt.Errorf("%s: want a mapping of its keys ({} for every default) or null for off, got %q", key, fmt.Sprint(raw))
	}
	c := defaults()
	if err := decodeStrict(raw, &c); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	*out = &c
	return nil
}

func decodeStrict(in, out any) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out,
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		// Text unmarshalers for sizes such as integrity's max_file_bytes
		// ("64MiB"), as the whole file's decoding has.
		DecodeHook: mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc(), mapstructure.TextUnmarshallerHookFunc()),
	})
	if err != nil {
		return err
	}
	return d.Decode(in)
}

// Validate checks the whole configuration without I/O. Errors name keys.
func (c *Config) Validate() error {
	var errs []error
	add := func(key string, err error) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				errs = append(errs, fmt.Errorf("%s.%w", key, e))
			}
			return
		}
		errs = append(errs, fmt.Errorf("%s.%w", key, err))
	}
	if err := pki.ValidateID(c.Gateway.ID); err != nil {
		errs = append(errs, fmt.Errorf("gateway.id: %w", err))
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
	if c.Board != nil {
		add("board", c.Board.Validate())
	}
	return errors.Join(errs...)
}

func (c *Config) holdsSecrets() bool {
	return c.Uplink.TLS.Key != "" || c.Uplink.TLS.KeyPEM != ""
}

// Redacted returns a copy safe to print or log.
func (c Config) Redacted() Config {
	if c.Uplink.TLS.KeyPEM != "" {
		c.Uplink.TLS.KeyPEM = "<redacted>"
	}
	c.Uplink.Endpoints = slices.Clone(c.Uplink.Endpoints)
	c.Inputs.Files = slices.Clone(c.Inputs.Files)
	c.Inputs.Modbus.Buses = slices.Clone(c.Inputs.Modbus.Buses)
	c.Inputs.Modbus.Devices = slices.Clone(c.Inputs.Modbus.Devices)
	c.Inputs.Lines = slices.Clone(c.Inputs.Lines)
	c.Inputs.Syslog = clonePtr(c.Inputs.Syslog)
	c.Inputs.Audit = clonePtr(c.Inputs.Audit)
	c.Board = clonePtr(c.Board)
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
		return time.Duration(v.Int()).String()
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok && v.Kind() != reflect.Struct {
		if b, err := m.MarshalText(); err == nil {
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
	}
	return v.Interface()
}
