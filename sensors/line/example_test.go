package line

import (
	"reflect"
	"testing"

	"github.com/go-viper/mapstructure/v2"
	"go.yaml.in/yaml/v3"
)

// TestExampleYAML: the example decodes strictly (every key known) onto the
// defaults, validates, and shows the defaults as they are.
func TestExampleYAML(t *testing.T) {
	var raw map[string]any
	if err := yaml.Unmarshal(ExampleYAML(), &raw); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result: &cfg, ErrorUnused: true, WeaklyTypedInput: true,
		DecodeHook: mapstructure.StringToTimeDurationHookFunc(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Decode(raw); err != nil {
		t.Fatalf("decode example.yaml: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("example.yaml: %v", err)
	}
	want := DefaultConfig()
	want.Name, want.Port.Device = "gps1", "/dev/ttyS2"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("example.yaml decodes to\n%+v\nnot the defaults\n%+v", cfg, want)
	}
}
