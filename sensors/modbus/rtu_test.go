package modbus_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/sensors/modbus"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
)

// frameCase is one line of testdata/rtu_responses.txt.
type frameCase struct {
	name string
	unit byte
	req  modbus.Request
	resp []byte
	want string
}

func parseRequestSpec(t *testing.T, spec string) modbus.Request {
	t.Helper()
	var n []int
	for _, f := range strings.Fields(spec) {
		v, err := strconv.Atoi(f)
		require.NoError(t, err, "request spec %q", spec)
		n = append(n, v)
	}
	require.GreaterOrEqual(t, len(n), 3, "request spec %q", spec)
	r := modbus.Request{Function: modbus.FunctionCode(n[0]), Address: uint16(n[1])}
	switch r.Function {
	case modbus.FuncWriteSingleCoil:
		r.Coil = n[2] != 0
	case modbus.FuncWriteSingleRegister:
		r.Value = uint16(n[2])
	case modbus.FuncWriteMultipleCoils:
		r.Coils = make([]bool, n[2])
	case modbus.FuncWriteMultipleRegisters:
		r.Registers = make([]uint16, n[2])
	case modbus.FuncReadWriteMultipleRegisters:
		require.Len(t, n, 4, "request spec %q", spec)
		r.Quantity, r.WriteAddress, r.Registers = uint16(n[2]), uint16(n[3]), []uint16{0}
	default:
		r.Quantity = uint16(n[2])
	}
	return r
}

func loadFrameCases(t *testing.T, path string) []frameCase {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var cases []frameCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Split(line, "|")
		require.Len(t, fs, 5, "line %q", line)
		for i := range fs {
			fs[i] = strings.TrimSpace(fs[i])
		}
		unit, err := strconv.Atoi(fs[1])
		require.NoError(t, err)
		raw, err := hex.DecodeString(strings.ReplaceAll(fs[3], " ", ""))
		require.NoError(t, err, "line %q", line)
		cases = append(cases, frameCase{name: fs[0], unit: byte(unit), req: parseRequestSpec(t, fs[2]), resp: raw, want: fs[4]})
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, cases)
	return cases
}

var kindNames = map[string]modbus.FrameErrorKind{
	"crc": modbus.FrameCRC, "short": modbus.FrameShort, "overlong": modbus.FrameOverlong,
	"wrong_unit": modbus.FrameWrongUnit, "wrong_function": modbus.FrameWrongFunction,
	"bad_length": modbus.FrameBadLength, "mismatch": modbus.FrameMismatch,
}

// checkOutcome compares a transaction's result with a case's expectation.
func checkOutcome(t *testing.T, want string, res *modbus.Response, err error) {
	t.Helper()
	verb, arg, _ := strings.Cut(want, " ")
	switch verb {
	case "ok":
		require.NoError(t, err)
		var got string
		if res.Bits != nil {
			for _, b := range res.Bits {
				got += map[bool]string{false: "0", true: "1"}[b]
			}
		} else {
			var s []string
			for _, v := range res.Registers {
				s = append(s, strconv.Itoa(int(v)))
			}
			got = strings.Join(s, " ")
		}
		require.Equal(t, arg, got)
	case "exception":
		var ex *modbus.ExceptionError
		require.ErrorAs(t, err, &ex)
		require.Equal(t, arg, ex.Name())
		require.Contains(t, err.Error(), arg)
	case "timeout":
		require.ErrorIs(t, err, modbus.ErrTimeout)
	default:
		kind, ok := kindNames[verb]
		require.True(t, ok, "unknown expectation %q", want)
		var fe *modbus.FrameError
		require.ErrorAs(t, err, &fe)
		require.Equal(t, kind, fe.Kind, "error %v", err)
		require.NotEmpty(t, fe.Raw, "a frame error keeps the raw bytes")
		require.Nil(t, res.Registers, "a bad frame must not become data")
		require.Nil(t, res.Bits, "a bad frame must not become data")
	}
}

// fakeDevice answers every request read from c with resp, as captured.
func fakeDevice(t *testing.T, c net.Conn, resp []byte) {
	t.Helper()
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if len(resp) > 0 {
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		}
	}()
}

func TestRTUResponses(t *testing.T) {
	for _, tc := range loadFrameCases(t, "testdata/rtu_responses.txt") {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			fakeDevice(t, b, tc.resp)
			m, err := modbus.NewRTU(a, modbus.RTUConfig{Name: "pipe", Baud: 115200, Timeout: 50 * time.Millisecond})
			require.NoError(t, err)
			var res modbus.Response
			err = m.Do(context.Background(), tc.unit, &tc.req, &res)
			checkOutcome(t, tc.want, &res, err)
			if err != nil {
				require.Contains(t, err.Error(), "on pipe unit "+strconv.Itoa(int(tc.unit)))
			}
			// The counters say the same.
			st := m.Stats()
			require.Equal(t, uint64(1), st.Requests)
			want := map[string]uint64{
				"crc": st.CRCErrors, "short": st.ShortFrames, "overlong": st.OverlongFrames,
				"wrong_unit": st.WrongUnit, "wrong_function": st.WrongFunction, "timeout": st.Timeouts,
				"exception": st.Exceptions, "bad_length": st.OtherFrame, "mismatch": st.OtherFrame,
			}
			verb, _, _ := strings.Cut(tc.want, " ")
			if verb == "ok" {
				require.Equal(t, uint64(1), st.Responses)
				require.Zero(t, st.FrameErrors())
			} else {
				require.Equal(t, uint64(1), want[verb], "stats %+v", st)
			}
		})
	}
}

// TestDecodeRTUFrames runs the same captured frames through the pure
// decoder, without timing.
func TestDecodeRTUFrames(t *testing.T) {
	for _, tc := range loadFrameCases(t, "testdata/rtu_responses.txt") {
		if tc.want == "timeout" || strings.HasPrefix(tc.want, "short") {
			continue // a matter of timing on a line, not of the frame alone
		}
		t.Run(tc.name, func(t *testing.T) {
			var res modbus.Response
			pdu, err := modbus.DecodeRTU(tc.unit, &tc.req, tc.resp)
			if err == nil {
				err = modbus.ParseResponse(&tc.req, pdu, &res)
			}
			checkOutcome(t, tc.want, &res, err)
		})
	}
}

func TestRTUErrorMessage(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	// The spec example's answer with one bit flipped.
	fakeDevice(t, b, []byte{0x07, 0x03, 0x04, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00})
	m, err := modbus.NewRTU(a, modbus.RTUConfig{Name: "/dev/ttyS1", Baud: 19200, Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	_, err = m.ReadHoldingRegisters(context.Background(), 7, 0, 2)
	require.ErrorContains(t, err, "modbus: read holding 40001 (addr 0, qty 2) on /dev/ttyS1 unit 7: crc mismatch")
}

// bufferedPipe returns two ends of a loopback TCP connection: unlike
// net.Pipe it buffers like a serial line, so a late answer waits for the
// reader instead of blocking the writer.
func bufferedPipe(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	b := <-ch
	require.NotNil(t, b)
	return a, b
}

func newRTUPair(t *testing.T, cfg modbus.RTUConfig) (*modbus.Master, *modbustest.Slave, net.Conn) {
	t.Helper()
	a, b := bufferedPipe(t)
	s := modbustest.New(5, 300)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.ServeRTU(ctx, b) }()
	t.Cleanup(func() { cancel(); a.Close(); b.Close(); <-done })
	if cfg.Name == "" {
		cfg.Name = "pipe"
	}
	if cfg.Baud == 0 {
		cfg.Baud = 115200
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 200 * time.Millisecond
	}
	m, err := modbus.NewRTU(a, cfg)
	require.NoError(t, err)
	return m, s, a
}

// exerciseMaster runs every function code against a modbustest slave with
// unit 5 and the initial contents of modbustest.New.
func exerciseMaster(t *testing.T, m *modbus.Master, s *modbustest.Slave) {
	ctx := context.Background()
	regs, err := m.ReadHoldingRegisters(ctx, 5, 10, 125)
	require.NoError(t, err)
	require.Len(t, regs, 125)
	for i, v := range regs {
		require.Equal(t, uint16(10+i), v)
	}
	in, err := m.ReadInputRegisters(ctx, 5, 3, 2)
	require.NoError(t, err)
	require.Equal(t, []uint16{0x8003, 0x8004}, in)
	di, err := m.ReadDiscreteInputs(ctx, 5, 0, 7)
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, false, true, false, false, true}, di)

	require.NoError(t, m.WriteSingleCoil(ctx, 5, 9, true))
	require.NoError(t, m.WriteMultipleCoils(ctx, 5, 20, []bool{true, false, true, true, false, false, false, false, true}))
	coils, err := m.ReadCoils(ctx, 5, 8, 22)
	require.NoError(t, err)
	want := make([]bool, 22)
	want[1], want[12], want[14], want[15], want[20] = true, true, true, true, true
	require.Equal(t, want, coils)
	require.NoError(t, m.WriteSingleCoil(ctx, 5, 9, false))

	require.NoError(t, m.WriteSingleRegister(ctx, 5, 1, 0xBEEF))
	require.NoError(t, m.WriteMultipleRegisters(ctx, 5, 100, []uint16{1, 2, 3}))
	rw, err := m.ReadWriteMultipleRegisters(ctx, 5, 0, 3, 2, []uint16{0xAAAA})
	require.NoError(t, err)
	require.Equal(t, []uint16{0, 0xBEEF, 0xAAAA}, rw, "function 23 writes before it reads")
	s.Lock()
	require.Equal(t, []uint16{1, 2, 3}, s.Holding[100:103])
	require.True(t, s.Coils[20] && !s.Coils[21] && s.Coils[28] && !s.Coils[9])
	s.Unlock()

	_, err = m.ReadHoldingRegisters(ctx, 5, 299, 2)
	var ex *modbus.ExceptionError
	require.ErrorAs(t, err, &ex)
	require.Equal(t, modbus.IllegalDataAddress, ex.Code)
	require.Equal(t, modbus.FuncReadHoldingRegisters, ex.Function)
	require.ErrorContains(t, err, "ILLEGAL DATA ADDRESS")

	_, err = m.ReadHoldingRegisters(ctx, 5, 0, 126)
	require.ErrorContains(t, err, "quantity 126 out of range", "invalid requests never reach the line")
}

func TestRTUMasterAgainstSlave(t *testing.T) {
	m, s, _ := newRTUPair(t, modbus.RTUConfig{})
	exerciseMaster(t, m, s)
	st := m.Stats()
	require.Equal(t, st.Requests, st.Responses, "%+v", st)
	require.Equal(t, uint64(1), st.Exceptions)
	require.Zero(t, st.FrameErrors())
}

func TestRTUTimeoutAndRetries(t *testing.T) {
	m, s, _ := newRTUPair(t, modbus.RTUConfig{Timeout: 30 * time.Millisecond, Retries: 2})
	var calls atomic.Int32
	s.SetHook(func(pdu []byte) []byte {
		if calls.Add(1) <= 2 {
			return []byte{} // the first two attempts go unanswered
		}
		return nil
	})
	var res modbus.Response
	err := m.Do(context.Background(), 5, &modbus.Request{Function: modbus.FuncReadHoldingRegisters, Address: 4, Quantity: 1}, &res)
	require.NoError(t, err)
	require.Equal(t, []uint16{4}, res.Registers)
	require.Equal(t, 3, res.Attempts)
	require.Len(t, res.Failures, 2, "the failed attempts are reported")
	for _, f := range res.Failures {
		require.ErrorIs(t, f, modbus.ErrTimeout)
	}
	st := m.Stats()
	require.Equal(t, uint64(2), st.Timeouts)
	require.Equal(t, uint64(2), st.Retries)
	require.Equal(t, uint64(3), st.Requests)
	require.False(t, res.Sent.IsZero())
	require.True(t, res.Received.After(res.Sent))
	require.True(t, res.Midpoint().After(res.Sent) && res.Midpoint().Before(res.Received))

	// Bounded: with every attempt unanswered, three attempts then an error.
	calls.Store(-100)
	start := time.Now()
	_, err = m.ReadHoldingRegisters(context.Background(), 5, 4, 1)
	require.ErrorIs(t, err, modbus.ErrTimeout)
	require.Less(t, time.Since(start), 500*time.Millisecond)
	require.Equal(t, uint64(5), m.Stats().Timeouts)

	// Exceptions are answers, not failures: never retried.
	s.SetHook(func(pdu []byte) []byte { return []byte{pdu[0] | 0x80, 6} })
	before := m.Stats().Requests
	_, err = m.ReadHoldingRegisters(context.Background(), 5, 4, 1)
	require.ErrorContains(t, err, "SERVER DEVICE BUSY")
	require.Equal(t, before+1, m.Stats().Requests)
}

func TestRTUContextCancel(t *testing.T) {
	m, s, _ := newRTUPair(t, modbus.RTUConfig{Timeout: 5 * time.Second})
	s.SetHook(func([]byte) []byte { return []byte{} })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := m.ReadCoils(ctx, 5, 0, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), time.Second)
}

// recordingPort timestamps every write and read, to check the master's
// line discipline.
type recordingPort struct {
	net.Conn
	mu     sync.Mutex
	writes []time.Time
	reads  []time.Time
	active atomic.Int32
	max    atomic.Int32
}

func (p *recordingPort) Write(b []byte) (int, error) {
	if n := p.active.Add(1); n > p.max.Load() {
		p.max.Store(n)
	}
	p.mu.Lock()
	p.writes = append(p.writes, time.Now())
	p.mu.Unlock()
	return p.Conn.Write(b)
}

func (p *recordingPort) Read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	if n > 0 {
		p.mu.Lock()
		p.reads = append(p.reads, time.Now())
		p.mu.Unlock()
		p.active.Add(-1)
	}
	return n, err
}

// TestRTUOneAtATimeWithSilence has many goroutines share one RTU master:
// requests never overlap and each is sent at least the inter-frame silence
// after the previous answer.
func TestRTUOneAtATimeWithSilence(t *testing.T) {
	a, b := bufferedPipe(t)
	defer a.Close()
	defer b.Close()
	s := modbustest.New(5, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.ServeRTU(ctx, b) }()
	port := &recordingPort{Conn: a}
	const baud = 9600 // silence 3.5 * 11 / 9600 = 4.01 ms
	m, err := modbus.NewRTU(port, modbus.RTUConfig{Name: "pipe", Baud: baud, Timeout: time.Second})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5 {
				regs, err := m.ReadHoldingRegisters(ctx, 5, uint16(g*10+i), 1)
				if err != nil || regs[0] != uint16(g*10+i) {
					t.Errorf("goroutine %d read %d: %v %v", g, i, regs, err)
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), port.max.Load(), "requests overlapped")
	port.mu.Lock()
	defer port.mu.Unlock()
	require.Len(t, port.writes, 40)
	silence := 3500 * time.Microsecond * 11 / baud * 1000
	for i := 1; i < len(port.writes); i++ {
		// The last read before this write ended the previous answer.
		j, _ := slices.BinarySearchFunc(port.reads, port.writes[i], func(a, b time.Time) int { return a.Compare(b) })
		require.Positive(t, j)
		gap := port.writes[i].Sub(port.reads[j-1])
		require.GreaterOrEqual(t, gap, silence, "write %d only %s after the previous answer", i, gap)
	}
	require.Equal(t, uint64(40), m.Stats().Responses)
}

// TestRTUResyncAfterLateAnswer: an answer that comes after the timeout
// must not be taken as the answer to the next request of the same shape;
// the master drains the line after a failed transaction. (RTU has no
// transaction ids: an answer later than the drain is indistinguishable from
// a fresh one, which is why timeouts must exceed the slowest device.)
func TestRTUResyncAfterLateAnswer(t *testing.T) {
	m, s, _ := newRTUPair(t, modbus.RTUConfig{Timeout: 40 * time.Millisecond})
	var slow atomic.Bool
	slow.Store(true)
	answered := make(chan struct{})
	s.SetHook(func([]byte) []byte {
		if slow.Swap(false) {
			time.Sleep(80 * time.Millisecond)
			defer close(answered)
		}
		return nil
	})
	_, err := m.ReadHoldingRegisters(context.Background(), 5, 1, 1)
	require.ErrorIs(t, err, modbus.ErrTimeout)
	<-answered
	time.Sleep(20 * time.Millisecond) // the late answer (value 1) is now waiting on the line
	regs, err := m.ReadHoldingRegisters(context.Background(), 5, 2, 1)
	require.NoError(t, err)
	require.Equal(t, []uint16{2}, regs, "the late answer was taken for this one")
	st := m.Stats()
	require.Equal(t, uint64(1), st.Timeouts)
	require.Equal(t, uint64(1), st.Responses)
}

func TestRTUBroadcast(t *testing.T) {
	m, s, _ := newRTUPair(t, modbus.RTUConfig{BroadcastDelay: 5 * time.Millisecond})
	require.NoError(t, m.WriteSingleRegister(context.Background(), 0, 7, 77))
	_, err := m.ReadHoldingRegisters(context.Background(), 0, 0, 1)
	require.ErrorContains(t, err, "broadcast")
	// The next transaction sees the broadcast's effect.
	regs, err := m.ReadHoldingRegisters(context.Background(), 5, 7, 1)
	require.NoError(t, err)
	require.Equal(t, []uint16{77}, regs)
	_ = s
}

func TestRTUConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  modbus.RTUConfig
		want string
	}{
		{modbus.RTUConfig{Baud: 9600}, ""},
		{modbus.RTUConfig{Silence: -1}, ""},
		{modbus.RTUConfig{}, "baud:"},
		{modbus.RTUConfig{Baud: -1}, "baud:"},
		{modbus.RTUConfig{Baud: 9600, CharBits: 3}, "char_bits:"},
		{modbus.RTUConfig{Baud: 9600, Retries: 11}, "retries:"},
		{modbus.RTUConfig{Baud: 9600, Timeout: -time.Second}, "timeout:"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" {
			require.NoError(t, err, "%+v", tt.cfg)
		} else {
			require.ErrorContains(t, err, tt.want, "%+v", tt.cfg)
		}
	}
}

var _ = errors.New
