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
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/serialport/serialtest"
)

func typedServer(t *testing.T) string {
	t.Helper()
	return buildPeer(t, "typed_server")
}

// buildPeer compiles testdata/interop/NAME.c with libmodbus into the
// test's temporary directory.
func buildPeer(t *testing.T, name string) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("cc is not installed (scripts/deps.sh installs gcc)")
	}
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "libmodbus").Output()
	if err != nil {
		t.Skip("libmodbus-dev (or pkg-config) is not installed (scripts/deps.sh installs them)")
	}
	src, err := filepath.Abs("testdata/interop/" + name + ".c")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), name)
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

// startSteered runs testdata/interop/exception_server.c until the test
// ends; send gives it a command and waits for its "ok".
func startSteered(t *testing.T, args ...string) (send func(cmd string)) {
	bin := buildPeer(t, "exception_server")
	cmd := exec.Command(bin, args...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "server ended: %s", stderr.String())
			require.Equal(t, want, l)
		case <-time.After(10 * time.Second):
			t.Fatalf("server did not say %q: %s", want, stderr.String())
		}
	}
	expect("ready")
	return func(c string) {
		_, err := io.WriteString(stdin, c+"\n")
		require.NoError(t, err)
		expect("ok")
	}
}

// checkExceptions polls a libmodbus server whose answers the test steers:
// a register beyond its map is refused by libmodbus itself (ILLEGAL DATA
// ADDRESS), another is answered SERVER DEVICE BUSY on command. The other
// registers are recorded every poll; busy is waited out within the poll;
// a lasting exception is recorded when it starts and when it clears.
func checkExceptions(t *testing.T, bus BusConfig, unit int, send func(string)) {
	d := dev("meter", bus.Name, unit, 500*time.Millisecond,
		RegisterConfig{Name: "flow", Register: "holding", Address: 0},
		RegisterConfig{Name: "level", Register: "holding", Address: 10},
		RegisterConfig{Name: "gone", Register: "holding", Address: 200})
	// Busy is asked again after 10, 20, 40, 80 and 160 ms: two refusals
	// are waited out with room for a slow machine, a lasting one is not.
	d.BusyBackoff, d.BusyTimeout = 10*time.Millisecond, 400*time.Millisecond
	send("busy 10 2") // two refusals, then data: waited out within each poll
	p, err := New(Config{Buses: []BusConfig{bus}, Devices: []DeviceConfig{d}}, nil, nil)
	require.NoError(t, err)
	out := &sink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx, out) }()
	defer func() { cancel(); <-done }()
	src := "modbus:meter"
	polls := func() uint64 { return p.Status().Buses[0].Devices[0].Counters.Polls }
	waitPolls := func(n uint64) {
		from := polls()
		require.Eventually(t, func() bool { return polls() >= from+n }, 20*time.Second, 10*time.Millisecond)
	}
	waitPolls(3)
	for _, e := range out.values(src) {
		v, _ := field(e, "flow")
		require.Equal(t, uint64(1000), v.Num)
		v, _ = field(e, "level")
		require.Equal(t, uint64(1010), v.Num, "busy twice, then answered within the poll")
		_, ok := field(e, "gone")
		require.False(t, ok)
	}
	exc := out.byQuality(src, "exception")
	require.Len(t, exc, 1, "only the register libmodbus refuses")
	require.Equal(t, "ILLEGAL DATA ADDRESS", str(exc[0], "exception"))
	require.Equal(t, "gone", str(exc[0], "registers"))
	c := p.Status().Buses[0].Devices[0].Counters
	require.GreaterOrEqual(t, c.Retries, 2*c.Polls-2, "busy asked again")

	send("busy 10 1000000") // busy beyond busy_timeout: an exception that lasts
	waitPolls(4)
	send("busy 10 0")
	waitPolls(2)
	cancel()
	<-done
	exc = out.byQuality(src, "exception")
	require.Len(t, exc, 2, "one more: busy, once however many polls it lasted")
	require.Equal(t, "SERVER DEVICE BUSY", str(exc[1], "exception"))
	require.Equal(t, "level", str(exc[1], "registers"))
	cleared := out.byQuality(src, "ok")
	require.Len(t, cleared, 1)
	require.Equal(t, "SERVER DEVICE BUSY", str(cleared[0], "cleared"))
	v, _ := field(cleared[0], "exception_polls")
	require.GreaterOrEqual(t, v.Num, uint64(2))
	rs := out.values(src)
	v, _ = field(rs[len(rs)-1], "level")
	require.Equal(t, uint64(1010), v.Num, "answered again")
	want := event.ChecksumOK
	if bus.Type == BusTCP {
		want = event.ChecksumNone
	}
	require.Equal(t, want, exc[0].Checksum)
	t.Logf("%s: %+v", bus.Type, p.Status().Buses[0].Devices[0].Counters)
}

func TestInteropExceptionsRTU(t *testing.T) {
	a, b := serialtest.PTYPair(t)
	send := startSteered(t, "rtu", b, "115200", "7")
	bus := DefaultBusConfig()
	bus.Name, bus.Serial.Device, bus.Serial.Baud = "pty", a, 115200
	checkExceptions(t, bus, 7, send)
}

func TestInteropExceptionsTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	send := startSteered(t, "tcp", strconv.Itoa(port))
	bus := DefaultBusConfig()
	bus.Name, bus.Type, bus.Address = "lm", BusTCP, "127.0.0.1:"+strconv.Itoa(port)
	checkExceptions(t, bus, 1, send)
}
