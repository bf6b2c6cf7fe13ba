//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
)

// A simulated fleet for the fleet page: each gateway speaks the uplink
// protocol to the real collector with its own certificate and sends the
// records a gateway sends (the shapes of gateway/telemetry.go,
// gateway/link.go, gateway/clockwatch.go, sensors/modbus/poll/telemetry.go
// and gateway/board.go), stamped over a past stretch (its backlog, as a
// gateway delivers after being away) and then live.

type profile int

const (
	healthy profile = iota
	lossy
	outage // delivers its past, then goes dark
	emi    // a Modbus bus picking up noise
	hostileStrings
	tamperOpen
	holdover
)

const (
	simEndpoint = "tls://head-end.example.net:7443"
	hostileHost = `<script>alert("host")</script>`
	hostileBus  = `"><img src=x onerror=alert(1)>`
	hostileEP   = `'><svg/onload=alert(2)>`
	hostileMsg  = `</td></tr><script>alert(3)</script>`
	// hostileSinkID is a gateway id no certificate can carry
	// (pki.ValidateID refuses it): it reaches the store from the sink
	// (a tampered file, or a forged stream), which the store rebuilds
	// from at start.
	hostileSinkID = `<script>alert("id")</script>`
)

type simGateway struct {
	id    string
	prof  profile
	rng   *rand.Rand
	seq   uint64
	conn  *tls.Conn
	br    *bufio.Reader
	comp  *uplink.Compressor
	boot  string
	ack   time.Time
	state simState
}

// simState is what the gateway's telemetry counts up as it goes.
type simState struct {
	outage     float64
	reconnects uint64
	crc        uint64
	backlog    int64
}

func (g *simGateway) quality(at time.Time) event.Quality {
	q := event.Quality{Source: event.TimePTP, State: event.ClockLocked, ErrorBound: 150 + int64(g.rng.IntN(700))}
	if g.prof == holdover {
		q.State, q.ErrorBound = event.ClockHoldover, 25_000+int64(at.Unix()%600)*40
	}
	return q
}

func (g *simGateway) host() string {
	if g.prof == hostileStrings {
		return hostileHost
	}
	return g.id + ".site.example.net"
}

// minute is one telemetry interval's records, stamped at.
func (g *simGateway) minute(at time.Time, i int) []event.Event {
	q := g.quality(at)
	base := event.Event{Time: at.UnixNano(), Quality: q, Kind: event.KindTelemetry, Severity: event.SevInfo,
		Priority: event.PriorityNormal, Host: g.host()}
	rtt, loss, goodput := 18+6*math.Sin(float64(i)/9)+g.rng.Float64()*4, 0.0, 2.4e6+3e5*math.Sin(float64(i)/13)
	switch g.prof {
	case lossy:
		loss = 0.03 + 0.08*math.Abs(math.Sin(float64(i)/7)) + 0.02*g.rng.Float64()
		rtt, goodput = 180+120*math.Abs(math.Sin(float64(i)/11))+g.rng.Float64()*40, 2.5e5+1e5*g.rng.Float64()
		g.state.backlog = 400 + int64(300*math.Abs(math.Sin(float64(i)/17)))
	case outage:
		if i%37 == 20 {
			g.state.outage += 95
			g.state.reconnects++
		}
	default:
		g.state.backlog = int64(g.rng.IntN(12))
	}
	oldest := 0.0
	if g.state.backlog > 0 {
		oldest = 0.3 + float64(g.state.backlog)/40
	}
	ep := simEndpoint
	if g.prof == hostileStrings {
		ep = hostileEP
	}
	spool := base
	spool.Source, spool.Message = "weir:spool", "spool"
	spool.Fields = []event.Field{event.Int("backlog_records", g.state.backlog), event.Int("backlog_bytes", g.state.backlog*310),
		event.Int("used_bytes", g.state.backlog*420), event.Int("max_bytes", 1<<30), event.Int("disk_bytes", 64<<20),
		event.Uint("commits", uint64(i*60)), event.Uint("appended", uint64(i*130)), event.Int("disk_free_bytes", 12<<30),
		event.Int("budget_bytes", 11<<30), event.Bool("intake_held", false), event.Uint("quarantined", 0),
		event.Float("oldest_unacked_seconds", oldest)}
	link := base
	link.Source, link.Message = "weir:uplink", "link "+ep+" connected"
	link.Fields = []event.Field{event.Str("endpoint", ep), event.Str("transport", "tls"), event.Str("state", "connected"),
		event.Bool("active", true), event.Str("mode", "failover"), event.Float("srtt_ms", rtt), event.Float("rttvar_ms", rtt/8),
		event.Str("rtt_source", "tcp_info"), event.Float("ack_latency_ms", rtt+3), event.Float("loss_1m", loss),
		event.Float("loss_15m", loss*0.8), event.Str("loss_source", "tcp_info"), event.Uint("segments_sent", uint64(i*900)),
		event.Uint("segments_retransmitted", uint64(float64(i*900)*loss)), event.Float("goodput_bps", goodput),
		event.Float("records_acked_per_second", 2.1), event.Float("bytes_acked_per_second", goodput/8),
		event.Uint("records_acked", uint64(i*130)), event.Uint("bytes_acked", uint64(i*40000)), event.Uint("handshakes", 1+g.state.reconnects),
		event.Uint("handshake_failures", 0), event.Uint("reconnects", g.state.reconnects), event.Float("outage_seconds", g.state.outage),
		event.Int("backlog_records", g.state.backlog), event.Int("backlog_bytes", g.state.backlog*310),
		event.Float("oldest_unacked_seconds", oldest), event.Float("cert_expiry_days", 412), event.Float("ca_expiry_days", 3400)}
	bus := base
	busName := "rs485-1"
	if g.prof == hostileStrings {
		busName = hostileBus
	}
	fer := 0.0
	if g.prof == emi && i > 10 {
		fer = 0.02 + 0.1*math.Abs(math.Sin(float64(i)/5))
		g.state.crc += uint64(fer * 60)
	}
	bus.Source, bus.Message = "modbus:"+busName, fmt.Sprintf("modbus bus %s (/dev/ttyS1) up", busName)
	bus.Fields = []event.Field{event.Str("bus", busName), event.Str("line", "/dev/ttyS1"), event.Str("state", "up"),
		event.Uint("polls", uint64(i*60)), event.Uint("polls_failed", g.state.crc/3), event.Uint("attempts", uint64(i*60)+g.state.crc),
		event.Uint("retries", g.state.crc), event.Uint("timeouts", 0), event.Uint("exceptions", 0), event.Uint("crc_errors", g.state.crc),
		event.Uint("short_frames", 0), event.Uint("overlong_frames", 0), event.Uint("other_frame_errors", 0),
		event.Float("frame_error_rate_1m", fer), event.Float("frame_error_rate_15m", fer*0.7), event.Uint("diagnostics_suppressed", 0)}
	if fer > 0 {
		bus.Severity = event.SevWarning
	}
	evs := []event.Event{spool, link, bus}
	for k := range 2 {
		r := base
		r.Time = at.Add(time.Duration(k) * 30 * time.Second).UnixNano()
		r.Kind, r.Source, r.Message, r.Checksum = event.KindReading, "modbus:flow-meter", "flow-meter", event.ChecksumOK
		r.Fields = []event.Field{event.Float("flow_m3h", 40+10*math.Sin(float64(i)/20)), event.Float("pressure_bar", 3.1)}
		evs = append(evs, r)
	}
	if g.prof == emi && fer > 0 && i%3 == 0 {
		d := base
		d.Source, d.Severity, d.Checksum = "modbus:"+busName, event.SevWarning, event.ChecksumBad
		d.Message = "modbus crc on /dev/ttyS1 from flow-meter unit 7 (holding 40001+4): 07 03 08 00 2a ff 13"
		d.Fields = []event.Field{event.Str("device", "flow-meter"), event.Str("bus", busName), event.Str("line", "/dev/ttyS1"),
			event.Uint("unit", 7), event.Str("request", "holding 40001+4"), event.Str("verdict", "crc"), event.Str("raw_hex", "0703080002aff13")}
		evs = append(evs, d)
	}
	return evs
}

// clock is a weir:clock transition record.
func (g *simGateway) clock(at time.Time, from, to string, offset int64) event.Event {
	ev := event.Event{Time: at.UnixNano(), Quality: g.quality(at), Source: "weir:clock", Kind: event.KindTelemetry,
		Severity: event.SevInfo, Priority: event.PriorityNormal, Host: g.host(), Message: "clock " + from + " → " + to,
		Fields: []event.Field{event.Str("from", from), event.Str("to", to), event.Str("mode", "builtin"),
			event.Int("error_bound_ns", 400+int64(g.rng.IntN(300))), event.Int("offset_ns", offset), event.Int("path_delay_ns", 5200),
			event.Str("grandmaster", "00:1b:19:ff:fe:00:00:01")}}
	if from == "locked" {
		ev.Severity = event.SevWarning
	}
	return ev
}

func (g *simGateway) alert(at time.Time, source, msg string, fields ...event.Field) event.Event {
	return event.Event{Time: at.UnixNano(), Quality: g.quality(at), Source: source, Kind: event.KindAlert, Severity: event.SevCritical,
		Priority: event.PriorityCritical, Host: g.host(), Message: msg, Fields: fields}
}

// history is the gateway's past: a minute at a time over span, ending at
// end, with the clock's and the board's records where they fall.
func (g *simGateway) history(end time.Time, span time.Duration) []event.Event {
	n := int(span / time.Minute)
	start := end.Add(-span)
	var evs []event.Event
	evs = append(evs, g.clock(start.Add(-time.Second), "start", "locked", 3100))
	for i := range n {
		at := start.Add(time.Duration(i) * time.Minute)
		evs = append(evs, g.minute(at, i)...)
		if i == n-25 && (g.prof == emi || g.prof == holdover) {
			evs = append(evs, g.clock(at.Add(10*time.Second), "locked", "holdover", 850))
			if g.prof == emi {
				evs = append(evs, g.clock(at.Add(3*time.Minute), "holdover", "locked", -420))
			}
		}
		if i%20 == 7 {
			evs = append(evs, g.clock(at.Add(20*time.Second), "locked", "locked", 0)) // no change: never sent
			evs = evs[:len(evs)-1]
		}
	}
	switch g.prof {
	case tamperOpen:
		evs = append(evs, g.alert(end.Add(-4*time.Minute), "weir:board", "tamper: enclosure opened", event.Str("state", "open"),
			event.Str("pin", "GPIO17"), event.Bool("at_start", false), event.Uint("openings", 1), event.Uint("closings", 0)))
	case hostileStrings:
		evs = append(evs, g.alert(end.Add(-3*time.Minute), "weir:spool", hostileMsg))
		cfg := g.minute(end.Add(-2*time.Minute), n)[0]
		cfg.Fields = append(cfg.Fields, event.Str("config_version", `<b>v7</b>`), event.Str("config_result", `"><i>applied`))
		evs = append(evs, cfg)
	}
	return evs
}

// connect opens the session: TLS with the gateway's certificate, Hello,
// Welcome.
func (g *simGateway) connect(ctx context.Context, r *rig) error {
	d := tls.Dialer{Config: r.clientTLS(g.id)}
	c, err := d.DialContext(ctx, "tcp", r.tls)
	if err != nil {
		return fmt.Errorf("%s: dial: %w", g.id, err)
	}
	g.conn, g.br = c.(*tls.Conn), bufio.NewReader(c)
	h := &uplink.Hello{Version: uplink.ProtocolVersion, Gateway: g.id, BootID: g.boot, Floor: 0, MaxRecords: 10000, MaxBytes: 4 << 20}
	if _, err := c.Write(uplink.AppendFrame(nil, h)); err != nil {
		return fmt.Errorf("%s: hello: %w", g.id, err)
	}
	m, err := g.read()
	if err != nil {
		return err
	}
	w, ok := m.(*uplink.Welcome)
	if !ok {
		return fmt.Errorf("%s: got %T, want Welcome", g.id, m)
	}
	if g.seq <= w.Highest {
		g.seq = w.Highest + 1
	}
	return nil
}

func (g *simGateway) read() (uplink.Message, error) {
	_ = g.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	t, body, _, err := uplink.ReadFrame(g.br, nil, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("%s: read: %w", g.id, err)
	}
	m, err := uplink.Decode(t, body)
	if err != nil {
		return nil, fmt.Errorf("%s: decode: %w", g.id, err)
	}
	if e, ok := m.(*uplink.Error); ok {
		return nil, fmt.Errorf("%s: collector says %w", g.id, e)
	}
	return m, nil
}

// deliver sends evs as a gateway does: a collector that says it is busy
// (over its memory budget while the fleet comes up on a loaded machine)
// is left and connected to again after a back-off, and what its Welcome
// says it holds is not sent twice.
func (g *simGateway) deliver(ctx context.Context, r *rig, evs []event.Event) error {
	wait := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		var err error
		if g.conn == nil {
			next := g.seq
			err = g.connect(ctx, r)
			if err == nil && g.seq > next {
				// Records the collector holds from an earlier attempt.
				evs = evs[min(len(evs), int(g.seq-next)):]
			}
		}
		if err == nil {
			first := g.seq
			err = g.send(evs)
			evs = evs[min(len(evs), int(g.seq-first)):]
			if err == nil {
				return nil
			}
		}
		var ue *uplink.Error
		if !errors.As(err, &ue) || ue.Code != uplink.ErrBusy || attempt >= 30 || ctx.Err() != nil {
			return err
		}
		if g.conn != nil {
			_ = g.conn.Close()
			g.conn = nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// send delivers evs in batches and waits for each ack.
func (g *simGateway) send(evs []event.Event) error {
	for len(evs) > 0 {
		n := min(len(evs), 2000)
		var payload []byte
		for i := range evs[:n] {
			b, err := evs[i].MarshalBinary()
			if err != nil {
				return err
			}
			payload = uplink.AppendRecord(payload, b)
		}
		d := &uplink.Data{First: g.seq, Count: uint64(n), Codec: uplink.CodecZstd, Payload: g.comp.Compress(nil, payload)}
		if _, err := g.conn.Write(uplink.AppendFrame(nil, d)); err != nil {
			return fmt.Errorf("%s: data: %w", g.id, err)
		}
		for {
			m, err := g.read()
			if err != nil {
				return err
			}
			if a, ok := m.(*uplink.Ack); ok {
				if a.Cumulative != g.seq+uint64(n)-1 {
					return fmt.Errorf("%s: ack %d, want %d", g.id, a.Cumulative, g.seq+uint64(n)-1)
				}
				break
			}
		}
		g.seq += uint64(n)
		g.ack = time.Now()
		evs = evs[n:]
	}
	return nil
}

type simFleet struct {
	gws []*simGateway
	ids map[profile][]string
}

// newSimFleet issues a certificate per gateway and gives each a profile:
// one in an outage, one with EMI, one sending hostile strings, one with
// its enclosure open, one in clock holdover, every tenth lossy, the rest
// healthy.
func newSimFleet(t *testing.T, pkiDir string, n int) *simFleet {
	f := &simFleet{ids: map[profile][]string{}}
	special := []profile{outage, emi, hostileStrings, tamperOpen, holdover}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		prof := healthy
		if i < len(special) {
			prof = special[i]
		} else if i%10 == 5 {
			prof = lossy
		}
		id := fmt.Sprintf("site-%04d", i+1)
		switch prof {
		case outage:
			id = "pump-station-outage"
		case emi:
			id = "reservoir-emi"
		case hostileStrings:
			id = "gw-hostile"
		}
		g := &simGateway{id: id, prof: prof, rng: rand.New(rand.NewPCG(uint64(i), 7)), seq: 1_000_000, boot: fmt.Sprintf("boot-%d", i)}
		f.gws = append(f.gws, g)
		f.ids[prof] = append(f.ids[prof], id)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, _, err := pki.IssueGateway(pkiDir, id, pki.Options{})
			mu.Lock()
			defer mu.Unlock()
			require.NoError(t, err)
		})
	}
	wg.Wait()
	return f
}

// run connects every gateway (a few handshakes at a time, as a fleet
// coming up does), delivers its history, then sends live minutes every
// tick until ctx ends; the outage gateway goes dark after its history.
func (f *simFleet) run(ctx context.Context, t *testing.T, r *rig, span time.Duration, tick time.Duration, delivered chan<- struct{}) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	errs := make(chan error, len(f.gws))
	var ready sync.WaitGroup
	ready.Add(len(f.gws))
	now := time.Now()
	for _, g := range f.gws {
		wg.Go(func() {
			comp, err := uplink.NewCompressor(uplink.CodecZstd, 1)
			if err != nil {
				errs <- err
				ready.Done()
				return
			}
			g.comp = comp
			defer comp.Close()
			sem <- struct{}{}
			err = g.deliver(ctx, r, g.history(now, span))
			<-sem
			ready.Done()
			if err != nil {
				errs <- err
				return
			}
			defer func() {
				if g.conn != nil {
					_ = g.conn.Close()
				}
			}()
			if g.prof == outage {
				return
			}
			i := int(span / time.Minute)
			tk := time.NewTicker(tick)
			defer tk.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
				i++
				if err := g.deliver(ctx, r, g.minute(time.Now(), i)); err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
			}
		})
	}
	ready.Wait()
	close(delivered)
	go func() {
		wg.Wait()
		close(errs)
	}()
	t.Cleanup(func() {
		for err := range errs {
			t.Errorf("simulated gateway: %v", err)
		}
	})
}

// seedSink writes records of a gateway no certificate could name into
// the sink before the collector starts, as a tampered sink would hold.
func seedSink(t *testing.T, path string, end time.Time) {
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o750))
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	g := &simGateway{id: hostileSinkID, prof: healthy, rng: rand.New(rand.NewPCG(99, 7))}
	w := bufio.NewWriter(f)
	for i, ev := range g.history(end, 30*time.Minute) {
		ev.Seq, ev.Gateway = uint64(i+1), hostileSinkID
		b, err := json.Marshal(&ev)
		require.NoError(t, err)
		w.Write(append(b, '\n'))
	}
	require.NoError(t, w.Flush())
}

// sitesFile writes the operator's sites file for the fleet: a site name,
// a region and a feeder per gateway.
func (f *simFleet) sitesFile(t *testing.T) string {
	regions := []string{"north", "south", "east", "west", "river", "hills"}
	kinds := []string{"Pump station", "Reservoir", "Substation", "Lift station", "Treatment works"}
	var b strings.Builder
	for i, g := range f.gws {
		site := fmt.Sprintf("%s %d", kinds[i%len(kinds)], i+1)
		if g.prof == hostileStrings {
			site = `<img src=x onerror=alert("site")>`
		}
		fmt.Fprintf(&b, "%s: {site: %q, region: %s, feeder: F%02d}\n", g.id, site, regions[i%len(regions)], i%17+1)
	}
	p := filepath.Join(t.TempDir(), "sites.yaml")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o644))
	return p
}
