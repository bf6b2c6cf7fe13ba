package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink/linklab"
	"github.com/weirgw/weir/uplink/pki"
)

// These tests run the real binaries on either side of a lab link
// (uplink/linklab): the collector in one network namespace, the gateway in
// the other, joined by a veth pair (or a TUN wire with latency) that
// nftables makes lossy or cuts. They need root (CI runs as root) and skip
// otherwise, and with -short.

const (
	linkGateway = "gw-link"
	collPort    = 7443
)

// binaries are the weir and weir-collector under test, built once per test
// function.
type binaries struct {
	weir, coll string
	dtls       string // why these binaries cannot do dtls; "" when they can
}

func linkBinaries(t *testing.T) binaries {
	t.Helper()
	if testing.Short() {
		t.Skip("link test builds binaries and makes network namespaces; skipped with -short")
	}
	if err := linklab.Available(); err != nil {
		t.Skipf("link test skipped: %v", err)
	}
	weir, coll := buildBinaries(t)
	b := binaries{weir: weir, coll: coll}
	help, _ := exec.Command(coll, "run", "--help").CombinedOutput()
	example, _ := exec.Command(weir, "config", "example").CombinedOutput()
	switch {
	case !bytes.Contains(help, []byte("--listen-dtls")):
		b.dtls = "weir-collector run has no --listen-dtls flag"
	case !bytes.Contains(example, []byte("transport:")):
		b.dtls = "weir's configuration has no endpoint transport key"
	}
	return b
}

// transports are the cases of the table-driven link tests.
func transports() []string { return []string{"tls", "dtls"} }

func (b binaries) need(t *testing.T, transport string) {
	t.Helper()
	if transport == "dtls" && b.dtls != "" {
		t.Fatalf("dtls transport missing: %s", b.dtls)
	}
}

// linkE2E is one collector and one gateway across a lab link.
type linkE2E struct {
	t         *testing.T
	b         binaries
	lab       *linklab.Lab
	transport string
	dir       string
	pki       string
	config    string
	sink      string
	logFile   string
	collLog   string
	target    netip.AddrPort // where the gateway sends: the collector, or a relay
	gatewayID string         // in the configuration
	ca        string         // the CA bundle the gateway trusts
	cert, key string         // the gateway's certificate and key
	extraCfg  string         // more uplink keys, indented two spaces
}

func newLinkE2E(t *testing.T, b binaries, transport string) *linkE2E {
	t.Helper()
	return newDelayedLinkE2E(t, b, transport, 0)
}

// newDelayedLinkE2E is newLinkE2E over a link with a one-way delay.
func newDelayedLinkE2E(t *testing.T, b binaries, transport string, delay time.Duration) *linkE2E {
	t.Helper()
	// Reno, not whatever the host picked (bbr shrugs off random loss):
	// the board runs Linux's default, cubic, which at these bandwidth-delay
	// products behaves like Reno, and a namespace may always pick reno.
	lab, err := linklab.New(context.Background(), linklab.Options{Label: transport, Delay: delay, TCPCongestion: "reno"})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, lab.Close()) })
	dir := t.TempDir()
	e := &linkE2E{t: t, b: b, lab: lab, transport: transport, dir: dir, pki: filepath.Join(dir, "pki"),
		config: filepath.Join(dir, "weir.yaml"), sink: filepath.Join(dir, "sink.jsonl"),
		logFile: filepath.Join(dir, "logs", "app.log"), collLog: filepath.Join(dir, "collector.log"),
		target: lab.Collector.AddrPort(collPort), gatewayID: linkGateway}
	e.run(b.coll, "pki", "init", "--dir", e.pki)
	e.run(b.coll, "pki", "issue-collector", "localhost", "--dir", e.pki)
	e.run(b.coll, "pki", "issue-gateway", linkGateway, "--dir", e.pki)
	e.cert, e.key = pki.GatewayFiles(e.pki, linkGateway)
	e.ca = filepath.Join(e.pki, pki.CACertFile)
	require.NoError(t, os.MkdirAll(filepath.Dir(e.logFile), 0o755))
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range []string{"gateway.log", "collector.log"} {
			if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
				t.Logf("%s (last 60 lines):\n%s", n, lastLines(b, 60))
			}
		}
	})
	return e
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (e *linkE2E) run(bin string, args ...string) string {
	e.t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	require.NoError(e.t, err, "%s %s: %s", filepath.Base(bin), strings.Join(args, " "), out)
	return string(out)
}

// writeConfig writes the gateway's configuration for the current target.
func (e *linkE2E) writeConfig() {
	transport := ""
	if e.transport != "tls" {
		transport = "\n      transport: " + e.transport
	}
	cfg := fmt.Sprintf(`gateway:
  id: %s
data_dir: %s/data
telemetry_interval: 1h
metrics:
  listen: ""
inputs:
  files:
    - name: app
      paths: ["%s/logs/*.log"]
      start_at: beginning
      poll_interval: 20ms
uplink:
  endpoints:
    - address: %s
      server_name: localhost%s
  tls:
    ca: %s
    cert: %s
    key: %s
  connect_timeout: 5s
  reconnect_min: 100ms
  reconnect_max: 1s
%s`, e.gatewayID, e.dir, e.dir, e.target, transport, e.ca, e.cert, e.key, e.extraCfg)
	require.NoError(e.t, os.WriteFile(e.config, []byte(cfg), 0o600))
}

// start runs a daemon inside ns; the returned function stops it with
// SIGTERM and checks it exited cleanly (also run at cleanup).
func (e *linkE2E) start(ns linklab.Namespace, name, bin string, args ...string) func() {
	e.t.Helper()
	cmd := ns.Command(bin, args...)
	logf, err := os.Create(filepath.Join(e.dir, name+".log"))
	require.NoError(e.t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(e.t, cmd.Start(), "start %s in %s", name, ns.Name)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			log, _ := os.ReadFile(logf.Name())
			require.NoError(e.t, err, "%s exited badly:\n%s", name, lastLines(log, 40))
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			e.t.Errorf("%s did not stop within 20s of SIGTERM", name)
		}
		logf.Close()
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *linkE2E) collectorArgs() []string {
	args := []string{"run", "--ca", e.pki + "/ca.pem", "--cert", e.pki + "/collector-localhost.pem",
		"--key", e.pki + "/collector-localhost-key.pem", "--sink", e.sink}
	listen := e.lab.Collector.AddrPort(collPort).String()
	if e.transport == "dtls" {
		// The TCP listener stays on loopback, out of the way.
		return append(args, "--listen", "127.0.0.1:7443", "--listen-dtls", listen)
	}
	return append(args, "--listen", listen)
}

func (e *linkE2E) startCollector() func() {
	return e.start(e.lab.Collector, "collector", e.b.coll, e.collectorArgs()...)
}

func (e *linkE2E) startGateway() func() {
	e.writeConfig()
	stop := e.start(e.lab.Gateway, "gateway", e.b.weir, "run", "--config", e.config)
	sock := filepath.Join(e.dir, "data", "weir.sock")
	require.Eventually(e.t, func() bool { _, err := os.Stat(sock); return err == nil }, 10*time.Second, 20*time.Millisecond,
		"the gateway's admin socket %s", sock)
	return stop
}

// lineText is the content of line i of the tailed file. A trace id made
// of i keeps zstd from shrinking 100,000 lines to a few hundred packets.
func lineText(i int) string {
	h := mix64(uint64(i))
	return fmt.Sprintf("pump-3 flow=12.%d m3/h level=%04d mm trace=%016x%016x line=%d", i%10, (i*7919)%10000, h, mix64(h), i)
}

// mix64 is SplitMix64's finaliser: a fixed, well-spread function of x.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (e *linkE2E) appendLines(from, n int) {
	require.NoError(e.t, appendLines(e.logFile, from, n))
}

// appendLines appends lines from..from+n-1 to the tailed file.
func appendLines(path string, from, n int) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := from; i < from+n; i++ {
		fmt.Fprintln(w, lineText(i))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("append to %s: %w", path, err)
	}
	return f.Close()
}

// sinkReader follows the collector's JSONL sink, checking each record as
// it arrives: the gateway's id, no sequence twice, and each line of the
// tailed file at most once with its content intact.
type sinkReader struct {
	t       *testing.T
	path    string
	gateway string
	off     int64
	partial []byte
	seqs    map[uint64]int // seq → line
	lines   map[int]uint64 // line → seq
	other   int            // records not from the tailed file (telemetry)
	// linkOutage is the largest outage_seconds of the gateway's link
	// telemetry records.
	linkOutage float64
}

func newSinkReader(t *testing.T, path, gateway string) *sinkReader {
	return &sinkReader{t: t, path: path, gateway: gateway, seqs: map[uint64]int{}, lines: map[int]uint64{}}
}

// poll reads what the sink gained and returns how many lines of the file
// it holds.
func (s *sinkReader) poll() int {
	s.t.Helper()
	f, err := os.Open(s.path)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(s.t, err)
	defer f.Close()
	_, err = f.Seek(s.off, io.SeekStart)
	require.NoError(s.t, err)
	b, err := io.ReadAll(f)
	require.NoError(s.t, err)
	s.off += int64(len(b))
	b = append(s.partial, b...)
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		s.partial = b
		return len(s.lines)
	}
	s.partial = append([]byte(nil), b[end+1:]...)
	for _, line := range bytes.Split(b[:end], []byte("\n")) {
		if len(line) > 0 {
			s.record(line)
		}
	}
	return len(s.lines)
}

func (s *sinkReader) record(line []byte) {
	var r struct {
		Seq     uint64         `json:"seq"`
		Gateway string         `json:"gateway"`
		Kind    string         `json:"kind"`
		Source  string         `json:"source"`
		Message string         `json:"message"`
		Fields  map[string]any `json:"fields"`
	}
	require.NoError(s.t, json.Unmarshal(line, &r), "sink line %q", line)
	require.Equal(s.t, s.gateway, r.Gateway, "sink line %q", line)
	prev, dup := s.seqs[r.Seq]
	require.False(s.t, dup, "sequence %d delivered twice (first as line %d): %s", r.Seq, prev, line)
	if r.Kind != "log" || r.Source != "app" {
		s.seqs[r.Seq] = -1
		s.other++
		if o, ok := r.Fields["outage_seconds"].(float64); ok && r.Kind == "telemetry" {
			s.linkOutage = max(s.linkOutage, o)
		}
		return
	}
	var i int
	_, err := fmt.Sscanf(r.Message[strings.LastIndex(r.Message, "line="):], "line=%d", &i)
	require.NoError(s.t, err, "no line number in %q", r.Message)
	require.Equal(s.t, lineText(i), r.Message, "content of line %d (seq %d)", i, r.Seq)
	first, dup := s.lines[i]
	require.False(s.t, dup, "line %d delivered twice, as seq %d and %d", i, first, r.Seq)
	s.lines[i] = r.Seq
	s.seqs[r.Seq] = i
}

// complete checks that lines 0..n-1 each arrived exactly once, under
// sequence numbers without gaps.
func (s *sinkReader) complete(n int) {
	s.t.Helper()
	require.Len(s.t, s.lines, n, "lines in the sink")
	lo, hi := ^uint64(0), uint64(0)
	for i := range n {
		seq, ok := s.lines[i]
		require.True(s.t, ok, "line %d never arrived", i)
		lo, hi = min(lo, seq), max(hi, seq)
	}
	var logSeqs int
	for seq, line := range s.seqs {
		if line >= 0 || (seq > lo && seq < hi) {
			logSeqs++
		}
	}
	require.Equal(s.t, hi-lo+1, uint64(logSeqs), "sequences %d..%d have gaps", lo, hi)
}

// waitLines polls the sink until it holds n lines of the file, failing
// after timeout or when delivery stalls for stall; it logs progress.
func (e *linkE2E) waitLines(s *sinkReader, n int, timeout, stall time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	last, lastGain := 0, time.Now()
	lastLog := time.Now()
	for {
		got := s.poll()
		if got >= n {
			return time.Since(start)
		}
		if got > last {
			last, lastGain = got, time.Now()
		}
		if time.Since(lastLog) > 10*time.Second {
			e.t.Logf("%s: %d/%d lines delivered after %s", e.transport, got, n, time.Since(start).Round(time.Second))
			lastLog = time.Now()
		}
		require.Less(e.t, time.Since(start), timeout, "%s: only %d of %d lines delivered in %s", e.transport, got, n, timeout)
		require.Less(e.t, time.Since(lastGain), stall, "%s: delivery stalled at %d of %d lines for %s", e.transport, got, n, stall)
		time.Sleep(100 * time.Millisecond)
	}
}

// status returns the gateway's `weir status --json`.
func (e *linkE2E) status() map[string]any {
	e.t.Helper()
	var st map[string]any
	require.NoError(e.t, json.Unmarshal([]byte(e.run(e.b.weir, "status", "--json", "--config", e.config)), &st))
	return st
}

// uplinkStatus is the uplink part of `weir status --json`.
func (e *linkE2E) uplinkStatus() map[string]any {
	e.t.Helper()
	u, _ := e.status()["uplink"].(map[string]any)
	require.NotNil(e.t, u, "weir status --json has no uplink object")
	return u
}

// TestLinkLoss sends 100,000 lines across a link losing 10 % of the
// packets each way, for each transport, on a bare veth pair and on a link
// with 5 ms each way (10 ms RTT), and checks every one arrived exactly once
// with its content.
func TestLinkLoss(t *testing.T) {
	b := linkBinaries(t)
	const n = 100_000
	for _, tr := range transports() {
		for _, delay := range []time.Duration{0, 5 * time.Millisecond} {
			t.Run(fmt.Sprintf("%s/delay_%s", tr, delay), func(t *testing.T) {
				b.need(t, tr)
				linkLoss(t, newDelayedLinkE2E(t, b, tr, delay), n)
			})
		}
	}
}

// linkLoss sends n lines across the link of e at 10 % loss each way and
// checks the sink holds each exactly once.
func linkLoss(t *testing.T, e *linkE2E, n int) {
	tr, delay := e.transport, e.lab.Delay()
	ctx := context.Background()
	require.NoError(t, e.lab.SetLossBoth(ctx, 10))
	e.startCollector()
	e.appendLines(0, n)
	start := time.Now()
	e.startGateway()
	s := newSinkReader(t, e.sink, linkGateway)
	took := e.waitLines(s, n, 6*time.Minute, 90*time.Second)
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
	s.poll()
	s.complete(n)
	up, err := e.lab.Counters(ctx, linklab.Uplink)
	require.NoError(t, err)
	down, err := e.lab.Counters(ctx, linklab.Downlink)
	require.NoError(t, err)
	t.Logf("%s, delay %s: %d lines across 10%%/10%% loss in %s (%.0f lines/s since the gateway started); packets dropped %d/%d uplink, %d/%d downlink",
		tr, delay, n, took.Round(time.Millisecond), float64(n)/time.Since(start).Seconds(), up.Dropped, up.Received, down.Dropped, down.Received)
	require.Greater(t, up.Dropped, up.Received/20, "the uplink lost packets")
	require.Greater(t, down.Dropped, down.Received/20, "the downlink lost packets")
}

// link returns `weir link --json`.
func (e *linkE2E) link() any {
	e.t.Helper()
	out, err := exec.Command(e.b.weir, "link", "--json", "--config", e.config).CombinedOutput()
	require.NoError(e.t, err, "weir link --json: %s", out)
	var v any
	require.NoError(e.t, json.Unmarshal(out, &v), "weir link --json: %s", out)
	return v
}

// jsonNumbers returns the numbers in v under keys containing sub and
// none of not.
func jsonNumbers(v any, sub string, not ...string) []float64 {
	var out []float64
	switch x := v.(type) {
	case map[string]any:
	next:
		for k, c := range x {
			f, ok := c.(float64)
			if ok && strings.Contains(k, sub) {
				for _, n := range not {
					if strings.Contains(k, n) {
						continue next
					}
				}
				out = append(out, f)
			}
			out = append(out, jsonNumbers(c, sub, not...)...)
		}
	case []any:
		for _, c := range x {
			out = append(out, jsonNumbers(c, sub, not...)...)
		}
	}
	return out
}

// jsonStrings returns the strings in v under any of keys.
func jsonStrings(v any, keys ...string) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if str, ok := c.(string); ok && slices.Contains(keys, k) {
				out = append(out, str)
			}
			out = append(out, jsonStrings(c, keys...)...)
		}
	case []any:
		for _, c := range x {
			out = append(out, jsonStrings(c, keys...)...)
		}
	}
	return out
}

func sum(f []float64) float64 {
	var s float64
	for _, x := range f {
		s += x
	}
	return s
}

// TestLinkOutage cuts the link for 30 s while the gateway is sending and
// records keep being written; once it is back everything arrives, once.
func TestLinkOutage(t *testing.T) {
	b := linkBinaries(t)
	t.Parallel() // mostly waiting out the outage
	const (
		n      = 20_000
		rate   = 500 // lines a second
		outage = 30 * time.Second
	)
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			b.need(t, tr)
			t.Parallel()
			e := newLinkE2E(t, b, tr)
			// The session notices the outage within ack_timeout, then
			// retries at most reconnect_max apart; link telemetry records
			// travel with the lines.
			e.extraCfg = "  ack_timeout: 5s\n  telemetry_interval: 2s\n"
			ctx := context.Background()
			e.startCollector()
			e.startGateway()
			s := newSinkReader(t, e.sink, linkGateway)

			writer := make(chan error, 1)
			go func() {
				for i := 0; i < n; i += rate / 10 {
					if err := appendLines(e.logFile, i, rate/10); err != nil {
						writer <- err
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				writer <- nil
			}()
			require.Eventually(t, func() bool { return s.poll() >= 2000 }, 20*time.Second, 50*time.Millisecond,
				"records flow before the outage")
			connects := e.uplinkStatus()["connects"]

			require.NoError(t, e.lab.Block(ctx))
			blockedAt := time.Now()
			time.Sleep(time.Second) // what was in flight lands or is lost
			during := s.poll()
			var st map[string]any
			require.Eventually(t, func() bool { st = e.uplinkStatus(); return st["state"] != "connected" },
				outage-2*time.Second, 100*time.Millisecond, "the gateway notices the outage")
			t.Logf("%s: during the outage: state %v, last error %q", tr, st["state"], st["last_error"])
			require.NotEmpty(t, st["last_error"], "the gateway says why the link is down")
			time.Sleep(time.Until(blockedAt.Add(outage)))
			require.Equal(t, during, s.poll(), "nothing crosses a blocked link")
			sp, _ := e.status()["spool"].(map[string]any)
			backlog := sp["records"]
			v := e.link()
			out := jsonNumbers(v, "outage")
			require.NotEmpty(t, out, "weir link --json shows no outage figure: %v", v)
			t.Logf("%s: weir link at the end of the outage: outage figures %v, reasons %q", tr, out, jsonStrings(v, "last_reason"))
			// The gateway counts from the failure it notices (ack_timeout
			// and more after the cut), so well under the whole 30 s.
			require.GreaterOrEqual(t, slicesMax(out), outage.Seconds()/2, "weir link shows the outage in seconds")
			require.NoError(t, e.lab.Unblock(ctx))
			restored := time.Now()

			require.NoError(t, <-writer)
			e.waitLines(s, n, 2*time.Minute, 45*time.Second)
			time.Sleep(500 * time.Millisecond)
			s.poll()
			s.complete(n)
			require.GreaterOrEqual(t, s.linkOutage, outage.Seconds()/2,
				"a link telemetry record in the sink shows the outage (%d telemetry records)", s.other)
			st = e.uplinkStatus()
			require.Equal(t, "connected", st["state"])
			require.Greater(t, st["connects"], connects, "the gateway reconnected after the outage")
			t.Logf("%s: %d lines at %d/s with a %s outage: %d delivered before it, all %d delivered %s after it ended; %v records spooled at its end; telemetry records show up to %.1f s of outage",
				tr, n, rate, outage, during, n, time.Since(restored).Round(time.Millisecond), backlog, s.linkOutage)
		})
	}
}

func slicesMax(f []float64) float64 {
	m := f[0]
	for _, x := range f[1:] {
		m = max(m, x)
	}
	return m
}

// TestLinkRefused presents certificates and ids the other side must
// refuse, over each transport, and checks nothing is delivered and both
// sides say why: the collector in its log, the gateway as the reason in
// `weir status` and `weir link`.
func TestLinkRefused(t *testing.T) {
	b := linkBinaries(t)
	cases := []struct {
		name string
		// arrange changes the gateway's identity; it runs after the
		// shared PKI is made.
		arrange func(t *testing.T, e *linkE2E)
		// reason is the gateway's last_reason; a warning of the
		// collector's log must name one of collector (lower case), over
		// dtls one of dtlsCollector where given.
		reason                   string
		collector, dtlsCollector []string
	}{
		{
			name: "gateway from another CA",
			arrange: func(t *testing.T, e *linkE2E) {
				rogue := filepath.Join(e.dir, "rogue")
				e.run(e.b.coll, "pki", "init", "--dir", rogue, "--name", "rogue")
				e.run(e.b.coll, "pki", "issue-gateway", linkGateway, "--dir", rogue)
				e.cert, e.key = pki.GatewayFiles(rogue, linkGateway)
			},
			reason: "unknown_ca",
			// The gateway presents its certificate whatever CAs the
			// collector names, so the collector can say what is wrong.
			collector: []string{"unknown authority"},
		},
		{
			name: "collector from another CA",
			arrange: func(t *testing.T, e *linkE2E) {
				rogue := filepath.Join(e.dir, "rogue")
				e.run(e.b.coll, "pki", "init", "--dir", rogue, "--name", "rogue")
				e.ca = filepath.Join(rogue, pki.CACertFile)
			},
			reason:    "unknown_ca",
			collector: []string{"unknown certificate authority", "bad certificate"},
			// The gateway refuses; over dtls the collector is told nothing
			// it can read (it logs "invalid content type", reason other:
			// the gateway's alert does not parse), so only the refusal is
			// required of its log until rudp sends a readable alert.
			dtlsCollector: []string{"unknown certificate authority", "bad certificate", "badcertificate", "handshake refused"},
		},
		{
			name: "gateway past its validity",
			arrange: func(t *testing.T, e *linkE2E) {
				// The CLI issues from now on; the Go API takes a clock.
				old := filepath.Join(e.dir, "old")
				require.NoError(t, os.MkdirAll(old, 0o700))
				for _, f := range []string{pki.CACertFile, pki.CAKeyFile} {
					b, err := os.ReadFile(filepath.Join(e.pki, f))
					require.NoError(t, err)
					require.NoError(t, os.WriteFile(filepath.Join(old, f), b, 0o600))
				}
				var err error
				e.cert, e.key, err = pki.IssueGateway(old, linkGateway, pki.Options{
					Validity: time.Hour, Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
				require.NoError(t, err)
			},
			reason:    "expired",
			collector: []string{"expired"},
		},
		{
			name:      "id not the certificate",
			arrange:   func(t *testing.T, e *linkE2E) { e.gatewayID = "gw-impostor" },
			reason:    "refused_id",
			collector: []string{"does not match"},
		},
	}
	for _, tr := range transports() {
		for _, c := range cases {
			t.Run(tr+"/"+c.name, func(t *testing.T) {
				b.need(t, tr)
				t.Parallel()
				if tr == "dtls" && c.dtlsCollector != nil {
					c.collector = c.dtlsCollector
				}
				e := newLinkE2E(t, b, tr)
				c.arrange(t, e)
				e.startCollector()
				e.appendLines(0, 10)
				e.startGateway()
				var reasons []string
				require.Eventually(t, func() bool {
					reasons = jsonStrings(e.uplinkStatus(), "last_reason")
					return slices.Contains(reasons, c.reason)
				}, 20*time.Second, 100*time.Millisecond, "gateway's reasons %q, want %q", reasons, c.reason)
				// A warning or error line of the collector's log (not, say,
				// the sink path) must give the reason.
				var why string
				require.Eventually(t, func() bool {
					log, _ := os.ReadFile(e.collLog)
					for _, l := range strings.Split(string(log), "\n") {
						low := strings.ToLower(l)
						if !strings.Contains(l, "level=WARN") && !strings.Contains(l, "level=ERROR") {
							continue
						}
						for _, w := range c.collector {
							if strings.Contains(low, w) {
								why = l
								return true
							}
						}
					}
					return false
				}, 10*time.Second, 100*time.Millisecond, "collector log names none of %q", c.collector)
				t.Logf("%s, %s: gateway: %s: %s", tr, c.name, c.reason, strings.Join(jsonStrings(e.uplinkStatus(), "last_error"), " | "))
				t.Logf("%s, %s: collector: %s", tr, c.name, why)
				v := e.link()
				require.Contains(t, jsonStrings(v, "last_reason"), c.reason, "weir link --json: %v", v)
				s := newSinkReader(t, e.sink, e.gatewayID)
				require.Zero(t, s.poll(), "a refused gateway delivered records")
			})
		}
	}
}

// TestLinkRebinding puts a NAT-like relay between the gateway and the
// collector and moves it to a new port, then to a new address, while
// records flow over DTLS: the session must go on by its Connection ID,
// without a new handshake, and lose nothing.
func TestLinkRebinding(t *testing.T) {
	b := linkBinaries(t)
	b.need(t, "dtls")
	t.Parallel() // paced, so it can share the machine with the outage test
	const (
		n    = 30_000
		rate = 2000 // lines a second
	)
	e := newLinkE2E(t, b, "dtls")
	ctx := context.Background()
	require.NoError(t, e.lab.SetLossBoth(ctx, 1))
	relay, err := e.lab.StartRelay(e.lab.Collector.AddrPort(collPort))
	require.NoError(t, err)
	e.target = relay.Addr()
	e.startCollector()
	e.startGateway()
	s := newSinkReader(t, e.sink, linkGateway)
	writer := make(chan error, 1)
	go func() {
		for i := 0; i < n; i += rate / 10 {
			if err := appendLines(e.logFile, i, rate/10); err != nil {
				writer <- err
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		writer <- nil
	}()

	handshakes := func() float64 {
		v := e.link()
		h := jsonNumbers(v, "handshake", "fail", "error")
		require.NotEmpty(t, h, "weir link --json shows no handshake count: %v", v)
		return sum(h)
	}
	sessions := func() int {
		log, err := os.ReadFile(e.collLog)
		require.NoError(t, err)
		return bytes.Count(log, []byte(`msg="gateway connected"`))
	}
	require.Eventually(t, func() bool { return s.poll() >= 3000 }, 20*time.Second, 50*time.Millisecond,
		"records flow through the relay before it moves")
	connects, hs, sess := e.uplinkStatus()["connects"], handshakes(), sessions()
	require.Equal(t, 1, sess, "one session before the rebinding")

	moved := netip.MustParseAddr("198.18.0.3")
	require.NoError(t, e.lab.Gateway.AddAddress(ctx, moved))
	for _, to := range []netip.Addr{{}, moved} {
		before := relay.Stats()
		now, err := relay.Rebind(to)
		require.NoError(t, err)
		got := s.poll()
		// Answers can reach the gateway now only if the collector sends
		// them to the new outside address: the old socket is closed.
		require.Eventually(t, func() bool { return relay.Stats().Down > before.Down+50 }, 10*time.Second, 20*time.Millisecond,
			"the collector answers the relay's new address %s", now)
		require.Eventually(t, func() bool { return s.poll() > got+1000 }, 10*time.Second, 50*time.Millisecond,
			"records keep flowing after the move to %s", now)
		t.Logf("relay moved from %s to %s; %d lines delivered", before.Outside, now, s.poll())
	}
	require.NoError(t, <-writer)
	e.waitLines(s, n, 2*time.Minute, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	s.poll()
	s.complete(n)
	require.Equal(t, connects, e.uplinkStatus()["connects"], "the gateway did not reconnect")
	require.Equal(t, sess, sessions(), "the collector saw no new session")
	require.Equal(t, hs, handshakes(), "no new handshake")
	t.Logf("handshakes before and after the moves: %v", hs)
	st := relay.Stats()
	require.Equal(t, uint64(2), st.Rebinds)
	t.Logf("relay: %d datagrams up, %d down, %d rebinds, now %s", st.Up, st.Down, st.Rebinds, st.Outside)
}
