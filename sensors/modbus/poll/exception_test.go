package poll

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/modbus"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
)

func str(e event.Event, key string) string {
	v, _ := field(e, key)
	return v.Str
}

// byQuality returns the records of src whose quality field is q
// ("exception" or "ok"); readings of values have none.
func (s *sink) byQuality(src, q string) []event.Event {
	var out []event.Event
	for _, e := range s.bySource(src, event.KindReading) {
		if str(e, "quality") == q {
			out = append(out, e)
		}
	}
	return out
}

func (s *sink) values(src string) []event.Event {
	return s.byQuality(src, "")
}

// refuser is a slave hook refusing reads at one address with an
// exception code, changeable while the slave serves (0: answer).
type refuser struct {
	addr uint16
	code atomic.Uint32
}

func (r *refuser) hook(pdu []byte) []byte {
	if c := r.code.Load(); c != 0 && modbustest.ReadAt(pdu, r.addr) {
		return modbustest.Exception(pdu, modbus.ExceptionCode(c))
	}
	return nil
}

// TestExceptionPerGroup: one request refused with an exception no longer
// drops the device's reading: the other requests' registers are recorded,
// the refused one is recorded once as a reading flagged "exception" with
// the exception's name when the exception starts, once when it clears, and
// not on the polls between; ILLEGAL DATA ADDRESS is not retried.
func TestExceptionPerGroup(t *testing.T) {
	s := modbustest.New(1, 100)
	ref := &refuser{addr: 10}
	ref.code.Store(uint32(modbus.IllegalDataAddress))
	s.SetHook(ref.hook)
	addr := serveTCP(t, s)
	d := dev("meter", "plc", 1, time.Second,
		RegisterConfig{Name: "flow", Register: "holding", Address: 0},
		RegisterConfig{Name: "total", Register: "holding", Address: 10, Type: "uint32"},
		RegisterConfig{Name: "level", Register: "input", Address: 5})
	p, out, fc, stop := startFake(t, Config{Buses: []BusConfig{tcpBus("plc", addr, 1)}, Devices: []DeviceConfig{d}})
	src := "modbus:meter"

	fc.runFor(t, 1, 5*time.Second) // 5 polls refused
	rs := out.values(src)
	require.Len(t, rs, 5, "a reading every poll, of the requests answered")
	for _, e := range rs {
		v, _ := field(e, "flow")
		require.Equal(t, uint64(0), v.Num)
		v, _ = field(e, "level")
		require.Equal(t, uint64(0x8005), v.Num)
		_, ok := field(e, "total")
		require.False(t, ok, "the refused register has no value")
		v, _ = field(e, "requests")
		require.Equal(t, uint64(3), v.Num)
	}
	exc := out.byQuality(src, "exception")
	require.Len(t, exc, 1, "one record when the exception starts, not one a poll")
	e := exc[0]
	require.Equal(t, "ILLEGAL DATA ADDRESS", str(e, "exception"))
	v, _ := field(e, "exception_code")
	require.Equal(t, uint64(2), v.Num)
	require.Equal(t, "total", str(e, "registers"))
	require.Contains(t, str(e, "request"), "addr 10, qty 2")
	require.Equal(t, event.SevWarning, e.Severity)
	require.Equal(t, event.ChecksumNone, e.Checksum, "tcp")
	require.Contains(t, e.Message, "meter: read holding 40011 (addr 10, qty 2): exception 0x02 ILLEGAL DATA ADDRESS")
	st := p.Status().Buses[0].Devices[0]
	require.Equal(t, uint64(5), st.Counters.Exceptions)
	require.Zero(t, st.Counters.Retries, "ILLEGAL DATA ADDRESS is not asked again")
	require.Equal(t, uint64(15), st.Counters.Attempts)
	require.Equal(t, "failing", st.State)
	require.Contains(t, st.LastError, "ILLEGAL DATA ADDRESS")
	require.Len(t, st.Values, 2, "flow and level")

	ref.code.Store(0) // the device answers again
	fc.Advance(fc.waitIdle(t, 1))
	fc.runFor(t, 1, 3*time.Second) // polls at 5, 6 and 7 s
	stop()
	cleared := out.byQuality(src, "ok")
	require.Len(t, cleared, 1, "one record when it clears")
	c := cleared[0]
	require.Equal(t, "ILLEGAL DATA ADDRESS", str(c, "cleared"))
	require.Equal(t, "total", str(c, "registers"))
	v, _ = field(c, "exception_polls")
	require.Equal(t, uint64(5), v.Num)
	v, _ = field(c, "exception_since")
	require.Equal(t, e.Time, v.Int(), "names when it started")
	require.Len(t, out.byQuality(src, "exception"), 1)
	rs = out.values(src)
	require.Len(t, rs, 5+3)
	for _, e := range rs[5:] {
		v, _ := field(e, "total")
		require.Equal(t, uint64(10<<16|11), v.Num)
	}
	st = p.Status().Buses[0].Devices[0]
	require.Equal(t, "ok", st.State)
	require.Len(t, st.Values, 3)
}

// TestExceptionChanges: an exception replaced by another is a new record;
// a poll that fails (no answer) changes nothing, and an exception on every
// request makes no empty reading.
func TestExceptionChanges(t *testing.T) {
	s := modbustest.New(1, 100)
	ref := &refuser{addr: 0}
	ref.code.Store(uint32(modbus.ServerDeviceFailure))
	s.SetHook(ref.hook)
	addr := serveTCP(t, s)
	d := dev("meter", "plc", 1, time.Second, RegisterConfig{Name: "flow", Register: "holding", Address: 0})
	d.Retries = 0
	bc := tcpBus("plc", addr, 1)
	bc.Timeout = 300 * time.Millisecond // paid by the two polls met with silence
	_, out, fc, stop := startFake(t, Config{Buses: []BusConfig{bc}, Devices: []DeviceConfig{d}})
	src := "modbus:meter"
	step := func(n int) {
		for range n {
			fc.Advance(fc.waitIdle(t, 1))
		}
	}
	step(2)                                          // 3 polls refused
	ref.code.Store(uint32(modbus.MemoryParityError)) // another exception
	step(2)
	s.SetHook(func(pdu []byte) []byte { return []byte{} }) // silence: failed polls, nothing to go by
	step(2)
	s.SetHook(ref.hook) // the same exception as before the silence
	step(1)
	fc.waitIdle(t, 1)
	stop()
	exc := out.byQuality(src, "exception")
	require.Len(t, exc, 2)
	require.Equal(t, "SERVER DEVICE FAILURE", str(exc[0], "exception"))
	require.Equal(t, "MEMORY PARITY ERROR", str(exc[1], "exception"))
	require.Empty(t, out.byQuality(src, "ok"), "never answered with data")
	require.Empty(t, out.values(src), "no request answered: no reading")
}

// TestBusyRetriedWithBackoff: SERVER DEVICE BUSY and ACKNOWLEDGE are asked
// again after busy_backoff, doubling, within the poll's deadline (its
// group's next tick) and busy_timeout; other exceptions are asked once.
// The waits are read off the scheduler's fake clock.
func TestBusyRetriedWithBackoff(t *testing.T) {
	for _, c := range []struct {
		name     string
		code     modbus.ExceptionCode
		times    int // refusals before the device answers
		interval time.Duration
		timeout  time.Duration // busy_timeout
		waits    []time.Duration
		attempts int
		refused  bool
	}{
		{"busy twice", modbus.ServerDeviceBusy, 2, time.Second, 2 * time.Second,
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, 3, false},
		{"acknowledge once", modbus.Acknowledge, 1, time.Second, 2 * time.Second,
			[]time.Duration{100 * time.Millisecond}, 2, false},
		{"busy past the deadline", modbus.ServerDeviceBusy, 1000, time.Second, 2 * time.Second,
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}, 4, true}, // 800 more would end at 1.5 s
		{"busy past busy_timeout", modbus.ServerDeviceBusy, 1000, 10 * time.Second, 500 * time.Millisecond,
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, 3, true},
		{"busy, not asked again", modbus.ServerDeviceBusy, 1000, time.Second, 0, nil, 1, true},
		{"device failure", modbus.ServerDeviceFailure, 1, time.Second, 2 * time.Second, nil, 1, true},
		{"illegal function", modbus.IllegalFunction, 1, time.Second, 2 * time.Second, nil, 1, true},
		{"gateway target", modbus.GatewayTargetDeviceFailedToRespond, 1, time.Second, 2 * time.Second, nil, 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := modbustest.New(1, 100)
			var n atomic.Int32
			s.SetHook(func(pdu []byte) []byte {
				if int(n.Add(1)) <= c.times {
					return modbustest.Exception(pdu, c.code)
				}
				return nil
			})
			addr := serveTCP(t, s)
			d := dev("meter", "plc", 1, c.interval, RegisterConfig{Name: "flow", Register: "holding", Address: 3})
			d.BusyTimeout = c.timeout
			p, out, fc, stop := startFake(t, Config{Buses: []BusConfig{tcpBus("plc", addr, 1)}, Devices: []DeviceConfig{d}})
			var waits []time.Duration
			var waited time.Duration
			for {
				w := fc.waitIdle(t, 1)
				if waited+w >= c.interval {
					require.Equal(t, c.interval, waited+w, "the next poll at the next tick")
					break
				}
				waits = append(waits, w)
				fc.Advance(w)
				waited += w
			}
			stop()
			require.Equal(t, c.waits, waits)
			st := p.Status().Buses[0].Devices[0].Counters
			require.Equal(t, uint64(c.attempts), st.Attempts)
			require.Equal(t, uint64(c.attempts-1), st.Retries)
			require.Equal(t, uint64(min(c.times, c.attempts)), st.Exceptions)
			src := "modbus:meter"
			if c.refused {
				require.Empty(t, out.values(src))
				exc := out.byQuality(src, "exception")
				require.Len(t, exc, 1)
				require.Equal(t, c.code.String(), str(exc[0], "exception"))
				return
			}
			require.Empty(t, out.byQuality(src, "exception"), "answered within the poll: nothing to report")
			rs := out.values(src)
			require.Len(t, rs, 1)
			v, _ := field(rs[0], "flow")
			require.Equal(t, uint64(3), v.Num)
			v, _ = field(rs[0], "attempts")
			require.Equal(t, uint64(c.attempts), v.Num)
		})
	}
}

// TestOneOffReadWithException: a one-off read shows the values of the
// requests answered and the exception of the one refused.
func TestOneOffReadWithException(t *testing.T) {
	s := modbustest.New(1, 100)
	ref := &refuser{addr: 20}
	ref.code.Store(uint32(modbus.IllegalDataAddress))
	s.SetHook(ref.hook)
	addr := serveTCP(t, s)
	d := dev("meter", "plc", 1, time.Hour,
		RegisterConfig{Name: "flow", Register: "holding", Address: 2},
		RegisterConfig{Name: "total", Register: "holding", Address: 20})
	p, err := New(Config{Buses: []BusConfig{tcpBus("plc", addr, 1)}, Devices: []DeviceConfig{d}}, nil, nil)
	require.NoError(t, err)
	r, err := p.ReadDirect(context.Background(), "meter")
	require.NoError(t, err)
	require.Equal(t, []Value{{Name: "flow", Value: uint64(2), Text: "2"}}, r.Values)
	require.Contains(t, r.Error, "ILLEGAL DATA ADDRESS")
	require.Len(t, r.Attempts, 2)
	require.Equal(t, "exception", r.Attempts[1].Verdict)
}
