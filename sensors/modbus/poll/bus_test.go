package poll

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/sensors/serialport"
	"github.com/weirgw/weir/sensors/serialport/serialtest"
	"github.com/weirgw/weir/spool"
)

type sink struct {
	mu  sync.Mutex
	evs []event.Event
}

func (s *sink) Emit(_ context.Context, evs []event.Event, _ []spool.Checkpoint) error {
	s.mu.Lock()
	s.evs = append(s.evs, evs...)
	s.mu.Unlock()
	return nil
}

func (s *sink) bySource(src string, kind event.Kind) []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []event.Event
	for _, e := range s.evs {
		if e.Source == src && e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func field(e event.Event, key string) (event.Value, bool) {
	for _, f := range e.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return event.Value{}, false
}

func serveTCP(t *testing.T, s *modbustest.Slave) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.ServeTCP(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// tcpBus is a TCP bus with a timeout a slave slowed by -race on a loaded
// machine still meets: tests count exact polls, and a fake clock makes
// the timeout cost nothing while answers come.
func tcpBus(name, addr string, inFlight int) BusConfig {
	b := DefaultBusConfig()
	b.Name, b.Type, b.Address, b.MaxInFlight, b.Timeout = name, BusTCP, addr, inFlight, 2*time.Second
	return b
}

func dev(name, bus string, unit int, interval time.Duration, regs ...RegisterConfig) DeviceConfig {
	d := DefaultDeviceConfig()
	d.Name, d.Bus, d.Unit, d.Interval, d.Registers = name, bus, unit, interval, regs
	return d
}

func runPoller(t *testing.T, cfg Config, d time.Duration) (*Poller, *sink) {
	p, err := New(cfg, nil, nil)
	require.NoError(t, err)
	s := &sink{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	require.NoError(t, p.Run(ctx, s))
	return p, s
}

// TestPollTCPReadings: every poll a reading with the registers' values,
// stamped between the request and the answer.
func TestPollTCPReadings(t *testing.T) {
	s := modbustest.New(1, 200)
	s.Lock()
	s.Holding[10], s.Holding[11] = 0x4148, 0x0000 // 12.5
	s.Holding[12] = 0xFFFE
	s.Coils[3] = true
	s.Unlock()
	addr := serveTCP(t, s)
	cfg := Config{Buses: []BusConfig{tcpBus("plc", addr, 2)}, Devices: []DeviceConfig{
		dev("meter", "plc", 1, 20*time.Millisecond,
			RegisterConfig{Name: "flow", Register: "holding", Address: 10, Type: "float32"},
			RegisterConfig{Name: "delta", Register: "holding", Address: 12, Type: "int16"},
			RegisterConfig{Name: "pump", Register: "coil", Address: 3}),
		dev("other", "plc", 1, 30*time.Millisecond, RegisterConfig{Name: "r", Register: "input", Address: 5}),
	}}
	before := time.Now()
	p, out, fc, stop := startFake(t, cfg)
	fc.runFor(t, 2, 400*time.Millisecond)
	stop()
	after := time.Now()
	rs := out.bySource("modbus:meter", event.KindReading)
	require.Len(t, rs, 20, "polls every 20ms for 400ms")
	for _, e := range rs {
		v, _ := field(e, "flow")
		require.Equal(t, 12.5, v.Float())
		v, _ = field(e, "delta")
		require.Equal(t, int64(-2), v.Int())
		v, _ = field(e, "pump")
		require.True(t, v.Bool())
		v, _ = field(e, "requests")
		require.Equal(t, uint64(2), v.Num, "holding 10..12 coalesced, the coil apart")
		require.Equal(t, event.ChecksumNone, e.Checksum, "tcp has no checksum")
		require.True(t, e.Time > before.UnixNano() && e.Time < after.UnixNano())
		unc, _ := field(e, "uncertainty_ns")
		require.Positive(t, unc.Int())
	}
	require.Len(t, out.bySource("modbus:other", event.KindReading), 14, "every 30ms for 400ms")
	st := p.Status()
	require.Len(t, st.Buses, 1)
	require.Zero(t, st.Buses[0].Counters.FrameErrors())
	require.Equal(t, "ok", st.Buses[0].Devices[0].State)
	var names []string
	for _, v := range st.Buses[0].Devices[0].Values {
		names = append(names, v.Name+"="+v.Text)
	}
	require.Equal(t, []string{"flow=12.5", "delta=-2", "pump=true"}, names, "in the register map's order")
}

func rtuBus(t *testing.T, name string) (BusConfig, string) {
	a, b := serialtest.PTYPair(t)
	bc := DefaultBusConfig()
	bc.Name, bc.Type, bc.Timeout = name, BusRTU, 60*time.Millisecond
	bc.Serial.Device, bc.Serial.Baud = a, 115200
	return bc, b
}

func serveRTU(t *testing.T, s *modbustest.Slave, dev string) {
	cfg := serialport.DefaultConfig()
	cfg.Device, cfg.Baud = dev, 115200
	p, err := serialport.Open(cfg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.ServeRTU(ctx, p) }()
	t.Cleanup(func() { cancel(); <-done; p.Close() })
}

// TestDeadDeviceBackedOff: on one serial line a device that never answers
// is backed off (interval×2, ×4 … capped) and probed without retries, so
// the live device keeps its rate. The schedule runs on a fake clock: the
// counts are the scheduler's, not the machine's speed.
func TestDeadDeviceBackedOff(t *testing.T) {
	bc, slaveEnd := rtuBus(t, "rs485")
	// Real time, paid by each of the dead device's 7 attempts: long
	// enough that a slave slowed by -race on a loaded machine (200 ms
	// seen) never answers the live device late, into the dead one's
	// window, which would count there as a frame error.
	bc.Timeout = 400 * time.Millisecond
	serveRTU(t, modbustest.New(5, 100), slaveEnd)
	live := dev("live", "rs485", 5, 50*time.Millisecond, RegisterConfig{Name: "r", Register: "holding", Address: 7})
	dead := dev("dead", "rs485", 9, 50*time.Millisecond, RegisterConfig{Name: "r", Register: "holding", Address: 7})
	dead.Retries, dead.DeadAfter, dead.MaxBackoff = 1, 2, 400*time.Millisecond
	p, out, fc, stop := startFake(t, Config{Buses: []BusConfig{bc}, Devices: []DeviceConfig{live, dead}})
	fc.runFor(t, 1, time.Second)
	stop()
	st := p.Status().Buses[0]
	lv, dd := st.Devices[0], st.Devices[1]
	t.Logf("live %+v", lv.Counters)
	t.Logf("dead %+v backoff %s", dd.Counters, dd.Backoff)
	require.Equal(t, "dead", dd.State)
	require.Empty(t, out.bySource("modbus:dead", event.KindReading))
	// Polls at 0 and 50 ms of 2 attempts each, then probes of one after
	// 100, 200, 400 ms (capped): at 150, 350 and 750 ms.
	require.Equal(t, uint64(5), dd.Counters.Polls)
	require.Equal(t, uint64(2*2+3), dd.Counters.Attempts)
	require.Equal(t, dd.Counters.Attempts, dd.Counters.Timeouts)
	require.Equal(t, "400ms", dd.Backoff)
	tel := p.Telemetry()
	require.Len(t, tel, 1)
	require.Equal(t, event.SevWarning, tel[0].Severity, "a dead device makes a warning")
	v, _ := field(tel[0], "dead.timeouts")
	require.Equal(t, dd.Counters.Timeouts, v.Num)
	// The live device is polled on every tick of its interval.
	require.Len(t, out.bySource("modbus:live", event.KindReading), 20)
	for _, e := range out.bySource("modbus:live", event.KindReading) {
		v, _ := field(e, "r")
		require.Equal(t, uint64(7), v.Num)
		require.Equal(t, event.ChecksumOK, e.Checksum)
	}
}

// TestDiagnosticsRateLimited: damaged frames each make a diagnostic record
// with their raw bytes until the bus's limit, then are counted as
// suppressed; no failed poll makes a reading. The scheduler runs on a fake
// clock, stepped one interval at a time, so every count is exact.
func TestDiagnosticsRateLimited(t *testing.T) {
	s := modbustest.New(1, 100)
	s.SetHook(func(pdu []byte) []byte { return []byte{pdu[0], 4, 0, 1} }) // byte count 4, one register
	addr := serveTCP(t, s)
	bc := tcpBus("plc", addr, 1)
	bc.DiagnosticsPerMinute = 3
	d := dev("meter", "plc", 1, 10*time.Millisecond, RegisterConfig{Name: "r", Register: "holding", Address: 0})
	d.Retries = 0
	p, out, fc, stop := startFake(t, Config{Buses: []BusConfig{bc}, Devices: []DeviceConfig{d}})
	const polls = 12
	for i := 1; ; i++ {
		require.Equal(t, 10*time.Millisecond, fc.waitIdle(t, 1), "the next poll is one interval away")
		require.Equal(t, uint64(i), p.Status().Buses[0].Counters.Polls)
		if i == polls {
			break
		}
		fc.Advance(10 * time.Millisecond)
	}
	stop()
	require.Empty(t, out.bySource("modbus:meter", event.KindReading))
	diags := out.bySource("modbus:plc", event.KindTelemetry)
	require.Len(t, diags, 3, "110 ms of clock earn no fourth token at 3 a minute")
	raw, _ := field(diags[0], "raw_hex")
	require.Contains(t, raw.Str, "03040001", "the damaged frame's bytes")
	require.Equal(t, event.ChecksumBad, diags[0].Checksum)
	st := p.Status().Buses[0]
	require.Equal(t, uint64(polls), st.Counters.OtherFrames)
	require.Equal(t, uint64(polls-3), st.DiagnosticsSuppressed)
	require.Equal(t, st.Counters.OtherFrames, st.Master.OtherFrame, "the master counted the same frames")
	require.InDelta(t, 1.0, st.FrameErrorRate1m, 1e-9)
	require.InDelta(t, 1.0, st.Devices[0].FrameErrorRate15m, 1e-9)
	require.Equal(t, "frame_error", st.Devices[0].LastVerdict)
}

// TestCancelledPollCounted: a poll cut short by the end of the run still
// counts the attempts it made, so the bus's counters and its master's
// agree (the master counts every frame it reads). Stopping the gateway
// while a poll was in flight used to lose them: the flake of
// TestDiagnosticsRateLimited, made certain here.
func TestCancelledPollCounted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := modbustest.New(1, 100)
	var n atomic.Int32
	s.SetHook(func(pdu []byte) []byte {
		if n.Add(1) == 1 {
			return []byte{pdu[0], 4, 0, 1} // damaged: retried
		}
		cancel() // the gateway stops during the retry, which gets no answer
		return []byte{}
	})
	addr := serveTCP(t, s)
	d := dev("meter", "plc", 1, time.Hour, RegisterConfig{Name: "r", Register: "holding", Address: 0})
	d.Retries = 1
	p, err := New(Config{Buses: []BusConfig{tcpBus("plc", addr, 1)}, Devices: []DeviceConfig{d}}, nil, nil)
	require.NoError(t, err)
	out := &sink{}
	require.NoError(t, p.Run(ctx, out))
	st := p.Status().Buses[0]
	require.Equal(t, uint64(1), st.Master.OtherFrame)
	require.Equal(t, st.Master.OtherFrame, st.Counters.OtherFrames, "the damaged frame of the cut poll is counted")
	require.Equal(t, uint64(1), st.Counters.Attempts, "the cut attempt is not")
	require.Zero(t, st.Counters.Polls, "a cut poll is no poll")
	require.Empty(t, out.evs)
}

// TestOneOffRead: a read through a running bus returns values and the raw
// frames without moving the schedule.
func TestOneOffRead(t *testing.T) {
	s := modbustest.New(3, 100)
	addr := serveTCP(t, s)
	cfg := Config{Buses: []BusConfig{tcpBus("plc", addr, 1)}, Devices: []DeviceConfig{
		dev("meter", "plc", 3, time.Hour, RegisterConfig{Name: "r", Register: "input", Address: 2, Unit: "bar"})}}
	p, err := New(cfg, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx, &sink{}) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { return p.Status().Buses[0].Devices[0].State == "ok" }, 2*time.Second, 5*time.Millisecond)
	r, err := p.Read(ctx, "meter")
	require.NoError(t, err)
	require.Empty(t, r.Error)
	require.Equal(t, []Value{{Name: "r", Value: uint64(0x8002), Text: strconv.Itoa(0x8002), Unit: "bar"}}, r.Values)
	require.Len(t, r.Frames, 2)
	require.Equal(t, "tx", r.Frames[0].Dir)
	require.Contains(t, r.Frames[0].Hex, "030400020001", "unit 3, function 4, addr 2, qty 1")
	require.Contains(t, r.Frames[1].Hex, "0304028002")
	_, err = p.Read(ctx, "nope")
	require.ErrorIs(t, err, ErrNoDevice)
	require.ErrorContains(t, err, `"nope"`)
}

func TestNextTick(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		prev, now, want time.Duration
	}{
		{0, 0, 10},  // on time
		{0, 3, 10},  // a poll that took 3
		{0, 25, 30}, // missed ticks are skipped
		{0, 30, 40},
	} {
		got := nextTick(t0.Add(c.prev), 10*time.Second, t0.Add(c.now*time.Second))
		require.Equal(t, t0.Add(c.want*time.Second), got, "%+v", c)
	}
}

// TestPollGroupsByInterval: a device's registers with their own interval
// are polled in a group of their own, each poll a record.
func TestPollGroupsByInterval(t *testing.T) {
	addr := serveTCP(t, modbustest.New(1, 100))
	d := dev("meter", "plc", 1, 20*time.Millisecond,
		RegisterConfig{Name: "flow", Register: "holding", Address: 1},
		RegisterConfig{Name: "serial_no", Register: "holding", Address: 50, Type: "uint32", Interval: 200 * time.Millisecond},
		RegisterConfig{Name: "level", Register: "holding", Address: 2})
	_, out, fc, stop := startFake(t, Config{Buses: []BusConfig{tcpBus("plc", addr, 1)}, Devices: []DeviceConfig{d}})
	fc.runFor(t, 1, 500*time.Millisecond)
	stop()
	var fast, slow int
	for _, e := range out.bySource("modbus:meter", event.KindReading) {
		_, hasFlow := field(e, "flow")
		_, hasSerial := field(e, "serial_no")
		require.NotEqual(t, hasFlow, hasSerial, "one group per record")
		if hasFlow {
			fast++
			v, _ := field(e, "level")
			require.Equal(t, uint64(2), v.Num)
		} else {
			slow++
			v, _ := field(e, "serial_no")
			require.Equal(t, uint64(50<<16|51), v.Num)
		}
	}
	require.Equal(t, 25, fast, "every 20 ms in [0, 500)")
	require.Equal(t, 3, slow, "at 0, 200 and 400 ms")
}

// TestDeadTCPDeviceBackedOff: a TCP device refusing connections is backed
// off like one that does not answer.
func TestDeadTCPDeviceBackedOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connections refused
	d := dev("gone", "plc", 1, 10*time.Millisecond, RegisterConfig{Name: "r", Register: "holding"})
	d.Retries, d.DeadAfter, d.MaxBackoff = 0, 2, 80*time.Millisecond
	p, _ := runPoller(t, Config{Buses: []BusConfig{tcpBus("plc", addr, 1)}, Devices: []DeviceConfig{d}}, 500*time.Millisecond)
	ds := p.Status().Buses[0].Devices[0]
	t.Logf("%+v", ds.Counters)
	require.Equal(t, "dead", ds.State)
	require.Positive(t, ds.Counters.TransportErrors)
	require.LessOrEqual(t, ds.Counters.Polls, uint64(12), "at 10ms it would be ~50 polls")
}

// TestOneOffReadOnBusyBus: a one-off read is served between polls even when
// a device is always due.
func TestOneOffReadOnBusyBus(t *testing.T) {
	bc, slaveEnd := rtuBus(t, "rs485")
	serveRTU(t, modbustest.New(5, 100), slaveEnd)
	cfg := Config{Buses: []BusConfig{bc}, Devices: []DeviceConfig{
		dev("hog", "rs485", 5, 10*time.Millisecond, RegisterConfig{Name: "r", Register: "holding", Address: 1, Type: "uint64"}),
		dev("meter", "rs485", 5, time.Hour, RegisterConfig{Name: "r", Register: "holding", Address: 9})}}
	p, err := New(cfg, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx, &sink{}) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { return p.Status().Buses[0].Devices[0].Counters.Polls > 3 }, 5*time.Second, 5*time.Millisecond)
	for range 3 {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		r, err := p.Read(rctx, "meter")
		rcancel()
		require.NoError(t, err)
		require.Empty(t, r.Error)
		require.Equal(t, "9", r.Values[0].Text)
		require.Equal(t, "050300090001", r.Frames[0].Hex[:12], "our request only: unit 5, read holding addr 9")
		require.Len(t, r.Frames, 2)
	}
}

// TestLiveReadsRateLimited: live reads through the admin socket are
// bounded per bus (live_reads_per_minute, a minute's worth at once); the
// rest are refused with ErrLiveReadLimit, not queued on the line.
func TestLiveReadsRateLimited(t *testing.T) {
	addr := serveTCP(t, modbustest.New(3, 100))
	bc := tcpBus("plc", addr, 1)
	cfg := Config{Buses: []BusConfig{bc}, Devices: []DeviceConfig{
		dev("meter", "plc", 3, time.Hour, RegisterConfig{Name: "r", Register: "input", Address: 2})}}
	p, err := New(cfg, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx, &sink{}) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { return p.Status().Buses[0].Devices[0].State == "ok" }, 2*time.Second, 5*time.Millisecond)

	ok, refused := 0, 0
	for range DefaultLiveReadsPerMinute + 8 {
		r, err := p.Read(ctx, "meter")
		if errors.Is(err, ErrLiveReadLimit) {
			refused++
			require.ErrorContains(t, err, "live_reads_per_minute")
			continue
		}
		require.NoError(t, err)
		require.Empty(t, r.Error)
		ok++
	}
	require.Equal(t, DefaultLiveReadsPerMinute, ok)
	require.Equal(t, 8, refused)
	require.Equal(t, uint64(8), p.Status().Buses[0].LiveReadsRefused)
}

// TestLiveReadsDoNotStarvePolls: live reads asked for back to back (four
// callers, each read slower than the hog's interval, so a poll is always
// due when one ends) take turns with the schedule: a due poll goes between
// two of them.
func TestLiveReadsDoNotStarvePolls(t *testing.T) {
	bc, slaveEnd := rtuBus(t, "rs485")
	bc.LiveReadsPerMinute = 6000
	serveRTU(t, modbustest.New(5, 100), slaveEnd)
	silent := dev("silent", "rs485", 9, time.Hour, RegisterConfig{Name: "r", Register: "holding", Address: 9})
	silent.Retries = 0
	cfg := Config{Buses: []BusConfig{bc}, Devices: []DeviceConfig{
		dev("hog", "rs485", 5, 10*time.Millisecond, RegisterConfig{Name: "r", Register: "holding", Address: 1}),
		silent}}
	p, err := New(cfg, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx, &sink{}) }()
	defer func() { cancel(); <-done }()
	hogPolls := func() uint64 { return p.Status().Buses[0].Devices[0].Counters.Polls }
	require.Eventually(t, func() bool { return hogPolls() > 3 }, 5*time.Second, 5*time.Millisecond)

	const reads = 12
	before := hogPolls()
	var wg sync.WaitGroup
	next := make(chan struct{}, reads)
	for range reads {
		next <- struct{}{}
	}
	close(next)
	for range 4 {
		wg.Go(func() {
			for range next {
				r, err := p.Read(ctx, "silent") // no answer: a timeout, 60ms
				if err != nil || r.Error == "" {
					t.Errorf("read: %v %+v", err, r)
					return
				}
			}
		})
	}
	wg.Wait()
	polls := hogPolls() - before
	t.Logf("%d polls of the hog during %d live reads", polls, reads)
	require.GreaterOrEqual(t, polls, uint64(reads-1), "a due poll goes between two live reads")
}

// fakeDE is a driver-enable pin that only says which line it is for.
type fakeDE struct{ dev string }

func (f fakeDE) Set(bool) error { return nil }
func (f fakeDE) Device() string { return f.dev }

// TestUseDriverEnable: each serial bus takes the pin the board has for its
// line, a TCP bus none, and a line without a pin stays without.
func TestUseDriverEnable(t *testing.T) {
	cfg := Config{Buses: []BusConfig{
		{Name: "a", Type: BusRTU, Serial: serialport.Config{Device: "/dev/ttyS1"}},
		{Name: "b", Type: BusRTU, Serial: serialport.Config{Device: "/dev/ttyS2"}},
		{Name: "c", Type: BusTCP, Address: "127.0.0.1:502"},
	}}
	p := &Poller{}
	for _, bc := range cfg.Buses {
		p.buses = append(p.buses, &Bus{cfg: bc})
	}
	asked := map[string]int{}
	p.UseDriverEnable(func(dev string) serialport.DriverEnable {
		asked[dev]++
		if dev == "/dev/ttyS1" {
			return fakeDE{dev}
		}
		return nil
	})
	require.Equal(t, fakeDE{"/dev/ttyS1"}, p.buses[0].de)
	require.Nil(t, p.buses[1].de)
	require.Nil(t, p.buses[2].de)
	require.Equal(t, map[string]int{"/dev/ttyS1": 1, "/dev/ttyS2": 1}, asked)
}
