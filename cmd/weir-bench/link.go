package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/uplink/linklab"
	"github.com/weirgw/weir/uplink/pki"
)

// newLinkCmd measures uplink goodput across the lab link (uplink/linklab)
// at several loss rates, for each transport: a real weir in one network
// namespace sends a spooled backlog to a real weir-collector in the other.
func newLinkCmd() *cobra.Command {
	o := linkOptions{}
	cmd := &cobra.Command{
		Use:   "link",
		Short: "Uplink goodput over tls and dtls across a lossy namespace link (needs root)",
		Long: `Uplink goodput over tls and dtls across a lossy namespace link.

Two network namespaces joined by a veth pair; nftables drops the given share
of packets in each direction. For each transport and loss rate, each run
starts a gateway with an empty spool, lets it spool --records lines from a
file while the collector is down, then starts the collector and times the
acks from the first to the last: records/s, and MB/s of line payload (the
bytes of the lines, without newlines). The table shows the median of --runs
runs, one table per --delay: 0 is a bare veth pair (microseconds of RTT,
where TCP recovers from loss almost at once); a delay puts a wire that holds
each packet that long between two TUN devices, as a long fiber would (this
kernel has no netem). Needs root; without it, says so and exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := linklab.Available(); err != nil {
				fmt.Printf("link: skipped: %v\n", err)
				return nil
			}
			return benchLink(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.records, "records", 100_000, "lines each run sends")
	f.IntVar(&o.runs, "runs", 3, "runs per cell; the table shows their median")
	f.IntSliceVar(&o.losses, "loss", []int{0, 1, 5, 10}, "loss rates in percent, each applied in both directions")
	f.StringSliceVar(&o.transports, "transports", []string{"tls", "dtls"}, "transports to measure")
	f.StringVar(&o.weir, "weir", "", "weir binary (default: built from this module)")
	f.StringVar(&o.collector, "collector", "", "weir-collector binary (default: built from this module)")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "longest a run may take")
	f.StringVar(&o.tcpCC, "tcp-congestion", "cubic", "TCP congestion control in the namespaces (cubic: Linux's default and the board image's; empty: the host's)")
	f.DurationSliceVar(&o.delays, "delay", []time.Duration{0, 10 * time.Millisecond},
		"one-way latencies of the link, a table each (0: a bare veth pair; else TUN devices joined by a delaying wire)")
	f.StringVar(&o.dir, "dir", "", "work directory (default: a temporary one, removed after)")
	return cmd
}

type linkOptions struct {
	records         int
	runs            int
	losses          []int
	transports      []string
	weir, collector string
	timeout         time.Duration
	delays          []time.Duration
	tcpCC           string
	dir             string
}

// linkCell is one transport at one loss rate: the runs' goodputs.
type linkCell struct {
	na      string // why the cell was not measured
	recs    []float64
	bytes   []float64
	dropped []float64 // measured share of packets dropped, uplink
}

func (c linkCell) median() (recs, mbs float64) {
	return median(c.recs), median(c.bytes) / 1e6
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func benchLink(ctx context.Context, o linkOptions) error {
	if o.records < 1 || o.runs < 1 {
		return fmt.Errorf("link: --records %d and --runs %d must be positive", o.records, o.runs)
	}
	for _, l := range o.losses {
		if l < 0 || l >= 100 {
			return fmt.Errorf("link: --loss %d: must be 0..99", l)
		}
	}
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "weir-bench-link-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if o.weir == "" || o.collector == "" {
		w, c, err := buildWeir(ctx, filepath.Join(dir, "bin"))
		if err != nil {
			return err
		}
		o.weir, o.collector = cmp.Or(o.weir, w), cmp.Or(o.collector, c)
	}
	if o.tcpCC != "" {
		// A namespace may only default to an algorithm the host allows
		// to all; Reno is always allowed and, at these bandwidth-delay
		// products, is what CUBIC's TCP-friendly region behaves like.
		b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
		if err != nil {
			return fmt.Errorf("link: %w", err)
		}
		if allowed := strings.Fields(string(b)); !slices.Contains(allowed, o.tcpCC) {
			fmt.Printf("note: TCP congestion control %s is not in net.ipv4.tcp_allowed_congestion_control (%s) here; using reno\n\n",
				o.tcpCC, strings.Join(allowed, " "))
			o.tcpCC = "reno"
		}
	}
	lines, payload := linkLines(o.records)
	p := filepath.Join(dir, "pki")
	if err := pki.InitCA(p, "bench", pki.Options{}); err != nil {
		return err
	}
	if _, _, err := pki.IssueCollector(p, "localhost", nil, pki.Options{}); err != nil {
		return err
	}
	if _, _, err := pki.IssueGateway(p, "gw-bench", pki.Options{}); err != nil {
		return err
	}

	for i, d := range o.delays {
		if d < 0 {
			return fmt.Errorf("link: --delay %s: must not be negative", d)
		}
		if i > 0 {
			fmt.Println()
		}
		link := "a veth pair"
		if d > 0 {
			link = fmt.Sprintf("TUN devices joined by a wire holding each packet %s (RTT %s)", d, 2*d)
		}
		cc := o.tcpCC
		if cc == "" {
			cc = "the host's"
		}
		fmt.Printf("uplink goodput across %s between two namespaces, nftables random drop each way;\n%d lines of ~%d bytes a run, median of %d runs; TCP congestion control %s\n\n",
			link, o.records, payload/o.records, o.runs, cc)
		if err := linkTable(ctx, o, d, dir, p, lines, payload); err != nil {
			return err
		}
	}
	return nil
}

// linkTable measures and prints one table: every transport at every loss
// rate over a link with one-way delay d.
func linkTable(ctx context.Context, o linkOptions, d time.Duration, dir, p string, lines []byte, payload int) error {
	cells := map[string]map[int]*linkCell{}
	for _, tr := range o.transports {
		cells[tr] = map[int]*linkCell{}
		na := ""
		switch tr {
		case "tls":
		case "dtls":
			na = dtlsMissing(o.weir, o.collector)
		default:
			return fmt.Errorf("link: --transports: %q is not tls or dtls", tr)
		}
		if na != "" {
			for _, l := range o.losses {
				cells[tr][l] = &linkCell{na: na}
			}
			fmt.Fprintf(os.Stderr, "link: %s not measured: %s\n", tr, na)
			continue
		}
		lab, err := linklab.New(ctx, linklab.Options{Label: "bench-" + tr, Delay: d, TCPCongestion: o.tcpCC})
		if err != nil {
			return err
		}
		err = func() error {
			for _, l := range o.losses {
				c := &linkCell{}
				cells[tr][l] = c
				if err := lab.SetLossBoth(ctx, l); err != nil {
					return err
				}
				for i := range o.runs {
					r := linkRun{lab: lab, transport: tr, dir: filepath.Join(dir, fmt.Sprintf("%s-%s-%d-%d", tr, d, l, i)),
						pki: p, weir: o.weir, collector: o.collector, lines: lines, records: o.records, timeout: o.timeout}
					before, err := lab.Counters(ctx, linklab.Uplink)
					if err != nil {
						return err
					}
					recs, err := r.run(ctx)
					if err != nil {
						return fmt.Errorf("link: %s at %d%% loss, delay %s, run %d: %w", tr, l, d, i+1, err)
					}
					after, err := lab.Counters(ctx, linklab.Uplink)
					if err != nil {
						return err
					}
					c.recs = append(c.recs, recs)
					c.bytes = append(c.bytes, recs*float64(payload)/float64(o.records))
					if rcv := after.Received - before.Received; rcv > 0 {
						c.dropped = append(c.dropped, float64(after.Dropped-before.Dropped)/float64(rcv))
					}
					fmt.Fprintf(os.Stderr, "link: %s, delay %s, %d%% loss, run %d: %.0f records/s\n", tr, d, l, i+1, recs)
				}
			}
			return nil
		}()
		if cerr := lab.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	printLinkTable(o, cells)
	return nil
}

func printLinkTable(o linkOptions, cells map[string]map[int]*linkCell) {
	fmt.Printf("%-6s", "loss")
	for _, tr := range o.transports {
		fmt.Printf(" %14s %10s %8s", tr+" records/s", tr+" MB/s", "drops")
	}
	fmt.Println()
	for _, l := range o.losses {
		fmt.Printf("%-6s", fmt.Sprintf("%d %%", l))
		for _, tr := range o.transports {
			c := cells[tr][l]
			if c.na != "" {
				fmt.Printf(" %14s %10s %8s", "n/a", "n/a", "")
				continue
			}
			recs, mbs := c.median()
			fmt.Printf(" %14.0f %10.2f %7.1f%%", recs, mbs, 100*median(c.dropped))
		}
		fmt.Println()
	}
	fmt.Println("(drops: share of uplink packets the lab dropped, measured; downlink alike)")
	fmt.Println()
	ratio := func(name string, a, b *linkCell, target string) {
		switch {
		case a == nil || b == nil:
			fmt.Printf("%-26s not measured (needs both cells)   target %s\n", name, target)
		case a.na != "" || b.na != "":
			fmt.Printf("%-26s n/a   target %s\n", name, target)
		default:
			ra, _ := a.median()
			rb, _ := b.median()
			fmt.Printf("%-26s %.2f   target %s\n", name, ra/rb, target)
		}
	}
	ratio("DTLS@10% / DTLS@0%", cells["dtls"][10], cells["dtls"][0], "≥ 0.50")
	ratio("DTLS@10% / TLS@10%", cells["dtls"][10], cells["tls"][10], "≥ 3")
}

// dtlsMissing says why these binaries cannot run dtls, or "".
func dtlsMissing(weir, coll string) string {
	help, _ := exec.Command(coll, "run", "--help").CombinedOutput()
	if !bytes.Contains(help, []byte("--listen-dtls")) {
		return "weir-collector run has no --listen-dtls yet"
	}
	example, _ := exec.Command(weir, "config", "example").CombinedOutput()
	if !bytes.Contains(example, []byte("transport:")) {
		return "weir's configuration has no endpoint transport key yet"
	}
	return ""
}

// buildWeir builds weir and weir-collector from the module in the current
// directory into dir.
func buildWeir(ctx context.Context, dir string) (weir, coll string, err error) {
	for _, b := range []struct{ pkg, out string }{{"./cmd/weir", "weir"}, {"./cmd/weir-collector", "weir-collector"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("link: go build %s (run from the module's root, or pass --weir and --collector): %w: %s", b.pkg, err, out)
		}
	}
	return filepath.Join(dir, "weir"), filepath.Join(dir, "weir-collector"), nil
}

// linkLines makes n log lines of about 150 bytes, part text and part
// random hex (as ids and readings are), so compression cannot make the
// payload vanish; it returns them newline-terminated and the payload
// bytes (without newlines).
func linkLines(n int) ([]byte, int) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	payload := 0
	for i := range n {
		start := b.Len()
		fmt.Fprintf(&b, "2026-11-23T12:00:%02d.%03dZ pump-%d station=north flow=%d.%d m3/h level=%d mm trace=%016x%016x seq=%d",
			i/1000%60, i%1000, rng.IntN(8), 10+rng.IntN(5), rng.IntN(10), 1200+rng.IntN(50), rng.Uint64(), rng.Uint64(), i)
		payload += b.Len() - start
		b.WriteByte('\n')
	}
	return b.Bytes(), payload
}

// linkRun is one measurement: a fresh gateway and collector.
type linkRun struct {
	lab             *linklab.Lab
	transport       string
	dir, pki        string
	weir, collector string
	lines           []byte
	records         int
	timeout         time.Duration
}

const benchPort = 7443

// run spools the lines with the collector down, starts the collector and
// returns records/s acked from the first ack to the last.
func (r linkRun) run(ctx context.Context) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := os.MkdirAll(filepath.Join(r.dir, "logs"), 0o755); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(r.dir, "logs", "app.log"), r.lines, 0o644); err != nil {
		return 0, err
	}
	addr := r.lab.Collector.AddrPort(benchPort)
	transport := ""
	if r.transport != "tls" {
		transport = "\n      transport: " + r.transport
	}
	cert, key := pki.GatewayFiles(r.pki, "gw-bench")
	cfg := fmt.Sprintf(`gateway:
  id: gw-bench
data_dir: %s/data
telemetry_interval: 1h
metrics:
  listen: ""
inputs:
  files:
    - name: app
      paths: ["%s/logs/*.log"]
      start_at: beginning
      poll_interval: 50ms
uplink:
  endpoints:
    - address: %s
      server_name: localhost%s
  tls:
    ca: %s
    cert: %s
    key: %s
  connect_timeout: 2s
  reconnect_min: 20ms
  reconnect_max: 100ms
`, r.dir, r.dir, addr, transport, filepath.Join(r.pki, pki.CACertFile), cert, key)
	config := filepath.Join(r.dir, "weir.yaml")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		return 0, err
	}

	gw, err := startIn(r.lab.Gateway, filepath.Join(r.dir, "gateway.log"), r.weir, "run", "--config", config)
	if err != nil {
		return 0, err
	}
	defer gw.stop()
	socket := filepath.Join(r.dir, "data", "weir.sock")
	client := adminClient(socket)
	var st benchStatus
	for st.Appended < uint64(r.records) {
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return 0, fmt.Errorf("gateway spooled %d of %d lines: %w (log %s)", st.Appended, r.records, err, gw.log)
		}
		if err := gw.exited(); err != nil {
			return 0, err
		}
		st, _ = fetchBenchStatus(ctx, client)
	}

	args := []string{"run", "--ca", filepath.Join(r.pki, pki.CACertFile),
		"--cert", filepath.Join(r.pki, "collector-localhost.pem"), "--key", filepath.Join(r.pki, "collector-localhost-key.pem"),
		"--sink", filepath.Join(r.dir, "sink.jsonl")}
	if r.transport == "dtls" {
		args = append(args, "--listen", "127.0.0.1:7443", "--listen-dtls", addr.String())
	} else {
		args = append(args, "--listen", addr.String())
	}
	coll, err := startIn(r.lab.Collector, filepath.Join(r.dir, "collector.log"), r.collector, args...)
	if err != nil {
		return 0, err
	}
	defer coll.stop()

	var (
		t0     time.Time
		acked0 uint64
	)
	for {
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return 0, fmt.Errorf("%d of %d records acked: %w (logs %s, %s)", st.Uplink.RecordsAcked, r.records, err, gw.log, coll.log)
		}
		for _, p := range []*proc{gw, coll} {
			if err := p.exited(); err != nil {
				return 0, err
			}
		}
		st, err = fetchBenchStatus(ctx, client)
		if err != nil {
			continue
		}
		now := time.Now()
		if t0.IsZero() && st.Uplink.RecordsAcked > 0 {
			t0, acked0 = now, st.Uplink.RecordsAcked
		}
		if st.Uplink.RecordsAcked >= uint64(r.records) {
			if now.Sub(t0) <= 0 || st.Uplink.RecordsAcked == acked0 {
				return 0, fmt.Errorf("all %d records acked at once; use more --records", r.records)
			}
			rate := float64(st.Uplink.RecordsAcked-acked0) / now.Sub(t0).Seconds()
			gw.stop()
			coll.stop()
			if err := errors.Join(gw.err, coll.err); err != nil {
				return 0, err
			}
			return rate, checkSink(filepath.Join(r.dir, "sink.jsonl"), r.records)
		}
	}
}

// checkSink counts the sink's lines: every record acked must be there.
func checkSink(path string, want int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read sink %s: %w", path, err)
	}
	if n < want {
		return fmt.Errorf("sink %s holds %d lines, want %d", path, n, want)
	}
	return nil
}

type benchStatus struct {
	Appended uint64 `json:"records_appended"`
	Uplink   struct {
		RecordsAcked uint64 `json:"records_acked"`
	} `json:"uplink"`
}

// adminClient talks HTTP to the gateway's admin socket.
func adminClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}, Timeout: 5 * time.Second}
}

func fetchBenchStatus(ctx context.Context, c *http.Client) (benchStatus, error) {
	var st benchStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://weir/v1/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("admin status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// proc is a daemon started in a namespace.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set once done is closed
}

func startIn(ns linklab.Namespace, logPath, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{name: filepath.Base(bin), log: logPath, cmd: ns.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s in %s: %w", p.name, ns.Name, err)
	}
	go func() {
		err := p.cmd.Wait()
		logf.Close()
		if err != nil {
			p.err = fmt.Errorf("%s: %w: %s", p.name, err, tail(logPath))
		}
		close(p.done)
	}()
	return p, nil
}

// exited returns an error if the process has ended on its own.
func (p *proc) exited() error {
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("exited early: %w", p.err)
		}
		return fmt.Errorf("%s exited early: %s", p.name, tail(p.log))
	default:
		return nil
	}
}

// stop ends the process with SIGTERM (SIGKILL after 20 s) and waits.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the end of a log file, for errors.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n") + " (" + path + ", " + strconv.Itoa(len(b)) + " bytes)"
}
