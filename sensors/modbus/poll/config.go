package poll

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/modbus"
	"github.com/weirgw/weir/sensors/serialport"
)

// Config is inputs.modbus: the buses and the devices on them.
type Config struct {
	Buses   []BusConfig    `mapstructure:"buses" yaml:"buses"`
	Devices []DeviceConfig `mapstructure:"devices" yaml:"devices"`
}

// BusType says how a bus is reached.
type BusType string

// Bus types.
const (
	BusRTU BusType = "rtu" // a serial line (RS-485 or RS-232)
	BusTCP BusType = "tcp" // one Modbus TCP address (a device or a TCP-to-RTU gateway)
)

// BusConfig is one serial line or TCP address: one master, one scheduler.
type BusConfig struct {
	Name string  `mapstructure:"name" yaml:"name"`
	Type BusType `mapstructure:"type" yaml:"type"`
	// Serial is the line of an rtu bus.
	Serial serialport.Config `mapstructure:"serial" yaml:"serial"`
	// Address is host:port of a tcp bus.
	Address string `mapstructure:"address" yaml:"address"`
	// MaxInFlight bounds the requests awaiting answers on a tcp bus (and
	// so the devices polled at once); an rtu bus always has one.
	MaxInFlight int `mapstructure:"max_in_flight" yaml:"max_in_flight"`
	// Timeout is how long an answer may take to start. It belongs to the
	// bus because one master owns the line.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
	// DiagnosticsPerMinute bounds the diagnostic records (raw bytes of
	// damaged frames) this bus spools; the rest are counted as suppressed.
	DiagnosticsPerMinute int `mapstructure:"diagnostics_per_minute" yaml:"diagnostics_per_minute"`
	// LiveReadsPerMinute bounds the live reads (`weir sensors read`
	// through the admin socket) this bus does, a minute's worth at once;
	// more are refused. 0 refuses them all.
	LiveReadsPerMinute int `mapstructure:"live_reads_per_minute" yaml:"live_reads_per_minute"`
	// ReopenDelay is how long a line that failed to open, or failed under
	// a running bus (a USB adapter unplugged), waits before it is opened
	// again.
	ReopenDelay time.Duration `mapstructure:"reopen_delay" yaml:"reopen_delay"`
}

// Coalescing modes.
const (
	CoalesceOn  = "on"
	CoalesceOff = "off"
)

// DeviceConfig is one Modbus device and its register map.
type DeviceConfig struct {
	Name string `mapstructure:"name" yaml:"name"`
	Bus  string `mapstructure:"bus" yaml:"bus"`
	Unit int    `mapstructure:"unit" yaml:"unit"`
	// Interval between polls.
	Interval time.Duration `mapstructure:"interval" yaml:"interval"`
	// Retries is how many more attempts a failed request gets within one
	// poll. A device backed off as dead is probed without retries.
	Retries int `mapstructure:"retries" yaml:"retries"`
	// Coalesce: on merges neighbouring registers into one request; off
	// reads each register alone, for devices that refuse reads spanning
	// unmapped addresses.
	Coalesce string `mapstructure:"coalesce" yaml:"coalesce"`
	// MaxGap is how many unmapped registers (or bits) a coalesced request
	// may read over to join two neighbours.
	MaxGap int `mapstructure:"max_gap" yaml:"max_gap"`
	// DeadAfter consecutive polls that go unanswered (timeouts; on TCP
	// also connections refused or dropped) make a device dead: it is
	// then polled after interval×2, ×4 … up to MaxBackoff (at least the
	// interval) until it answers.
	DeadAfter  int           `mapstructure:"dead_after" yaml:"dead_after"`
	MaxBackoff time.Duration `mapstructure:"max_backoff" yaml:"max_backoff"`
	// BusyBackoff is the wait before asking again a request the device
	// answered with exception SERVER DEVICE BUSY (0x06) or ACKNOWLEDGE
	// (0x05); it doubles for each further one. Other exceptions are final.
	BusyBackoff time.Duration `mapstructure:"busy_backoff" yaml:"busy_backoff"`
	// BusyTimeout bounds how long one poll keeps asking a busy device, and
	// never past the poll's deadline (its next tick); 0 does not ask
	// again. The bus's worker waits meanwhile: on a serial line the other
	// devices wait too.
	BusyTimeout time.Duration `mapstructure:"busy_timeout" yaml:"busy_timeout"`
	// Priority of the reading records: normal, critical or bulk.
	Priority  string           `mapstructure:"priority" yaml:"priority"`
	Registers []RegisterConfig `mapstructure:"registers" yaml:"registers"`
}

// RegisterConfig maps one value.
type RegisterConfig struct {
	Name string `mapstructure:"name" yaml:"name"`
	// Register is the table: coil, discrete, input or holding.
	Register string `mapstructure:"register" yaml:"register"`
	// Address is the 0-based address on the wire (holding register 40001
	// is address 0).
	Address int `mapstructure:"address" yaml:"address"`
	// Type is the data type: bool, int16, uint16, int32, uint32, int64,
	// uint64, float32, float64, string, bitfield. Empty: bool for coils and
	// discrete inputs, uint16 for registers.
	Type string `mapstructure:"type" yaml:"type"`
	// Length is a string's size in registers (two characters each), or a
	// bitfield's (1 or 2; empty: 1).
	Length int `mapstructure:"length" yaml:"length"`
	// Order is the byte and word order: ABCD (big-endian, the
	// specification's), CDAB (words swapped), BADC (bytes swapped in each
	// word), DCBA (little-endian). Empty: ABCD.
	Order string `mapstructure:"order" yaml:"order"`
	// Scale and Offset make value×scale+offset, a float. Scale 0 means 1.
	Scale  float64 `mapstructure:"scale" yaml:"scale"`
	Offset float64 `mapstructure:"offset" yaml:"offset"`
	// Unit is the engineering unit, e.g. "m3/h", shown by weir sensors.
	Unit string `mapstructure:"unit" yaml:"unit"`
	// Bits names the bits of a bitfield; each becomes a bool field
	// <name>.<bit name>.
	Bits []BitConfig `mapstructure:"bits" yaml:"bits"`
	// Interval polls this register at its own rate (a serial number once
	// an hour, a flow every second); 0 means the device's. A device's
	// registers are polled in one group per interval, each poll a record.
	Interval time.Duration `mapstructure:"interval" yaml:"interval"`
}

// BitConfig names one bit of a bitfield, 0 the least significant.
type BitConfig struct {
	Bit  int    `mapstructure:"bit" yaml:"bit"`
	Name string `mapstructure:"name" yaml:"name"`
}

// Defaults.
const (
	DefaultInterval   = 10 * time.Second
	DefaultTimeout    = time.Second
	DefaultDeadAfter  = 3
	DefaultMaxBackoff = 5 * time.Minute
	DefaultDiagPerMin = 30
	// DefaultLiveReadsPerMinute is a field engineer's pace, not a script's.
	DefaultLiveReadsPerMinute = 12
	DefaultReopenDelay        = 5 * time.Second
	DefaultBusyBackoff        = 100 * time.Millisecond
	DefaultBusyTimeout        = 2 * time.Second
	maxRegisterAddress        = 0xFFFF
)

// DefaultBusConfig is an rtu bus at 19200 baud 8E1 with a 1 s timeout.
func DefaultBusConfig() BusConfig {
	return BusConfig{Type: BusRTU, Serial: serialport.DefaultConfig(), MaxInFlight: 1, Timeout: DefaultTimeout,
		DiagnosticsPerMinute: DefaultDiagPerMin, LiveReadsPerMinute: DefaultLiveReadsPerMinute, ReopenDelay: DefaultReopenDelay}
}

// DefaultDeviceConfig polls every 10 s with one retry, coalescing
// adjacent registers only, and asks a busy device again after 100 ms,
// 200 ms ... for up to 2 s.
func DefaultDeviceConfig() DeviceConfig {
	return DeviceConfig{Interval: DefaultInterval, Retries: 1, Coalesce: CoalesceOn, DeadAfter: DefaultDeadAfter,
		MaxBackoff: DefaultMaxBackoff, BusyBackoff: DefaultBusyBackoff, BusyTimeout: DefaultBusyTimeout, Priority: "normal"}
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_\-]{0,63}$`)

// reserved are the record's own fields.
var reserved = []string{"device", "bus", "unit", "uncertainty_ns", "round_trip_us", "attempts", "requests"}

var (
	tables    = []string{"coil", "discrete", "input", "holding"}
	dataTypes = []string{"bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string", "bitfield"}
	orders    = []string{"ABCD", "CDAB", "BADC", "DCBA"}
)

// Validate checks the configuration without I/O. Every error names its key
// path below inputs.modbus, e.g. devices[2].registers[5].type.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	buses := map[string]int{}
	for i, b := range c.Buses {
		key := fmt.Sprintf("buses[%d]", i)
		if !nameRE.MatchString(b.Name) {
			bad(key+".name", "%q is not a name (a letter, then letters, digits, _ or -)", b.Name)
		} else if j, dup := buses[b.Name]; dup {
			bad(key+".name", "%q is already used by buses[%d]", b.Name, j)
		}
		buses[b.Name] = i
		switch b.Type {
		case BusRTU:
			if err := b.Serial.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s.serial.%w", key, err))
			}
			if b.Address != "" {
				bad(key+".address", "%q is for tcp buses; an rtu bus uses serial.device", b.Address)
			}
		case BusTCP:
			if _, _, err := net.SplitHostPort(b.Address); err != nil {
				bad(key+".address", "%q is not host:port", b.Address)
			}
			if b.MaxInFlight < 1 || b.MaxInFlight > 64 {
				bad(key+".max_in_flight", "%d out of range 1..64", b.MaxInFlight)
			}
		default:
			bad(key+".type", "%q is not rtu or tcp", b.Type)
		}
		if b.Timeout < time.Millisecond || b.Timeout > time.Minute {
			bad(key+".timeout", "%s out of range 1ms..1m", b.Timeout)
		}
		if b.ReopenDelay < 10*time.Millisecond || b.ReopenDelay > 10*time.Minute {
			bad(key+".reopen_delay", "%s out of range 10ms..10m", b.ReopenDelay)
		}
		if b.DiagnosticsPerMinute < 0 || b.DiagnosticsPerMinute > 6000 {
			bad(key+".diagnostics_per_minute", "%d out of range 0..6000", b.DiagnosticsPerMinute)
		}
		if b.LiveReadsPerMinute < 0 || b.LiveReadsPerMinute > 6000 {
			bad(key+".live_reads_per_minute", "%d out of range 0..6000", b.LiveReadsPerMinute)
		}
	}
	devices := map[string]int{}
	for i, d := range c.Devices {
		key := fmt.Sprintf("devices[%d]", i)
		if !nameRE.MatchString(d.Name) {
			bad(key+".name", "%q is not a name (a letter, then letters, digits, _ or -)", d.Name)
		} else if j, dup := devices[d.Name]; dup {
			bad(key+".name", "%q is already used by devices[%d]", d.Name, j)
		}
		devices[d.Name] = i
		bi, ok := buses[d.Bus]
		switch {
		case !ok:
			bad(key+".bus", "%q names no bus in inputs.modbus.buses", d.Bus)
		case c.Buses[bi].Type == BusRTU && (d.Unit < 1 || d.Unit > 247):
			bad(key+".unit", "%d out of range 1..247 (0 is broadcast)", d.Unit)
		case d.Unit < 0 || d.Unit > 255:
			bad(key+".unit", "%d out of range 0..255", d.Unit)
		}
		if d.Interval < 10*time.Millisecond {
			bad(key+".interval", "%s is below 10ms", d.Interval)
		}
		if d.Retries < 0 || d.Retries > 10 {
			bad(key+".retries", "%d out of range 0..10", d.Retries)
		}
		if d.Coalesce != CoalesceOn && d.Coalesce != CoalesceOff {
			bad(key+".coalesce", "%q is not on or off", d.Coalesce)
		}
		if d.MaxGap < 0 || d.MaxGap > 124 {
			bad(key+".max_gap", "%d out of range 0..124", d.MaxGap)
		}
		if d.DeadAfter < 1 {
			bad(key+".dead_after", "%d is below 1", d.DeadAfter)
		}
		if d.MaxBackoff < 0 {
			bad(key+".max_backoff", "%s is negative", d.MaxBackoff)
		}
		if d.BusyBackoff < time.Millisecond || d.BusyBackoff > time.Minute {
			bad(key+".busy_backoff", "%s out of range 1ms..1m", d.BusyBackoff)
		}
		if d.BusyTimeout < 0 || d.BusyTimeout > 10*time.Minute {
			bad(key+".busy_timeout", "%s out of range 0..10m", d.BusyTimeout)
		}
		if _, err := event.ParsePriority(d.Priority); err != nil {
			bad(key+".priority", "%q is not normal, critical or bulk", d.Priority)
		}
		if len(d.Registers) == 0 {
			bad(key+".registers", "empty: a device needs at least one register")
		}
		names := map[string]int{}
		for j, r := range d.Registers {
			rkey := fmt.Sprintf("%s.registers[%d]", key, j)
			if !nameRE.MatchString(r.Name) {
				bad(rkey+".name", "%q is not a name (a letter, then letters, digits, _ or -)", r.Name)
			} else if slices.Contains(reserved, r.Name) {
				bad(rkey+".name", "%q is a field every reading has already", r.Name)
			} else if k, dup := names[r.Name]; dup {
				bad(rkey+".name", "%q is already used by registers[%d]", r.Name, k)
			}
			names[r.Name] = j
			if err := r.validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s.%w", rkey, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (r RegisterConfig) validate() error {
	if !slices.Contains(tables, r.Register) {
		return fmt.Errorf("register: %q is not coil, discrete, input or holding", r.Register)
	}
	t := r.dataType()
	if !slices.Contains(dataTypes, t) {
		return fmt.Errorf("type: %q is not bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string or bitfield", r.Type)
	}
	if r.isBit() && t != "bool" {
		return fmt.Errorf("type: %q on a %s; coils and discrete inputs are bool", r.Type, r.Register)
	}
	if r.Order != "" && !slices.Contains(orders, r.Order) {
		return fmt.Errorf("order: %q is not ABCD, CDAB, BADC or DCBA", r.Order)
	}
	switch t {
	case "string":
		if r.Length < 1 || r.Length > modbus.MaxReadRegisters {
			return fmt.Errorf("length: %d out of range 1..%d registers for a string", r.Length, modbus.MaxReadRegisters)
		}
	case "bitfield":
		if r.Length != 0 && r.Length != 1 && r.Length != 2 {
			return fmt.Errorf("length: %d is not 1 or 2 registers for a bitfield", r.Length)
		}
		if len(r.Bits) == 0 {
			return errors.New("bits: a bitfield names at least one bit")
		}
		seen := map[string]bool{}
		for k, b := range r.Bits {
			if b.Bit < 0 || b.Bit >= 16*r.count() {
				return fmt.Errorf("bits[%d].bit: %d out of range 0..%d", k, b.Bit, 16*r.count()-1)
			}
			if !nameRE.MatchString(b.Name) || seen[b.Name] {
				return fmt.Errorf("bits[%d].name: %q is not a name or is used twice", k, b.Name)
			}
			seen[b.Name] = true
		}
	default:
		if r.Length != 0 {
			return fmt.Errorf("length: only strings and bitfields take a length (%s is %d registers)", t, r.count())
		}
	}
	if t != "bitfield" && len(r.Bits) > 0 {
		return fmt.Errorf("bits: only a bitfield has named bits (type is %s)", t)
	}
	if (t == "string" || t == "bool" || t == "bitfield") && (r.Scale != 0 && r.Scale != 1 || r.Offset != 0) {
		return fmt.Errorf("scale: a %s cannot be scaled", t)
	}
	if r.Interval != 0 && r.Interval < 10*time.Millisecond {
		return fmt.Errorf("interval: %s is below 10ms (0: the device's)", r.Interval)
	}
	if r.Address < 0 || r.Address+r.count()-1 > maxRegisterAddress {
		return fmt.Errorf("address: %d (+%d) beyond 0..65535", r.Address, r.count())
	}
	return nil
}

func (r RegisterConfig) isBit() bool { return r.Register == "coil" || r.Register == "discrete" }

func (r RegisterConfig) dataType() string {
	if r.Type != "" {
		return r.Type
	}
	if r.isBit() {
		return "bool"
	}
	return "uint16"
}

// count is how many registers (or bits) the value spans.
func (r RegisterConfig) count() int {
	switch r.dataType() {
	case "int32", "uint32", "float32":
		return 2
	case "int64", "uint64", "float64":
		return 4
	case "string":
		return r.Length
	case "bitfield":
		return max(r.Length, 1)
	}
	return 1
}
