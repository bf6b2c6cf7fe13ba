package modbus_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/sensors/modbus"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
)

func serveTCP(t *testing.T, s *modbustest.Slave) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.ServeTCP(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func TestTCPMasterAgainstSlave(t *testing.T) {
	for _, inFlight := range []int{1, 4} {
		s := modbustest.New(5, 300)
		m, err := modbus.NewTCP(modbus.TCPConfig{Address: serveTCP(t, s), Timeout: time.Second, MaxInFlight: inFlight})
		require.NoError(t, err)
		exerciseMaster(t, m, s)
		st := m.Stats()
		require.Equal(t, st.Requests, st.Responses, "%+v", st)
		require.NoError(t, m.Close())
		_, err = m.ReadCoils(context.Background(), 5, 0, 1)
		require.ErrorIs(t, err, modbus.ErrClosed)
	}
}

// reorderingDevice answers Modbus TCP requests in batches of n, in reverse
// order, and records how many were in flight at most.
func reorderingDevice(t *testing.T, s *modbustest.Slave, n int) (addr string, maxSeen *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	maxSeen = new(atomic.Int32)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					var batch [][]byte
					for len(batch) < n {
						var hdr [7]byte
						_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
						if _, err := io.ReadFull(c, hdr[:]); err != nil {
							var ne net.Error
							if !errors.As(err, &ne) || !ne.Timeout() {
								return
							}
							if len(batch) > 0 {
								break
							}
							continue
						}
						body := make([]byte, binary.BigEndian.Uint16(hdr[4:])-1)
						_ = c.SetReadDeadline(time.Time{})
						if _, err := io.ReadFull(c, body); err != nil {
							return
						}
						resp := s.Handle(body)
						batch = append(batch, modbus.AppendMBAP(nil, binary.BigEndian.Uint16(hdr[:]), hdr[6], resp))
					}
					if int32(len(batch)) > maxSeen.Load() {
						maxSeen.Store(int32(len(batch)))
					}
					for i := len(batch) - 1; i >= 0; i-- {
						if _, err := c.Write(batch[i]); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), maxSeen
}

// TestTCPPipelining: with MaxInFlight 4 the device sees 4 requests at once
// and answers them out of order; each caller still gets its own answer.
func TestTCPPipelining(t *testing.T) {
	s := modbustest.New(1, 1000)
	addr, maxSeen := reorderingDevice(t, s, 4)
	m, err := modbus.NewTCP(modbus.TCPConfig{Address: addr, Timeout: 2 * time.Second, MaxInFlight: 4})
	require.NoError(t, err)
	defer m.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				a := uint16(g*100 + i)
				regs, err := m.ReadHoldingRegisters(context.Background(), 1, a, 2)
				if err != nil || regs[0] != a || regs[1] != a+1 {
					t.Errorf("read %d: %v %v", a, regs, err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(4), maxSeen.Load(), "requests were not pipelined")
	st := m.Stats()
	require.Equal(t, uint64(160), st.Responses, "%+v", st)
}

func TestTCPTimeoutAndLateAnswer(t *testing.T) {
	s := modbustest.New(1, 100)
	var slow atomic.Bool
	slow.Store(true)
	s.SetHook(func([]byte) []byte {
		if slow.Swap(false) {
			time.Sleep(150 * time.Millisecond)
		}
		return nil
	})
	m, err := modbus.NewTCP(modbus.TCPConfig{Address: serveTCP(t, s), Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	defer m.Close()
	_, err = m.ReadHoldingRegisters(context.Background(), 1, 1, 1)
	require.ErrorIs(t, err, modbus.ErrTimeout)
	// The late answer carries the old transaction id: counted, dropped.
	regs, err := m.ReadHoldingRegisters(context.Background(), 1, 2, 1)
	require.NoError(t, err)
	require.Equal(t, []uint16{2}, regs)
	st := m.Stats()
	require.Equal(t, uint64(1), st.Timeouts)
	require.Equal(t, uint64(1), st.OtherFrame, "late answer counted: %+v", st)
}

func TestTCPReconnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	s := modbustest.New(1, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.ServeTCP(ctx, ln) }()

	m, err := modbus.NewTCP(modbus.TCPConfig{Address: addr, Timeout: 200 * time.Millisecond, Retries: 1})
	require.NoError(t, err)
	defer m.Close()
	_, err = m.ReadHoldingRegisters(context.Background(), 1, 0, 1)
	require.NoError(t, err)

	// The device restarts: connections dropped, the port down, then up.
	cancel()
	<-done
	_, err = m.ReadHoldingRegisters(context.Background(), 1, 0, 1)
	require.ErrorContains(t, err, "connect:", "the device is down")
	require.Equal(t, uint64(2), m.Stats().Requests-m.Stats().Responses, "the failure was retried once")
	ln2, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() { _ = s.ServeTCP(ctx2, ln2) }()
	regs, err := m.ReadHoldingRegisters(context.Background(), 1, 3, 1)
	require.NoError(t, err)
	require.Equal(t, []uint16{3}, regs)
	require.GreaterOrEqual(t, m.Stats().Reconnects, uint64(1))
}

func TestTCPWrongUnit(t *testing.T) {
	s := modbustest.New(1, 100)
	m, err := modbus.NewTCP(modbus.TCPConfig{Address: serveTCP(t, s), Timeout: time.Second})
	require.NoError(t, err)
	defer m.Close()
	// The test slave answers for other units as a gateway whose target is
	// gone: exception 0x0B.
	_, err = m.ReadInputRegisters(context.Background(), 9, 0, 1)
	require.ErrorContains(t, err, "GATEWAY TARGET DEVICE FAILED TO RESPOND")
	require.ErrorContains(t, err, "read input 30001 (addr 0, qty 1) on 127.0.0.1:")
}

func TestDecodeTCP(t *testing.T) {
	req := modbus.Request{Function: modbus.FuncReadHoldingRegisters, Address: 0, Quantity: 2}
	ok := []byte{0x00, 0x07, 0, 0, 0, 7, 0x11, 0x03, 0x04, 0x00, 0x0A, 0x01, 0x02}
	tests := []struct {
		name  string
		frame []byte
		kind  modbus.FrameErrorKind
	}{
		{"ok", ok, 0},
		{"short", ok[:9], modbus.FrameShort},
		{"overlong", append(append([]byte(nil), ok...), 0), modbus.FrameOverlong},
		{"protocol id", patch(ok, 3, 1), modbus.FrameBadHeader},
		{"length zero", patch(ok, 5, 0), modbus.FrameBadHeader},
		{"transaction", patch(ok, 1, 8), modbus.FrameWrongTransaction},
		{"unit", patch(ok, 6, 0x12), modbus.FrameWrongUnit},
		{"function", patch(ok, 7, 0x04), modbus.FrameWrongFunction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pdu, err := modbus.DecodeTCP(7, 0x11, &req, tt.frame)
			if tt.kind == 0 {
				require.NoError(t, err)
				var res modbus.Response
				require.NoError(t, modbus.ParseResponse(&req, pdu, &res))
				require.Equal(t, []uint16{10, 0x0102}, res.Registers)
				return
			}
			var fe *modbus.FrameError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tt.kind, fe.Kind)
		})
	}
}

func patch(b []byte, i int, v byte) []byte {
	c := append([]byte(nil), b...)
	c[i] = v
	return c
}

func TestTCPConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  modbus.TCPConfig
		want string
	}{
		{modbus.TCPConfig{Address: "10.0.0.1:502"}, ""},
		{modbus.TCPConfig{}, "address:"},
		{modbus.TCPConfig{Address: "10.0.0.1"}, "address:"},
		{modbus.TCPConfig{Address: "h:502", MaxInFlight: 100}, "max_in_flight:"},
		{modbus.TCPConfig{Address: "h:502", Retries: -1}, "retries:"},
		{modbus.TCPConfig{Address: "h:502", Timeout: -1}, "timeout:"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" {
			require.NoError(t, err)
		} else {
			require.ErrorContains(t, err, tt.want)
		}
	}
}

// TestTCPFrameErrors: a device whose answers carry another unit id or
// function, or break the MBAP header, is a frame error; a broken header
// costs the connection (a stream cannot be resynchronised), and the next
// request reconnects.
func TestTCPFrameErrors(t *testing.T) {
	tests := []struct {
		name   string
		mangle func(frame []byte) []byte
		kind   modbus.FrameErrorKind
	}{
		{"wrong unit", func(f []byte) []byte { f[6]++; return f }, modbus.FrameWrongUnit},
		{"wrong function", func(f []byte) []byte { f[7] = 0x04; return f }, modbus.FrameWrongFunction},
		{"byte count", func(f []byte) []byte { f[8]--; return f }, modbus.FrameBadLength},
		{"mbap protocol id", func(f []byte) []byte { f[2] = 1; return f }, modbus.FrameBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := modbustest.New(1, 10)
			dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
				a, c := net.Pipe()
				go func() {
					defer c.Close()
					var hdr [7]byte
					for {
						if _, err := io.ReadFull(c, hdr[:]); err != nil {
							return
						}
						body := make([]byte, binary.BigEndian.Uint16(hdr[4:])-1)
						if _, err := io.ReadFull(c, body); err != nil {
							return
						}
						out := modbus.AppendMBAP(nil, binary.BigEndian.Uint16(hdr[:]), hdr[6], s.Handle(body))
						if _, err := c.Write(tt.mangle(out)); err != nil {
							return
						}
					}
				}()
				return a, nil
			}
			m, err := modbus.NewTCP(modbus.TCPConfig{Address: "dev:502", Timeout: time.Second, Dial: dial})
			require.NoError(t, err)
			defer m.Close()
			regs, err := m.ReadHoldingRegisters(context.Background(), 1, 0, 2)
			var fe *modbus.FrameError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tt.kind, fe.Kind)
			require.Nil(t, regs)
			require.NotEmpty(t, fe.Raw)
			require.Equal(t, uint64(1), m.Stats().FrameErrors())
		})
	}
}
