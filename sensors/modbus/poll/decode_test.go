package poll

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/modbus"
)

// memory is a device's memory for the golden cases: table → address → word
// (bits are 0 or 1).
type memory map[string]map[int]uint16

func loadMemory(t *testing.T, path string) memory {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	tb := memory{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		head, words, ok := strings.Cut(line, ":")
		require.True(t, ok, "line %q", line)
		var table string
		var addr int
		_, err := fmt.Sscanf(head, "%s %d", &table, &addr)
		require.NoError(t, err, "line %q", line)
		if tb[table] == nil {
			tb[table] = map[int]uint16{}
		}
		for i, w := range strings.Fields(words) {
			v, err := strconv.ParseUint(w, 16, 16)
			require.NoError(t, err, "line %q", line)
			tb[table][addr+i] = uint16(v)
		}
	}
	return tb
}

// answer is what a device holding tb answers to a read request.
func (tb memory) answer(req modbus.Request) modbus.Response {
	var res modbus.Response
	name := map[modbus.FunctionCode]string{modbus.FuncReadCoils: "coil", modbus.FuncReadDiscreteInputs: "discrete",
		modbus.FuncReadInputRegisters: "input", modbus.FuncReadHoldingRegisters: "holding"}[req.Function]
	for i := range int(req.Quantity) {
		v := tb[name][int(req.Address)+i]
		if name == "coil" || name == "discrete" {
			res.Bits = append(res.Bits, v != 0)
		} else {
			res.Registers = append(res.Registers, v)
		}
	}
	return res
}

func fieldLine(f event.Field) string {
	types := map[event.ValueType]string{event.TypeString: "string", event.TypeInt: "int", event.TypeUint: "uint",
		event.TypeFloat: "float", event.TypeBool: "bool", event.TypeBytes: "bytes"}
	return fmt.Sprintf("%s %s %s", f.Key, types[f.Value.Type], f.Value.String())
}

// TestGoldenRegisterMaps runs every testdata/<case>: device.yaml is one
// device's register map (on a tcp bus), tables.txt what the device holds;
// expected.out the decoded fields (sorted), requests.out the coalesced
// requests, or init.err the validation error.
func TestGoldenRegisterMaps(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/device.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, p := range dirs {
		dir := filepath.Dir(p)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			dc := DefaultDeviceConfig()
			dc.Name, dc.Bus, dc.Unit = "dev", "bus", 1
			require.NoError(t, yaml.Unmarshal(b, &dc))
			bc := DefaultBusConfig()
			bc.Name, bc.Type, bc.Address = "bus", BusTCP, "127.0.0.1:502"
			cfg := Config{Buses: []BusConfig{bc}, Devices: []DeviceConfig{dc}}
			err = cfg.Validate()
			if want, rerr := os.ReadFile(filepath.Join(dir, "init.err")); rerr == nil {
				require.Error(t, err)
				require.Contains(t, err.Error(), strings.TrimSpace(string(want)))
				return
			}
			require.NoError(t, err)

			pl := plan(dc)
			if want, rerr := os.ReadFile(filepath.Join(dir, "requests.out")); rerr == nil {
				var got []string
				for _, p := range pl {
					require.NoError(t, p.req.Validate())
					got = append(got, p.req.String())
				}
				require.Equal(t, strings.TrimSpace(string(want)), strings.Join(got, "\n"), "coalesced requests")
			}
			tb := loadMemory(t, filepath.Join(dir, "tables.txt"))
			var fields []event.Field
			for _, p := range pl {
				res := tb.answer(p.req)
				for _, it := range p.items {
					reg := dc.Registers[it.reg]
					n := reg.count()
					if reg.isBit() {
						fields = reg.appendFields(fields, nil, res.Bits[it.offset:it.offset+n])
					} else {
						fields = reg.appendFields(fields, res.Registers[it.offset:it.offset+n], nil)
					}
				}
			}
			var got []string
			for _, f := range fields {
				got = append(got, fieldLine(f))
			}
			sort.Strings(got)
			want, err := os.ReadFile(filepath.Join(dir, "expected.out"))
			require.NoError(t, err)
			require.Equal(t, strings.TrimSpace(string(want)), strings.Join(got, "\n"))
		})
	}
}
