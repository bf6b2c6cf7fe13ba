package poll

// Interop with libmodbus (issue 5's acceptance: "all data types and byte
// orders decode to the values the server holds"): a libmodbus server
// (testdata/interop/typed_server.c) lays out a value of every data type in
// every byte and word order, from the C compiler's own representations, and
// announces its register map; our poller reads
// it over a socat pty pair (RTU) and over TCP and must decode exactly the
// values. Needs socat, cc and libmodbus-dev (scripts/deps.sh); skips
// with the reason otherwise.

import (
	"bufio"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/sensors/serialport/serialtest"
)

func typedServer(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("cc is not installed (scripts/deps.sh installs gcc)")
	}
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "libmodbus").Output()
	if err != nil {
		t.Skip("libmodbus-dev (or pkg-config) is not installed (scripts/deps.sh installs them)")
	}
	src, err := filepath.Abs("testdata/interop/typed_server.c")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "typed_server")
	out, err := exec.Command(cc, append([]string{"-O1", "-o", bin, src}, strings.Fields(string(flags))...)...).CombinedOutput()
	require.NoError(t, err, "cc: %s", out)
	return bin
}

// startTyped runs the server until the test ends and returns its map.
func startTyped(t *testing.T, bin string, args ...string) []RegisterConfig {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	var regs []RegisterConfig
	sc := bufio.NewScanner(stdout)
	ready := make(chan bool, 1)
	go func() {
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 1 && f[0] == "ready" {
				ready <- true
				break
			}
			if len(f) != 7 || f[0] != "map" {
				continue
			}
			addr, _ := strconv.Atoi(f[3])
			length, _ := strconv.Atoi(f[6])
			r := RegisterConfig{Name: f[1], Register: f[2], Address: addr, Type: f[4], Order: f[5], Length: length}
			if r.Type == "bitfield" {
				r.Bits = []BitConfig{{Bit: 0, Name: "running"}, {Bit: 3, Name: "fault"}, {Bit: 14, Name: "local"}, {Bit: 15, Name: "remote"}}
			}
			regs = append(regs, r)
		}
		ready <- false
		for sc.Scan() {
		}
	}()
	select {
	case ok := <-ready:
		require.True(t, ok, "server did not start: %s", stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("server not ready: %s", stderr.String())
	}
	require.Len(t, regs, 4*8+2+1+1+3, "entries announced")
	return regs
}

// typedWant is what the server holds, by data type (and name for bools).
func typedWant(r RegisterConfig) map[string]string {
	v := map[string]string{
		"int16": "-1234", "uint16": "48879", "int32": "-123456789", "uint32": "3735928559",
		"int64": "-1234567890123456789", "uint64": "18364758544493064720",
		"float32": "-273.15", "float64": "6.02214076e+23", "string": "PUMP-3",
	}[r.Type]
	switch r.Type {
	case "bitfield":
		return map[string]string{r.Name: "32777", r.Name + ".running": "true", r.Name + ".fault": "true",
			r.Name + ".local": "false", r.Name + ".remote": "true"}
	case "bool":
		return map[string]string{r.Name: strconv.FormatBool(r.Name != "discrete6")}
	}
	return map[string]string{r.Name: v}
}

func checkTyped(t *testing.T, bus BusConfig, unit int, regs []RegisterConfig, coalesce string) {
	d := DefaultDeviceConfig()
	d.Name, d.Bus, d.Unit, d.Registers, d.Coalesce, d.MaxGap = "typed", bus.Name, unit, regs, coalesce, 2
	p, err := New(Config{Buses: []BusConfig{bus}, Devices: []DeviceConfig{d}}, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := p.ReadDirect(ctx, "typed")
	require.NoError(t, err)
	require.Empty(t, r.Error)
	got := map[string]string{}
	for _, v := range r.Values {
		got[v.Name] = v.Text
	}
	want := map[string]string{}
	for _, reg := range regs {
		for k, v := range typedWant(reg) {
			want[k] = v
		}
	}
	require.Equal(t, want, got)
	t.Logf("%s, coalesce %s: %d values in %d requests", bus.Type, coalesce, len(got), len(r.Attempts))
}

func TestInteropTypedRTU(t *testing.T) {
	bin := typedServer(t)
	a, b := serialtest.PTYPair(t)
	regs := startTyped(t, bin, "rtu", b, "115200", "7")
	bus := DefaultBusConfig()
	bus.Name, bus.Serial.Device, bus.Serial.Baud = "pty", a, 115200
	checkTyped(t, bus, 7, regs, CoalesceOn)
	checkTyped(t, bus, 7, regs, CoalesceOff)
}

func TestInteropTypedTCP(t *testing.T) {
	bin := typedServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	regs := startTyped(t, bin, "tcp", strconv.Itoa(port))
	bus := DefaultBusConfig()
	bus.Name, bus.Type, bus.Address = "lm", BusTCP, "127.0.0.1:"+strconv.Itoa(port)
	checkTyped(t, bus, 1, regs, CoalesceOn)
}
