package poll

import (
	"testing"

	"github.com/go-viper/mapstructure/v2"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestExampleValid: the example decodes strictly onto the defaults and
// validates, and plans the requests it implies.
func TestExampleValid(t *testing.T) {
	var raw struct {
		Buses   []map[string]any `yaml:"buses"`
		Devices []map[string]any `yaml:"devices"`
	}
	require.NoError(t, yaml.Unmarshal(ExampleYAML(), &raw))
	var cfg Config
	decode := func(in, out any) {
		d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: out, ErrorUnused: true, WeaklyTypedInput: true,
			DecodeHook: mapstructure.StringToTimeDurationHookFunc()})
		require.NoError(t, err)
		require.NoError(t, d.Decode(in))
	}
	for _, b := range raw.Buses {
		bc := DefaultBusConfig()
		decode(b, &bc)
		cfg.Buses = append(cfg.Buses, bc)
	}
	for _, d := range raw.Devices {
		dc := DefaultDeviceConfig()
		decode(d, &dc)
		cfg.Devices = append(cfg.Devices, dc)
	}
	require.NoError(t, cfg.Validate())
	require.Len(t, plan(cfg.Devices[0]), 5, "holding 0-3, holding 10-17, holding 20, input 0-1, coil 0")
	g := groups(cfg.Devices[0])
	require.Len(t, g, 2, "10s and the model's 1h")
	require.Len(t, g[1].plan, 1)
}
