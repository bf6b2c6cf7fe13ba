package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirgw/weir/sensors/line"
	"github.com/weirgw/weir/sensors/modbus/poll"
)

// Sensors is what `weir sensors` shows: every Modbus bus and device, and
// every line sensor.
type Sensors struct {
	Gateway string       `json:"gateway"`
	Modbus  poll.Status  `json:"modbus"`
	Lines   []LineSensor `json:"lines"`
	At      time.Time    `json:"at"`
}

// LineSensor is one line sensor's counters.
type LineSensor struct {
	Name   string     `json:"name"`
	Device string     `json:"device"`
	Stats  line.Stats `json:"stats"`
}

// Sensors takes a snapshot.
func (g *Gateway) Sensors() Sensors {
	p := g.now()
	s := Sensors{Gateway: g.cfg.Gateway.ID, Modbus: p.modbusStatus(), At: time.Now()}
	for _, l := range p.lines {
		s.Lines = append(s.Lines, LineSensor{Name: l.sensor.Name(), Device: l.device, Stats: l.sensor.Stats()})
	}
	return s
}

// serveSensorRead does a one-off read of ?device= between the bus's polls,
// within the bus's live_reads_per_minute (429 beyond).
func (g *Gateway) serveSensorRead(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	res, err := g.now().modbusRead(ctx, r.URL.Query().Get("device"))
	if err != nil {
		code := http.StatusServiceUnavailable // the bus is down or busy
		switch {
		case errors.Is(err, poll.ErrNoDevice):
			code = http.StatusNotFound
		case errors.Is(err, poll.ErrLiveReadLimit):
			code = http.StatusTooManyRequests
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// FetchSensors asks the gateway listening on socket for its sensors.
func FetchSensors(ctx context.Context, socket string) (*Sensors, error) {
	var s Sensors
	if err := get(ctx, socket, "/v1/sensors", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ReadSensor asks the running gateway for a one-off read of a Modbus
// device.
func ReadSensor(ctx context.Context, socket, device string) (*poll.ReadResult, error) {
	var r poll.ReadResult
	if err := get(ctx, socket, "/v1/sensors/read?device="+url.QueryEscape(device), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// sensorsCollector exports the EMI accounting of every bus and device.
type sensorsCollector struct{ g *Gateway }

var (
	descModbusBus = prometheus.NewDesc("weir_modbus_bus_events_total",
		"Modbus transactions on a bus by outcome: attempts, responses, retries, timeouts, exceptions, crc_errors, short_frames, overlong_frames, other_frame_errors, transport_errors, polls, polls_failed.",
		[]string{"bus", "event"}, nil)
	descModbusDevice = prometheus.NewDesc("weir_modbus_device_events_total",
		"Modbus transactions with a device by outcome (as weir_modbus_bus_events_total).", []string{"bus", "device", "event"}, nil)
	descModbusBusFER = prometheus.NewDesc("weir_modbus_bus_frame_error_ratio",
		"Frame errors per attempt on a bus over the window (1m, 15m).", []string{"bus", "window"}, nil)
	descModbusDeviceFER = prometheus.NewDesc("weir_modbus_device_frame_error_ratio",
		"Frame errors per attempt with a device over the window (1m, 15m).", []string{"bus", "device", "window"}, nil)
	descModbusSuppressed = prometheus.NewDesc("weir_modbus_diagnostics_suppressed_total",
		"Diagnostic records of damaged frames not spooled because of the bus's rate limit.", []string{"bus"}, nil)
	descModbusUp = prometheus.NewDesc("weir_modbus_device_up",
		"1 if the device's last poll succeeded, 0 if it failed or the device is backed off as dead.", []string{"bus", "device"}, nil)
	descLineLines = prometheus.NewDesc("weir_line_sensor_lines_total",
		"Lines from a line sensor by checksum verdict (ok, none, mismatch, missing, malformed).", []string{"sensor", "verdict"}, nil)
)

func (sensorsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descModbusBus, descModbusDevice, descModbusBusFER, descModbusDeviceFER,
		descModbusSuppressed, descModbusUp, descLineLines} {
		ch <- d
	}
}

type namedCount struct {
	name string
	n    uint64
}

func counterPairs(c poll.Counters) []namedCount {
	return []namedCount{{"attempts", c.Attempts}, {"responses", c.Responses}, {"retries", c.Retries}, {"timeouts", c.Timeouts},
		{"exceptions", c.Exceptions}, {"crc_errors", c.CRCErrors}, {"short_frames", c.ShortFrames},
		{"overlong_frames", c.OverlongFrames}, {"other_frame_errors", c.OtherFrames},
		{"transport_errors", c.TransportErrors}, {"polls", c.Polls}, {"polls_failed", c.PollsFailed}}
}

func (c sensorsCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.g.now()
	st := p.modbusStatus()
	for _, b := range st.Buses {
		for _, p := range counterPairs(b.Counters) {
			ch <- prometheus.MustNewConstMetric(descModbusBus, prometheus.CounterValue, float64(p.n), b.Name, p.name)
		}
		ch <- prometheus.MustNewConstMetric(descModbusBusFER, prometheus.GaugeValue, b.FrameErrorRate1m, b.Name, "1m")
		ch <- prometheus.MustNewConstMetric(descModbusBusFER, prometheus.GaugeValue, b.FrameErrorRate15m, b.Name, "15m")
		ch <- prometheus.MustNewConstMetric(descModbusSuppressed, prometheus.CounterValue, float64(b.DiagnosticsSuppressed), b.Name)
		for _, d := range b.Devices {
			for _, p := range counterPairs(d.Counters) {
				ch <- prometheus.MustNewConstMetric(descModbusDevice, prometheus.CounterValue, float64(p.n), b.Name, d.Name, p.name)
			}
			ch <- prometheus.MustNewConstMetric(descModbusDeviceFER, prometheus.GaugeValue, d.FrameErrorRate1m, b.Name, d.Name, "1m")
			ch <- prometheus.MustNewConstMetric(descModbusDeviceFER, prometheus.GaugeValue, d.FrameErrorRate15m, b.Name, d.Name, "15m")
			up := 0.0
			if d.State == "ok" {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descModbusUp, prometheus.GaugeValue, up, b.Name, d.Name)
		}
	}
	for _, li := range p.lines {
		l := li.sensor
		s := l.Stats()
		for _, v := range []namedCount{{"ok", s.OK}, {"none", s.None}, {"mismatch", s.Mismatches}, {"missing", s.Missing}, {"malformed", s.Malformed}} {
			ch <- prometheus.MustNewConstMetric(descLineLines, prometheus.CounterValue, float64(v.n), l.Name(), v.name)
		}
	}
}
