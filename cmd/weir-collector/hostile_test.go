//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
	"github.com/weirgw/weir/uplink/rudp"
	"github.com/weirgw/weir/uplink/sender"
)

// The hostile-client suite runs the real weir-collector binary on
// loopback against each attack of issue 21's findings, with a legitimate
// gateway (uplink/sender over a real spool) connecting while the attack
// runs and delivering throughout. For every case the collector must stay
// up, its peak RSS (VmHWM) stay under rssBudget, the gateway connect
// within connectWithin, and every one of its records be in the sink
// exactly once.
const (
	// rssBudget is the peak resident memory the collector may reach in
	// any case. It holds about 15 MiB idle; the largest cases measured
	// are the DTLS flood (its 128 handshakes under way, 30 to 50 MiB)
	// and the half-sent frames (about 30 MiB, bounded by the sessions per
	// gateway and the frame bound). Before issue 21 the count bomb alone
	// took it to 2 GiB and 16 half-sent frames added 135 MB.
	rssBudget     = 96 << 20
	connectWithin = 2 * time.Second
	attackFor     = 2500 * time.Millisecond
	legit         = "gw-legit"
	stolen        = "gw-stolen"
)

var buildOnce struct {
	sync.Once
	bin string
	err error
}

// collectorBinary builds weir-collector once per test binary, in binDir
// (TestMain's, so it outlives every test that uses it).
func collectorBinary(t *testing.T) string {
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildOnce.err = fmt.Errorf("the go command is needed to build weir-collector: %w", err)
			return
		}
		buildOnce.bin = filepath.Join(binDir, "weir-collector")
		cmd := exec.Command(goBin, "build", "-o", buildOnce.bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildOnce.err)
	return buildOnce.bin
}

// rig is one collector process and the PKI around it.
type rig struct {
	t                 *testing.T
	bin, pki          string
	sink              string
	tls, dtls, metric string
	ui                string // the fleet page, with --ui-listen
	cmd               *exec.Cmd
	exited            chan struct{}
	logs              *lockedBuffer

	probeMu         sync.Mutex
	probes, probeOK int
	probeTimes      []time.Duration
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func provisionPKI(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "pki")
	require.NoError(t, pki.InitCA(dir, "hostile", pki.Options{}))
	_, _, err := pki.IssueCollector(dir, "localhost", []string{"127.0.0.1"}, pki.Options{})
	require.NoError(t, err)
	for _, id := range []string{legit, stolen} {
		_, _, err := pki.IssueGateway(dir, id, pki.Options{})
		require.NoError(t, err)
	}
	return dir
}

var addrRE = regexp.MustCompile(`msg="(collector|metrics|fleet page) listening"(?: transport=(\w+))? addr=([0-9.:]+)`)

func startRig(t *testing.T, pkiDir string, extra ...string) *rig {
	return startRigSink(t, pkiDir, filepath.Join(t.TempDir(), "records.jsonl"), extra...)
}

// startRigSink starts the collector on the sink at sink (which may hold
// records already).
func startRigSink(t *testing.T, pkiDir, sink string, extra ...string) *rig {
	r := &rig{t: t, bin: collectorBinary(t), pki: pkiDir, sink: sink,
		exited: make(chan struct{}), logs: &lockedBuffer{}}
	want := 3
	if slices.Contains(extra, "--ui-listen") {
		want++
	}
	cert, key := pki.CollectorFiles(pkiDir, "localhost")
	args := append([]string{"run", "--listen", "127.0.0.1:0", "--listen-dtls", "127.0.0.1:0", "--listen-metrics", "127.0.0.1:0",
		"--ca", filepath.Join(pkiDir, pki.CACertFile), "--cert", cert, "--key", key, "--sink", r.sink,
		"--handshake-timeout", "3s", "--deny-check", "200ms"}, extra...)
	r.cmd = exec.Command(r.bin, args...)
	pr, pw := io.Pipe()
	r.cmd.Stderr = pw
	require.NoError(t, r.cmd.Start())
	go func() {
		_ = r.cmd.Wait()
		pw.Close()
		close(r.exited)
	}()
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		n := 0
		for sc.Scan() {
			line := sc.Text()
			_, _ = r.logs.Write([]byte(line + "\n"))
			if m := addrRE.FindStringSubmatch(line); m != nil {
				switch {
				case m[1] == "metrics":
					r.metric = m[3]
				case m[1] == "fleet page":
					r.ui = m[3]
				case m[2] == "tls":
					r.tls = m[3]
				case m[2] == "dtls":
					r.dtls = m[3]
				}
				if n++; n == want {
					close(found)
				}
			}
		}
	}()
	select {
	case <-found:
	case <-r.exited:
		t.Fatalf("weir-collector exited at start: %s", r.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("weir-collector did not listen: %s", r.logs.String())
	}
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.exited
	})
	return r
}

// peakRSS is the collector's VmHWM, from /proc.
func (r *rig) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	require.NoError(r.t, err)
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	require.NotNil(r.t, m, "no VmHWM in /proc/%d/status", r.cmd.Process.Pid)
	kb, err := strconv.ParseInt(string(m[1]), 10, 64)
	require.NoError(r.t, err)
	return kb << 10
}

// metrics scrapes the collector and sums the samples of each metric name
// whose labels contain every filter.
func (r *rig) metrics() map[string]float64 {
	resp, err := http.Get("http://" + r.metric + "/metrics")
	require.NoError(r.t, err)
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(r.t, err)
		out[line[:i]] = v
	}
	return out
}

func sum(m map[string]float64, name string, labels ...string) float64 {
	var s float64
next:
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(k, l) {
				continue next
			}
		}
		s += v
	}
	return s
}

func (r *rig) clientTLS(id string) *tls.Config {
	cert, key := pki.GatewayFiles(r.pki, id)
	c, err := uplink.ClientTLS(uplink.TLSConfig{CA: filepath.Join(r.pki, pki.CACertFile), Cert: cert, Key: key}, "localhost")
	require.NoError(r.t, err)
	return c
}

// session is an attacker's hand-driven session: a handshake with id's key
// and the frames given, then reading until the collector closes it.
func (r *rig) session(ctx context.Context, id string, frames ...uplink.Message) (*uplink.Error, error) {
	d := tls.Dialer{Config: r.clientTLS(id)}
	c, err := d.DialContext(ctx, "tcp", r.tls)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var out []byte
	for _, m := range frames {
		out = uplink.AppendFrame(out, m)
	}
	if _, err := c.Write(out); err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	for {
		t, body, _, err := uplink.ReadFrame(br, nil, 1<<20)
		if err != nil {
			return nil, err
		}
		m, err := uplink.Decode(t, body)
		if err != nil {
			return nil, err
		}
		if e, ok := m.(*uplink.Error); ok {
			return e, nil
		}
	}
}

func hello(id string, floor uint64) *uplink.Hello {
	return &uplink.Hello{Version: uplink.ProtocolVersion, Gateway: id, BootID: "attacker", Floor: floor,
		MaxRecords: uplink.MaxBatchRecords, MaxBytes: uplink.MaxBatchBytes}
}

// loop runs f until ctx is done, pausing between runs.
func loop(ctx context.Context, pause time.Duration, f func()) {
	for ctx.Err() == nil {
		f()
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// gateway is the legitimate gateway: a spool fed during the attack and a
// sender delivering it.
type gateway struct {
	sp    *spool.Spool
	s     *sender.Sender
	stop  func()
	mu    sync.Mutex
	seqs  []uint64
	start time.Time
}

// append spools n records; it may run outside the test's goroutine.
func (g *gateway) append(t *testing.T, n int) {
	var recs []spool.Entry
	for i := range n {
		e := event.Event{Message: fmt.Sprintf("legitimate record %d", i), Source: "hostile-suite", Severity: event.SevNotice,
			Quality: event.Quality{ErrorBound: -1}}
		b, err := e.MarshalBinary()
		if !assert.NoError(t, err) {
			return
		}
		recs = append(recs, spool.Entry{Data: b})
	}
	first, err := g.sp.Append(context.Background(), recs, nil)
	if !assert.NoError(t, err) {
		return
	}
	g.mu.Lock()
	for i := range n {
		g.seqs = append(g.seqs, first+uint64(i))
	}
	g.mu.Unlock()
}

func startGateway(t *testing.T, r *rig, transport uplink.Transport) *gateway {
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(t.TempDir(), "spool"), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { sp.Close() })
	g := &gateway{sp: sp}
	g.append(t, 300)
	cfg := uplink.DefaultConfig()
	cert, key := pki.GatewayFiles(r.pki, legit)
	cfg.TLS = uplink.TLSConfig{CA: filepath.Join(r.pki, pki.CACertFile), Cert: cert, Key: key}
	addr := r.tls
	if transport == uplink.TransportDTLS {
		addr = r.dtls
	}
	cfg.Endpoints = []uplink.Endpoint{{Address: addr, ServerName: "localhost", Transport: transport}}
	cfg.ReconnectMin, cfg.ReconnectMax = 50*time.Millisecond, 500*time.Millisecond
	cfg.BatchMaxRecords, cfg.Window, cfg.FlushInterval = 100, 4, 50*time.Millisecond
	cfg.ConnectTimeout = 5 * time.Second
	s, err := sender.New(cfg, legit, "boot-legit", sp, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	g.start = time.Now()
	go func() { defer close(done); _ = s.Run(ctx) }()
	g.s, g.stop = s, func() { cancel(); <-done }
	t.Cleanup(g.stop)
	return g
}

// sinkLines reads the sink: how many times each sequence of gateway gw
// was written, and the collector's own records.
func sinkLines(t *testing.T, path, gw string) (map[uint64]int, []map[string]any) {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	counts := map[uint64]int{}
	var own []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal(line, &rec), "sink line %q", line)
		switch rec["gateway"] {
		case gw:
			counts[uint64(rec["seq"].(float64))]++
		case "@collector":
			own = append(own, rec)
		}
	}
	return counts, own
}

type row struct {
	attack    string
	rss       int64
	delivered int
	expected  int
	refusals  float64
	connect   time.Duration
	logLines  int
}

type hostileCase struct {
	name      string
	transport uplink.Transport // of the legitimate gateway
	// gatewayFirst: the gateway connects before the attack starts and
	// delivers through it (else it connects while the attack runs).
	gatewayFirst bool
	args         []string
	attack       func(ctx context.Context, t *testing.T, r *rig)
	refusals     func(m map[string]float64) float64
	check        func(t *testing.T, r *rig, m map[string]float64)
	// attackFor, when set, is how long the attack may run instead of
	// the suite's attackFor.
	attackFor time.Duration
}

func TestHostileClients(t *testing.T) {
	if testing.Short() {
		t.Skip("the hostile-client suite runs the collector binary for about half a minute; not in -short")
	}
	collectorBinary(t)
	two, err := os.ReadFile("../../uplink/testdata/zstd-two-block.bin")
	require.NoError(t, err)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	require.NoError(t, err)
	countBomb := enc.EncodeAll(make([]byte, 16<<20), nil) // 16 MiB of empty records in a few hundred bytes
	smallBomb := enc.EncodeAll(make([]byte, 1<<20), nil)

	cases := []hostileCase{
		{
			name: "1 two-block zstd frame (GO-2026-6865), stolen key",
			attack: func(ctx context.Context, t *testing.T, r *rig) {
				loop(ctx, 20*time.Millisecond, func() {
					_, _ = r.session(ctx, stolen, hello(stolen, 0), &uplink.Data{First: 1, Count: 7, Codec: uplink.CodecZstd, Payload: two})
				})
			},
			refusals: func(m map[string]float64) float64 {
				return sum(m, "weir_collector_batches_refused_total", `gateway="gw-stolen"`)
			},
		},
		{
			name: fmt.Sprintf("2 count bomb (%d-byte frame, 16 Mi records declared), stolen key", len(uplink.AppendFrame(nil,
				&uplink.Data{First: 1, Count: 1 << 24, Codec: uplink.CodecZstd, Payload: countBomb}))),
			attack: func(ctx context.Context, t *testing.T, r *rig) {
				i := 0
				loop(ctx, 20*time.Millisecond, func() {
					d := &uplink.Data{First: 1, Count: 1 << 24, Codec: uplink.CodecZstd, Payload: countBomb}
					if i++; i%2 == 0 {
						d = &uplink.Data{First: 1, Count: 10000, Codec: uplink.CodecZstd, Payload: smallBomb}
					}
					_, _ = r.session(ctx, stolen, hello(stolen, 0), d)
				})
			},
			refusals: func(m map[string]float64) float64 {
				return sum(m, "weir_collector_batches_refused_total", `gateway="gw-stolen"`)
			},
			check: func(t *testing.T, r *rig, _ map[string]float64) {
				counts, _ := sinkLines(t, r.sink, stolen)
				require.Empty(t, counts, "nothing of a refused batch is written")
			},
		},
		{
			name: "3 1,030 idle TCP connections, no certificate",
			attack: func(ctx context.Context, t *testing.T, r *rig) {
				var wg sync.WaitGroup
				for range 1030 {
					wg.Go(func() {
						d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
						loop(ctx, 50*time.Millisecond, func() {
							c, err := d.DialContext(ctx, "tcp", r.tls)
							if err != nil {
								return
							}
							// Idle until the collector gives up on it (or the attack ends).
							stop := context.AfterFunc(ctx, func() { c.Close() })
							_, _ = c.Read(make([]byte, 1))
							stop()
							c.Close()
						})
					})
				}
				wg.Wait()
			},
			refusals: func(m map[string]float64) float64 {
				return sum(m, "weir_collector_handshakes_refused_total", `transport="tls"`)
			},
			check: func(t *testing.T, r *rig, m map[string]float64) {
				require.Positive(t, sum(m, "weir_collector_handshakes_refused_total", `reason="handshakes_per_addr"`))
			},
		},
		{
			name: "4 resume floor 2^64-2 with the gateway's own key",
			attack: func(ctx context.Context, t *testing.T, r *rig) {
				loop(ctx, 50*time.Millisecond, func() {
					sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
					defer cancel()
					_, _ = r.session(sctx, legit, hello(legit, 1<<64-2))
				})
			},
			refusals: func(m map[string]float64) float64 { return sum(m, "weir_collector_floors_refused_total") },
			check: func(t *testing.T, r *rig, m map[string]float64) {
				_, own := sinkLines(t, r.sink, legit)
				require.NotEmpty(t, own, "a critical record at the sink")
				require.Equal(t, "crit", own[0]["severity"])
				require.Contains(t, own[0]["message"], "declared resume floor 18446744073709551614")
				require.LessOrEqual(t, len(own), 2, "reported once per floor, one a minute at most")
			},
		},
		{
			name: "5a certificate past NotAfter kept alive by pings",
			attack: func(ctx context.Context, t *testing.T, r *rig) {
				// Long enough for the TLS handshake and Hello on a loaded
				// machine: under TLS 1.3 a certificate that expired before
				// the collector verified it fails the handshake after the
				// client's Dial returned, and no session is there to end.
				_, _, err := pki.IssueGateway(r.pki, "gw-short", pki.Options{Validity: 4 * time.Second, Force: true})
				if !assert.NoError(t, err) {
					return
				}
				d := tls.Dialer{Config: r.clientTLS("gw-short")}
				c, err := d.DialContext(ctx, "tcp", r.tls)
				if !assert.NoError(t, err) {
					return
				}
				defer c.Close()
				_, err = c.Write(uplink.AppendFrame(nil, hello("gw-short", 0)))
				assert.NoError(t, err)
				ended := make(chan *uplink.Error, 1)
				go func() {
					br := bufio.NewReader(c)
					for {
						typ, body, _, err := uplink.ReadFrame(br, nil, 1<<20)
						if err != nil {
							close(ended)
							return
						}
						if m, _ := uplink.Decode(typ, body); m != nil {
							if e, ok := m.(*uplink.Error); ok {
								ended <- e
								return
							}
						}
					}
				}()
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case e := <-ended:
						// The collector writes an Error saying why, then
						// closes; with this client's pings unread the close
						// is a reset, which can overtake the Error still in
						// the send buffer. The end itself, at NotAfter, is
						// checked by its counter below.
						if e != nil {
							assert.Equal(t, uplink.ErrSessionEnd, e.Code)
						} else {
							t.Log("the session ended without its Error frame (a reset overtook it)")
						}
						// Reconnecting with the expired certificate fails the handshake.
						loop(ctx, 100*time.Millisecond, func() { _, _ = r.session(ctx, "gw-short", hello("gw-short", 0)) })
						return
					case <-tick.C:
						_, _ = c.Write(uplink.AppendFrame(nil, &uplink.Ping{Nonce: 1}))
					case <-ctx.Done():
						t.Errorf("the session outlived its certificate")
						return
					}
				}
			},
			refusals: func(m map[string]float64) float64 {
				return sum(m, "weir_collector_sessions_ended_total", `reason="cert_expired"`) +
					sum(m, "weir_collector_handshakes_refused_total", `reason="expired"`)
			},
			check: func(t *testing.T, r *rig, m map[string]float64) {
				require.Equal(t, 1.0, sum(m, "weir_collector_sessions_ended_total", `reason="cert_expired"`))
			},
			attackFor: 7 * time.Second,
		},
		{
			name: "5b stolen key revoked (weir-collector pki revoke) while its session is open",
			attack: func(ctx context.Context, t *testing.T, r *rig) {
				ended := make(chan *uplink.Error, 1)
				go func() {
					e, _ := r.session(ctx, stolen, hello(stolen, 0))
					ended <- e
				}()
				time.Sleep(300 * time.Millisecond)
				out, err := exec.Command(r.bin, "pki", "revoke", stolen, "--dir", r.pki, "--note", "hostile suite").CombinedOutput()
				assert.NoError(t, err, "%s", out)
				select {
				case e := <-ended:
					if assert.NotNil(t, e) {
						assert.Equal(t, uplink.ErrSessionEnd, e.Code)
						assert.Contains(t, e.Message, "revoked")
					}
				case <-time.After(2 * time.Second):
					t.Errorf("the revoked gateway's session was not ended")
				}
				loop(ctx, 50*time.Millisecond, func() {
					e, err := r.session(ctx, stolen, hello(stolen, 0))
					if err == nil {
						assert.Equal(t, uplink.ErrIdentity, e.Code)
					}
				})
			},
			refusals: func(m map[string]float64) float64 {
				return sum(m, "weir_collector_sessions_ended_total", `reason="revoked"`) +
					sum(m, "weir_collector_sessions_refused_total", `reason="revoked"`)
			},
		},
		{
			name: "6a 16 half-sent frames of the largest size, stolen key",
			attack: func(ctx context.Context, t *testing.T, r *rig) {
				var wg sync.WaitGroup
				for i := range 16 {
					wg.Go(func() {
						d := tls.Dialer{Config: r.clientTLS(stolen)}
						c, err := d.DialContext(ctx, "tcp", r.tls)
						if err != nil {
							return
						}
						defer c.Close()
						n := uplink.FrameBound(10000, 4<<20) // the collector's defaults
						if i == 0 {
							n = uplink.DefaultMaxFrame // refused on its header
						}
						hdr := append(uplink.AppendFrame(nil, hello(stolen, 0)), byte(n>>24), byte(n>>16), byte(n>>8), byte(n), byte(uplink.MsgData))
						if _, err := c.Write(append(hdr, make([]byte, n/2)...)); err != nil {
							return
						}
						<-ctx.Done()
					})
				}
				wg.Wait()
			},
			refusals: func(m map[string]float64) float64 {
				return sum(m, "weir_collector_sessions_refused_total", `reason="sessions_per_gateway"`) +
					sum(m, "weir_collector_batches_refused_total", `gateway="gw-stolen"`) +
					sum(m, "weir_collector_handshakes_refused_total", `transport="tls"`)
			},
		},
		{
			// A spoofed flood cannot be turned away statelessly in front
			// of pion (DTLS hashes the handshake's message sequence, so the
			// ClientHello pion answers must be the first), so a handshake
			// that starts during the flood must finish its first round
			// trip before 128 newer unverified ones push it out: at 8,000
			// a second that is 16 ms. The gateway here is connected before
			// the flood and delivers through it; fresh handshakes during
			// the flood are tried and reported, not required.
			name:         "6b 20,000 spoofed DTLS ClientHellos (legitimate gateway over DTLS, connected before)",
			transport:    uplink.TransportDTLS,
			gatewayFirst: true,
			attack: func(ctx context.Context, t *testing.T, r *rig) {
				to, err := net.ResolveUDPAddr("udp4", r.dtls)
				if !assert.NoError(t, err) {
					return
				}
				go r.probeDTLS(ctx, t)
				hello := clientHello(t)
				// 20,000 over the attack, paced (8,000 a second) so the
				// flood is the same whether or not the race detector slows
				// this side.
				tick := time.NewTicker(25 * time.Millisecond)
				defer tick.Stop()
				for i := 0; i < 20000 && ctx.Err() == nil; i++ {
					if i%200 == 0 {
						select {
						case <-tick.C:
						case <-ctx.Done():
							return
						}
					}
					src := &net.UDPAddr{IP: net.IPv4(127, byte(1+i>>16), byte(i>>8), byte(2+i%250))}
					c, err := net.DialUDP("udp4", src, to)
					if err != nil {
						continue
					}
					_, _ = c.Write(hello)
					c.Close()
				}
				<-ctx.Done()
			},
			refusals: func(m map[string]float64) float64 {
				return sum(m, "weir_collector_handshakes_refused_total", `transport="dtls"`)
			},
		},
	}

	var (
		mu   sync.Mutex
		rows []row
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := startRig(t, provisionPKI(t), c.args...) // a PKI of its own: 5b revokes gw-stolen
			transport := c.transport
			if transport == "" {
				transport = uplink.TransportTLS
			}
			var (
				g        *gateway
				connect  time.Duration
				attacked = make(chan struct{})
			)
			connected := func(when string) {
				require.Eventually(t, func() bool { return g.s.Status().Connects > 0 }, connectWithin, 5*time.Millisecond,
					"the legitimate gateway did not connect within %s %s: %+v", connectWithin, when, g.s.Status())
				connect = g.s.Status().ConnectedAt.Sub(g.start)
			}
			if c.gatewayFirst {
				g = startGateway(t, r, transport)
				connected("before the attack")
			}
			d := attackFor
			if c.attackFor > 0 {
				d = c.attackFor
			}
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			go func() { defer close(attacked); c.attack(ctx, t, r) }()
			if !c.gatewayFirst {
				time.Sleep(300 * time.Millisecond) // the attack is under way
				g = startGateway(t, r, transport)
				connected("during the attack")
			}
			var feeding atomic.Bool
			feeding.Store(true)
			go func() {
				for feeding.Load() {
					g.append(t, 20)
					time.Sleep(100 * time.Millisecond)
				}
			}()
			<-attacked
			feeding.Store(false)
			time.Sleep(150 * time.Millisecond) // the last append lands
			require.Eventually(t, func() bool { return g.sp.Stats().Records == 0 }, 30*time.Second, 20*time.Millisecond,
				"the legitimate gateway's spool did not drain: %+v %+v", g.sp.Stats(), g.s.Status())

			select {
			case <-r.exited:
				t.Fatalf("weir-collector died: %s", r.logs.String())
			default:
			}
			m := r.metrics()
			rss := r.peakRSS()
			counts, _ := sinkLines(t, r.sink, legit)
			g.mu.Lock()
			seqs := append([]uint64(nil), g.seqs...)
			g.mu.Unlock()
			for _, q := range seqs {
				require.Equal(t, 1, counts[q], "legitimate record %d written %d times", q, counts[q])
			}
			require.Len(t, counts, len(seqs), "no record written that the gateway did not send")
			require.Less(t, rss, int64(rssBudget), "peak RSS %d MiB over the %d MiB budget", rss>>20, rssBudget>>20)
			if c.check != nil {
				c.check(t, r, m)
			}
			refusals := c.refusals(m)
			require.Positive(t, refusals, "the attack's refusals are counted")
			require.Zero(t, sum(m, "weir_collector_session_panics_total"), "v1.20.2 and the bounds leave nothing to panic on")

			g.stop()
			require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
			select {
			case <-r.exited:
			case <-time.After(10 * time.Second):
				t.Fatalf("weir-collector did not stop on SIGTERM")
			}
			require.True(t, r.cmd.ProcessState.Success(), "weir-collector exit: %v\n%s", r.cmd.ProcessState, r.logs.String())
			logLines := strings.Count(r.logs.String(), "\n")
			require.Less(t, logLines, 300, "refusal logs are rate-limited")
			mu.Lock()
			rows = append(rows, row{attack: c.name, rss: rss, delivered: len(counts), expected: len(seqs), refusals: refusals,
				connect: connect, logLines: logLines})
			r.probeMu.Lock()
			if r.probes > 0 {
				t.Logf("fresh DTLS handshakes during the flood: %d of %d within %s (%v)", r.probeOK, r.probes, connectWithin, r.probeTimes)
			}
			r.probeMu.Unlock()
			mu.Unlock()
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| attack | collector peak RSS | legitimate records delivered (exactly once) | refusals counted | gateway connected after | collector log lines |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %.1f MiB | %d of %d | %.0f | %s | %d |\n", r.attack, float64(r.rss)/(1<<20), r.delivered, r.expected,
			r.refusals, r.connect.Round(time.Millisecond), r.logLines)
	}
	t.Log(b.String())
}

// probeDTLS tries a fresh DTLS handshake as gw-legit every 250ms until
// ctx is done, each within 2 s, and keeps the outcome for the report.
func (r *rig) probeDTLS(ctx context.Context, t *testing.T) {
	cert, key := pki.GatewayFiles(r.pki, legit)
	cfg, err := rudp.ClientConfig(uplink.TLSConfig{CA: filepath.Join(r.pki, pki.CACertFile), Cert: cert, Key: key}, "localhost")
	if !assert.NoError(t, err) {
		return
	}
	loop(ctx, 250*time.Millisecond, func() {
		start := time.Now()
		c, err := rudp.Dial(ctx, r.dtls, cfg, rudp.Options{HandshakeTimeout: connectWithin, Logger: slog.New(slog.DiscardHandler)})
		if ctx.Err() != nil {
			return
		}
		r.probeMu.Lock()
		defer r.probeMu.Unlock()
		r.probes++
		if err == nil {
			c.Close()
			r.probeOK++
			r.probeTimes = append(r.probeTimes, time.Since(start))
		}
	})
}

// clientHello is a DTLS 1.2 ClientHello with no cookie, as the first
// datagram of a handshake, or a spoofed one, carries.
func clientHello(t *testing.T) []byte {
	var random handshake.Random
	assert.NoError(t, random.Populate())
	rec := recordlayer.RecordLayer{
		Header: recordlayer.Header{Version: protocol.Version1_0},
		Content: &handshake.Handshake{Message: &handshake.MessageClientHello{
			Version:            protocol.Version1_2,
			Random:             random,
			CipherSuiteIDs:     []uint16{0xc02b},
			CompressionMethods: []*protocol.CompressionMethod{{}},
		}},
	}
	b, err := rec.Marshal()
	assert.NoError(t, err)
	return b
}
