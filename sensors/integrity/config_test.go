package integrity

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings of the error, each naming the key; none: valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"zero values", func(c *Config) { *c = Config{} }, nil},
		{"relative path", func(c *Config) { c.Paths = []string{"etc"} }, []string{`paths: "etc" is not absolute`}},
		{"empty path", func(c *Config) { c.Paths = []string{""} }, []string{"paths: a path is empty"}},
		{"bad glob", func(c *Config) { c.Exclude = []string{"[x"} }, []string{`exclude: glob "[x" is malformed`}},
		{"empty glob", func(c *Config) { c.Exclude = []string{""} }, []string{"exclude: a glob is empty"}},
		{"rescan negative", func(c *Config) { c.RescanInterval = -time.Second }, []string{"rescan_interval: -1s is negative"}},
		{"rescan too often", func(c *Config) { c.RescanInterval = 10 * time.Millisecond }, []string{"rescan_interval: 10ms is below the 1s minimum"}},
		{"settle negative", func(c *Config) { c.Settle = -1 }, []string{"settle: -1ns is negative"}},
		{"settle too long", func(c *Config) { c.Settle = time.Hour }, []string{"settle: 1h0m0s is more than 1m0s"}},
		{"max bytes negative", func(c *Config) { c.MaxFileBytes = -1 }, []string{"max_file_bytes: -1 is negative"}},
		{"several", func(c *Config) { c.Paths = []string{"x"}; c.Settle = -1 }, []string{"paths:", "settle:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			_, err = newMonitor(c, nil, nopStore{}, nil)
			require.ErrorContains(t, err, "integrity: "+tt.want[0])
		})
	}
}

type nopStore struct{}

func (nopStore) Checkpoint(string) ([]byte, error)                    { return nil, nil }
func (nopStore) Checkpoints(string, func(string, []byte) error) error { return nil }

// TestExampleYAML: the example decodes strictly (every key known) onto the
// defaults, validates, and shows the defaults as they are.
func TestExampleYAML(t *testing.T) {
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal(ExampleYAML(), &raw))
	cfg := DefaultConfig()
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result: &cfg, ErrorUnused: true, WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(), mapstructure.TextUnmarshallerHookFunc()),
	})
	require.NoError(t, err)
	require.NoError(t, d.Decode(raw))
	require.NoError(t, cfg.Validate())
	if len(cfg.Exclude) == 0 {
		cfg.Exclude = nil
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Errorf("example.yaml decodes to\n%+v\nnot the defaults\n%+v", cfg, DefaultConfig())
	}
}

func TestRoots(t *testing.T) {
	tests := []struct {
		name    string
		paths   []string
		exclude []string
		want    []string
	}{
		{"clean and dedupe", []string{"/etc/", "/etc", "/usr/bin/../bin/weir"}, nil, []string{"/etc", "/usr/bin/weir"}},
		{"nested dropped", []string{"/etc", "/etc/weir/weir.yaml"}, nil, []string{"/etc"}},
		{"nested kept when excluded", []string{"/etc", "/etc/weir/weir.yaml"}, []string{"/etc/weir"}, []string{"/etc", "/etc/weir/weir.yaml"}},
		{"root covers all", []string{"/", "/etc"}, nil, []string{"/"}},
		{"prefix is not parent", []string{"/etc", "/etcetera"}, nil, []string{"/etc", "/etcetera"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := newMonitor(Config{Paths: tt.paths, Exclude: tt.exclude}, nil, nopStore{}, nil)
			require.NoError(t, err)
			require.Equal(t, tt.want, m.roots)
		})
	}
}

func TestScope(t *testing.T) {
	m, err := newMonitor(Config{Paths: []string{"/etc", "/srv/app.conf"}, Exclude: []string{"/etc/ssl/certs", "*.swp"}}, nil, nopStore{}, nil)
	require.NoError(t, err)
	tests := []struct {
		path string
		root string // "": out of scope
	}{
		{"/etc", "/etc"},
		{"/etc/passwd", "/etc"},
		{"/etc/ssl/openssl.cnf", "/etc"},
		{"/etc/ssl/certs", ""},
		{"/etc/ssl/certs/ca.pem", ""},
		{"/etc/.passwd.swp", ""},
		{"/etc/x.swp/inner", ""},
		{"/etcetera/x", ""},
		{"/srv/app.conf", "/srv/app.conf"},
		{"/srv/other", ""},
		{"/", ""},
	}
	for _, tt := range tests {
		root, ok := m.rootOf(tt.path)
		require.Equal(t, tt.root != "", ok, tt.path)
		require.Equal(t, tt.root, root, tt.path)
	}
	require.True(t, strings.HasPrefix(childPrefix("/"), sourcePrefix+"/"))
	require.Equal(t, sourcePrefix+"/", childPrefix("/"))
	require.Equal(t, sourcePrefix+"/etc/", childPrefix("/etc"))
}
