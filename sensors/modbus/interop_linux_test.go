package modbus_test

// Interop with independent implementations (issue 5's acceptance):
// libmodbus as the server for our master over a real tty (a socat pty
// pair) and over TCP, mbpoll as the master against our test slave, and a
// relay that flips bits in the answers. These need socat, cc, libmodbus-dev
// (pkg-config) and mbpoll, which scripts/deps.sh installs; each test skips
// with the reason when one is missing.

import (
	"bufio"
	"context"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/sensors/modbus"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/sensors/serialport"
	"github.com/weirgw/weir/sensors/serialport/serialtest"
)

const interopBaud = 115200

// libmodbusServer compiles testdata/interop/libmodbus_server.c into the
// test's temporary directory.
func libmodbusServer(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("cc is not installed (scripts/deps.sh installs gcc): cannot build the libmodbus test server")
	}
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "libmodbus").Output()
	if err != nil {
		t.Skip("libmodbus-dev (or pkg-config) is not installed (scripts/deps.sh installs them): no libmodbus test server")
	}
	src, err := filepath.Abs("testdata/interop/libmodbus_server.c")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "libmodbus_server")
	args := append([]string{"-O1", "-o", bin, src}, strings.Fields(string(flags))...)
	out, err := exec.Command(cc, args...).CombinedOutput()
	require.NoError(t, err, "cc: %s", out)
	return bin
}

// start runs a peer until the test ends and waits for it to print "ready".
func start(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("%s stderr: %s", filepath.Base(name), stderr.String())
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := sc.Scan() && sc.Text() == "ready"
		ready <- ok
		for sc.Scan() {
		}
	}()
	select {
	case ok := <-ready:
		require.True(t, ok, "%s did not start: %s", name, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("%s not ready after 10s: %s", name, stderr.String())
	}
}

func openLine(t *testing.T, dev string) *serialport.Port {
	t.Helper()
	cfg := serialport.DefaultConfig()
	cfg.Device, cfg.Baud = dev, interopBaud
	p, err := serialport.Open(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The tables of libmodbus_server.c.
func lmCoil(i int) bool       { return i%5 == 0 }
func lmDiscrete(i int) bool   { return i%7 < 3 }
func lmHolding(i int) uint16  { return uint16(i*3 + 1) }
func lmInput(i int) uint16    { return uint16(0xF000 ^ i) }
func lmUnitRTU() byte         { return 7 }
func lmSize() int             { return 500 }
func chunks(qty, max int) int { return (qty + max - 1) / max }

// checkAgainstLibmodbus reads every table of the libmodbus server in full,
// writes with every write function, reads the writes back and provokes an
// exception.
func checkAgainstLibmodbus(t *testing.T, m *modbus.Master, unit byte) {
	ctx := context.Background()
	n := lmSize()
	for c := range chunks(n, modbus.MaxReadRegisters) {
		addr := c * modbus.MaxReadRegisters
		qty := min(modbus.MaxReadRegisters, n-addr)
		regs, err := m.ReadHoldingRegisters(ctx, unit, uint16(addr), uint16(qty))
		require.NoError(t, err)
		for i, v := range regs {
			require.Equal(t, lmHolding(addr+i), v, "holding %d", addr+i)
		}
		in, err := m.ReadInputRegisters(ctx, unit, uint16(addr), uint16(qty))
		require.NoError(t, err)
		for i, v := range in {
			require.Equal(t, lmInput(addr+i), v, "input %d", addr+i)
		}
	}
	coils, err := m.ReadCoils(ctx, unit, 0, uint16(n))
	require.NoError(t, err)
	di, err := m.ReadDiscreteInputs(ctx, unit, 0, uint16(n))
	require.NoError(t, err)
	for i := range n {
		require.Equal(t, lmCoil(i), coils[i], "coil %d", i)
		require.Equal(t, lmDiscrete(i), di[i], "discrete %d", i)
	}

	require.NoError(t, m.WriteSingleCoil(ctx, unit, 1, true))
	require.NoError(t, m.WriteMultipleCoils(ctx, unit, 100, []bool{false, true, true, false, true, true, true, false, false, true}))
	require.NoError(t, m.WriteSingleRegister(ctx, unit, 2, 0xCAFE))
	require.NoError(t, m.WriteMultipleRegisters(ctx, unit, 200, []uint16{0, 0xFFFF, 0x8000, 12345}))
	rw, err := m.ReadWriteMultipleRegisters(ctx, unit, 199, 6, 203, []uint16{0x1234, 0x5678})
	require.NoError(t, err)
	require.Equal(t, []uint16{lmHolding(199), 0, 0xFFFF, 0x8000, 0x1234, 0x5678}, rw)
	regs, err := m.ReadHoldingRegisters(ctx, unit, 0, 4)
	require.NoError(t, err)
	require.Equal(t, []uint16{lmHolding(0), lmHolding(1), 0xCAFE, lmHolding(3)}, regs)
	coils, err = m.ReadCoils(ctx, unit, 0, 2)
	require.NoError(t, err)
	require.Equal(t, []bool{true, true}, coils)
	coils, err = m.ReadCoils(ctx, unit, 100, 10)
	require.NoError(t, err)
	require.Equal(t, []bool{false, true, true, false, true, true, true, false, false, true}, coils)

	for _, req := range []modbus.Request{
		{Function: modbus.FuncReadHoldingRegisters, Address: uint16(n - 1), Quantity: 2},
		{Function: modbus.FuncReadCoils, Address: uint16(n), Quantity: 1},
		{Function: modbus.FuncWriteSingleRegister, Address: uint16(n), Value: 1},
	} {
		var res modbus.Response
		err := m.Do(ctx, unit, &req, &res)
		var ex *modbus.ExceptionError
		require.ErrorAs(t, err, &ex, "%s", &req)
		require.Equal(t, "ILLEGAL DATA ADDRESS", ex.Name())
		require.ErrorContains(t, err, "ILLEGAL DATA ADDRESS")
	}
	st := m.Stats()
	require.Equal(t, uint64(3), st.Exceptions, "%+v", st)
	require.Zero(t, st.FrameErrors(), "%+v", st)
	require.Zero(t, st.Timeouts, "%+v", st)
}

func TestInteropRTUMasterLibmodbusServer(t *testing.T) {
	bin := libmodbusServer(t)
	a, b := serialtest.PTYPair(t)
	start(t, bin, "rtu", b, strconv.Itoa(interopBaud), strconv.Itoa(int(lmUnitRTU())))
	line := openLine(t, a) // both masters below share it: the port locks the line
	m, err := modbus.NewRTU(line, modbus.RTUConfig{Name: a, Baud: interopBaud, Timeout: time.Second})
	require.NoError(t, err)
	checkAgainstLibmodbus(t, m, lmUnitRTU())

	// A unit that is not on the bus: libmodbus stays silent, as a device
	// does, and the master times out.
	m2, err := modbus.NewRTU(line, modbus.RTUConfig{Name: a, Baud: interopBaud, Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	_, err = m2.ReadHoldingRegisters(context.Background(), 9, 0, 1)
	require.ErrorIs(t, err, modbus.ErrTimeout)
}

func TestInteropTCPMasterLibmodbusServer(t *testing.T) {
	bin := libmodbusServer(t)
	for _, inFlight := range []int{1, 4} {
		port := freePort(t) // a fresh server each round: the check writes
		start(t, bin, "tcp", strconv.Itoa(port))
		m, err := modbus.NewTCP(modbus.TCPConfig{Address: "127.0.0.1:" + strconv.Itoa(port), Timeout: time.Second, MaxInFlight: inFlight})
		require.NoError(t, err)
		checkAgainstLibmodbus(t, m, 1)
		// Pipelined: libmodbus answers in order, the master matches ids.
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 25 {
					a := g*100 + i
					regs, err := m.ReadHoldingRegisters(context.Background(), 1, uint16(a), 1)
					if err != nil || regs[0] != lmHolding(a) && a != 2 && (a < 200 || a > 205) {
						t.Errorf("read %d: %v %v", a, regs, err)
						return
					}
				}
			})
		}
		wg.Wait()
		require.NoError(t, m.Close())
	}
}

var mbpollValue = regexp.MustCompile(`(?m)^\[(\d+)\]:\s+(-?\d+)`)

func mbpoll(t *testing.T, args ...string) map[int]int {
	t.Helper()
	path, err := exec.LookPath("mbpoll")
	if err != nil {
		t.Skip("mbpoll is not installed (scripts/deps.sh installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	require.NoError(t, err, "mbpoll %s: %s", strings.Join(args, " "), out)
	vals := map[int]int{}
	for _, m := range mbpollValue.FindAllStringSubmatch(string(out), -1) {
		ref, _ := strconv.Atoi(m[1])
		v, _ := strconv.Atoi(m[2])
		vals[ref] = v
	}
	return vals
}

// checkMbpoll has mbpoll (libmodbus inside) read and write our test slave
// (unit 5, modbustest.New's contents) with the given connection arguments.
func checkMbpoll(t *testing.T, s *modbustest.Slave, conn []string, target string) {
	args := func(extra ...string) []string {
		a := append(append([]string{}, conn...), "-a", "5", "-1", "-o", "2")
		return append(append(a, extra...), target)
	}
	regs := mbpoll(t, args("-t", "4", "-r", "11", "-c", "20")...)
	require.Len(t, regs, 20)
	for i := range 20 {
		require.Equal(t, 10+i, regs[11+i], "holding ref %d", 11+i)
	}
	in := mbpoll(t, args("-t", "3", "-r", "1", "-c", "3")...)
	require.Len(t, in, 3)
	for i := range 3 {
		require.Equal(t, uint16(0x8000+i), uint16(in[1+i]), "input ref %d", 1+i)
	}
	di := mbpoll(t, args("-t", "1", "-r", "1", "-c", "7")...)
	require.Equal(t, map[int]int{1: 1, 2: 0, 3: 0, 4: 1, 5: 0, 6: 0, 7: 1}, di)
	// Writes: mbpoll writes the values given after the target.
	mbpoll(t, append(args("-t", "4", "-r", "51"), "111", "222", "333")...)
	mbpoll(t, append(args("-t", "0", "-r", "3"), "1")...)
	s.Lock()
	require.Equal(t, []uint16{111, 222, 333}, s.Holding[50:53])
	require.True(t, s.Coils[2])
	s.Unlock()
}

func TestInteropMbpollRTUToSlave(t *testing.T) {
	if _, err := exec.LookPath("mbpoll"); err != nil {
		t.Skip("mbpoll is not installed (scripts/deps.sh installs it)")
	}
	a, b := serialtest.PTYPair(t)
	s := modbustest.New(5, 300)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.ServeRTU(ctx, openLine(t, b)) }()
	t.Cleanup(func() { cancel(); <-done })
	checkMbpoll(t, s, []string{"-m", "rtu", "-b", strconv.Itoa(interopBaud), "-P", "even"}, a)
}

func TestInteropMbpollTCPToSlave(t *testing.T) {
	if _, err := exec.LookPath("mbpoll"); err != nil {
		t.Skip("mbpoll is not installed (scripts/deps.sh installs it)")
	}
	s := modbustest.New(5, 300)
	addr := serveTCP(t, s)
	_, port, _ := net.SplitHostPort(addr)
	checkMbpoll(t, s, []string{"-m", "tcp", "-p", port}, "127.0.0.1")
}

// relayFrames copies frames from src to dst, a frame being what arrives
// without a 3 ms gap, and flips one random bit in every nth.
func relayFrames(ctx context.Context, src, dst *serialport.Port, nth int, seed uint64, frames, flipped *atomic.Int64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		n := 0
		_ = src.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		for n < len(buf) {
			k, err := src.Read(buf[n:])
			n += k
			if err != nil {
				break
			}
			_ = src.SetReadDeadline(time.Now().Add(3 * time.Millisecond))
		}
		if n == 0 {
			continue
		}
		f := frames.Add(1)
		if nth > 0 && f%int64(nth) == 0 {
			bit := rng.IntN(8 * n)
			buf[bit/8] ^= 1 << (bit % 8)
			flipped.Add(1)
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// TestInteropBitFlipRelay: master — pty pair — relay — pty pair —
// libmodbus server. The relay flips one random bit in every 4th answer.
// Every corrupted answer is a frame error (CRC, nearly always), none
// becomes a reading, and every reading is what the server holds.
func TestInteropBitFlipRelay(t *testing.T) {
	bin := libmodbusServer(t)
	m1, r1 := serialtest.PTYPair(t)
	r2, s2 := serialtest.PTYPair(t)
	start(t, bin, "rtu", s2, strconv.Itoa(interopBaud), strconv.Itoa(int(lmUnitRTU())))
	pr1, pr2 := openLine(t, r1), openLine(t, r2)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var reqFrames, reqFlipped, respFrames, respFlipped atomic.Int64
	wg.Go(func() { relayFrames(ctx, pr1, pr2, 0, 1, &reqFrames, &reqFlipped) })
	wg.Go(func() { relayFrames(ctx, pr2, pr1, 4, uint64(time.Now().UnixNano()), &respFrames, &respFlipped) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	line := openLine(t, m1) // one master at a time on it: the port locks the line
	m, err := modbus.NewRTU(line, modbus.RTUConfig{Name: m1, Baud: interopBaud, Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 7))
	const total = 200
	var good int
	var kinds = map[modbus.FrameErrorKind]int{}
	for range total {
		addr, qty := rng.IntN(lmSize()-20), 1+rng.IntN(20)
		regs, err := m.ReadHoldingRegisters(context.Background(), lmUnitRTU(), uint16(addr), uint16(qty))
		if err != nil {
			var fe *modbus.FrameError
			require.ErrorAs(t, err, &fe, "only frame errors are expected")
			require.Nil(t, regs)
			kinds[fe.Kind]++
			continue
		}
		good++
		for i, v := range regs {
			require.Equal(t, lmHolding(addr+i), v, "reading of holding %d", addr+i)
		}
	}
	st := m.Stats()
	t.Logf("%d answers relayed, %d corrupted; frame errors by kind %v; stats %+v", respFrames.Load(), respFlipped.Load(), kinds, st)
	require.Equal(t, int64(total), respFrames.Load(), "one answer per request")
	require.Positive(t, respFlipped.Load())
	require.Equal(t, uint64(respFlipped.Load()), st.FrameErrors(), "every corrupted frame counted")
	require.Equal(t, total-int(respFlipped.Load()), good, "every clean frame a reading")
	require.Zero(t, st.Timeouts)
	require.GreaterOrEqual(t, st.CRCErrors, st.FrameErrors()*3/4, "most flips are caught by the CRC")

	// With a retry every poll succeeds, and the damaged frames that the
	// retries made good are still reported, raw bytes and all.
	m2, err := modbus.NewRTU(line, modbus.RTUConfig{Name: m1, Baud: interopBaud, Timeout: 500 * time.Millisecond, Retries: 1})
	require.NoError(t, err)
	flippedBefore := respFlipped.Load()
	var failures int
	var res modbus.Response
	for range 100 {
		addr, qty := rng.IntN(lmSize()-20), 1+rng.IntN(20)
		req := modbus.Request{Function: modbus.FuncReadHoldingRegisters, Address: uint16(addr), Quantity: uint16(qty)}
		require.NoError(t, m2.Do(context.Background(), lmUnitRTU(), &req, &res))
		for i, v := range res.Registers {
			require.Equal(t, lmHolding(addr+i), v, "reading of holding %d", addr+i)
		}
		for _, f := range res.Failures {
			var fe *modbus.FrameError
			require.ErrorAs(t, f, &fe)
			require.NotEmpty(t, fe.Raw)
			if fe.Kind == modbus.FrameCRC {
				require.NotZero(t, modbus.CRC16(fe.Raw), "raw bytes of a crc error fail the crc: % x", fe.Raw)
			}
			failures++
		}
	}
	require.Equal(t, int(respFlipped.Load()-flippedBefore), failures)
	require.Equal(t, uint64(failures), m2.Stats().Retries)
}
