package modbus_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/weirgw/weir/sensors/modbus"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
)

// BenchmarkTransaction measures the master's cost of one Read Holding
// Registers round trip (10 registers) against the in-process slave over a
// net.Pipe, so no kernel or line time is in it; the slave's own work is
// (it runs in the same process), which makes this an upper bound on the
// master's CPU per transaction. RTU runs with the inter-frame silence off:
// with it, every transaction would include 1.75 ms of waiting, which is the
// line's time, not the CPU's.
func BenchmarkTransaction(b *testing.B) {
	req := modbus.Request{Function: modbus.FuncReadHoldingRegisters, Address: 100, Quantity: 10}
	run := func(b *testing.B, m *modbus.Master) {
		var res modbus.Response
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := m.Do(ctx, 1, &req, &res); err != nil {
				b.Fatal(err)
			}
		}
		if res.Registers[0] != 100 {
			b.Fatalf("read %v", res.Registers)
		}
	}
	b.Run("RTU", func(b *testing.B) {
		a, c := net.Pipe()
		defer a.Close()
		defer c.Close()
		s := modbustest.New(1, 200)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = s.ServeRTU(ctx, c) }()
		m, err := modbus.NewRTU(a, modbus.RTUConfig{Name: "pipe", Silence: -1, Timeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		run(b, m)
	})
	for _, inFlight := range []int{1, 4} {
		name := "TCP"
		if inFlight > 1 {
			name = "TCP-inflight4"
		}
		b.Run(name, func(b *testing.B) {
			s := modbustest.New(1, 200)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dial := func(context.Context, string, string) (net.Conn, error) {
				a, c := net.Pipe()
				go func() { _ = s.ServeConn(ctx, c) }()
				return a, nil
			}
			m, err := modbus.NewTCP(modbus.TCPConfig{Address: "pipe:502", Timeout: time.Second, MaxInFlight: inFlight, Dial: dial})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			if inFlight == 1 {
				run(b, m)
				return
			}
			b.ReportAllocs()
			b.SetParallelism(2)
			b.RunParallel(func(pb *testing.PB) {
				var res modbus.Response
				for pb.Next() {
					if err := m.Do(context.Background(), 1, &req, &res); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// cannedPort answers every request with the same RTU frame at once, so
// BenchmarkMasterCPU measures the master alone: encode, CRC both ways,
// length checks, parse, counters.
type cannedPort struct {
	resp    []byte
	pending bool
}

func (p *cannedPort) Write(b []byte) (int, error) { p.pending = true; return len(b), nil }
func (p *cannedPort) Read(b []byte) (int, error) {
	if !p.pending {
		return 0, io.EOF
	}
	p.pending = false
	return copy(b, p.resp), nil
}
func (p *cannedPort) SetReadDeadline(time.Time) error { return nil }

// BenchmarkMasterCPU is the RTU master's own CPU per Read Holding
// Registers transaction (10 registers), with no peer and no line time.
func BenchmarkMasterCPU(b *testing.B) {
	resp := []byte{1, 3, 20}
	for i := range 10 {
		resp = append(resp, 0, byte(100+i))
	}
	resp = modbus.AppendCRC(resp)
	m, err := modbus.NewRTU(&cannedPort{resp: resp}, modbus.RTUConfig{Name: "canned", Silence: -1, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	req := modbus.Request{Function: modbus.FuncReadHoldingRegisters, Address: 100, Quantity: 10}
	var res modbus.Response
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Do(ctx, 1, &req, &res); err != nil {
			b.Fatal(err)
		}
	}
	if res.Registers[9] != 109 {
		b.Fatalf("read %v", res.Registers)
	}
}
