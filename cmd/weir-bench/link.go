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
starts a gateway with an empty spool and lets it connect to the collector
once, stops the collector, lets the gateway spool --records lines from a
file while the collector is down, then starts the collector again (a
return, as after an outage) and times the acks from the first to the
last: records/s, and MB/s of line payload (the
bytes of the lines, without newlines). The table shows the median of --runs
runs, one table per --delay: 0 is a bare veth pair (microseconds of RTT,
where TCP recovers from loss almost at once); a delay puts a wire that holds
each packet that long between two TUN devices, as a long fiber would (this
kernel has no netem). tls runs once per --tcp-congestion, each column named
after the algorithm the namespaces actually run. Every run checks the sink
holds each line exactly once; a run that hits --timeout reports the rate of
what was acked by then, marked *. Needs root; without it, says so and exits 0.`,
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
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "longest a run may take from the collector's return (connecting once before and spooling the lines have 3 minutes of their own)")
	f.StringSliceVar(&o.tcpCCs, "tcp-congestion", []string{"bbr", "cubic"},
		"TCP congestion controls to measure tls with, a column each (cubic: Linux's default and the board image's; bbr: many head-ends'; \"\": the host's); one the host does not allow namespaces falls back to reno, and the table says so")
	f.DurationSliceVar(&o.delays, "delay", []time.Duration{0, 10 * time.Millisecond},
		"one-way latencies of the link, a table each (0: a bare veth pair; else TUN devices joined by a delaying wire)")
	f.StringVar(&o.dir, "dir", "", "work directory (default: a temporary one, removed after)")
	f.IntVar(&o.window, "window", 0, "the gateway's uplink.window, the most batches in flight (0: its default)")
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
	tcpCCs          []string
	dir             string
	window          int
}

// linkColumn is one column of the table: a transport, and for tls the
// TCP congestion control asked for and the one the namespaces run.
type linkColumn struct {
	transport string
	askedCC   string
	cc        string // as read back from the namespace once the lab is up
	na        string // why the column was not measured
}

func (c linkColumn) label() string {
	if c.transport != "tls" {
		return c.transport
	}
	return c.transport + "-" + cmp.Or(c.cc, c.askedCC, "host")
}

// linkCell is one transport at one loss rate: the runs' goodputs.
type linkCell struct {
	recs     []float64
	bytes    []float64
	dropped  []float64 // measured share of packets dropped, uplink
	firstAck []float64 // seconds from the collector's start to the first ack
	afterHS  []float64 // seconds from the end of that session's transport handshake to its first ack
	partial  int       // runs that timed out; their rate is of what was acked by then
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
	cols, err := linkColumns(o)
	if err != nil {
		return err
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
		window := "the gateway's default window"
		if o.window > 0 {
			window = fmt.Sprintf("window %d", o.window)
		}
		fmt.Printf("uplink goodput across %s between two namespaces, nftables random drop each way;\n%d lines of ~%d bytes a run, %s, median of %d runs, every run checked for each line arriving exactly once\n\n",
			link, o.records, payload/o.records, window, o.runs)
		if err := linkTable(ctx, o, slices.Clone(cols), d, dir, p, lines, payload); err != nil {
			return err
		}
	}
	return nil
}

// linkColumns expands --transports into the table's columns: tls once
// per --tcp-congestion. A namespace may only default to an algorithm the
// host allows to all; Reno always is and, at these bandwidth-delay
// products, is what CUBIC's TCP-friendly region behaves like, so an
// algorithm not allowed falls back to it, said here and in the column.
func linkColumns(o linkOptions) ([]linkColumn, error) {
	var allowed []string
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_allowed_congestion_control"); err == nil {
		allowed = strings.Fields(string(b))
	}
	var cols []linkColumn
	for _, tr := range o.transports {
		switch tr {
		case "tls":
			if len(o.tcpCCs) == 0 {
				cols = append(cols, linkColumn{transport: tr})
			}
			for _, cc := range o.tcpCCs {
				c := linkColumn{transport: tr, askedCC: cc}
				if cc != "" && allowed != nil && !slices.Contains(allowed, cc) {
					fmt.Printf("note: TCP congestion control %s is not in net.ipv4.tcp_allowed_congestion_control (%s) here; its column runs reno\n",
						cc, strings.Join(allowed, " "))
					c.askedCC = "reno"
				}
				if !slices.ContainsFunc(cols, func(x linkColumn) bool { return x.transport == tr && x.askedCC == c.askedCC }) {
					cols = append(cols, c)
				}
			}
		case "dtls":
			cols = append(cols, linkColumn{transport: tr, na: dtlsMissing(o.weir, o.collector)})
		default:
			return nil, fmt.Errorf("link: --transports: %q is not tls or dtls", tr)
		}
	}
	return cols, nil
}

// linkTable measures and prints one table: every column at every loss
// rate over a link with one-way delay d.
func linkTable(ctx context.Context, o linkOptions, cols []linkColumn, d time.Duration, dir, p string, lines []byte, payload int) error {
	cells := map[string]map[int]*linkCell{}
	for i := range cols {
		col := &cols[i]
		if col.na != "" {
			fmt.Fprintf(os.Stderr, "link: %s not measured: %s\n", col.transport, col.na)
			continue
		}
		lab, err := linklab.New(ctx, linklab.Options{Label: "bench-" + col.transport, Delay: d, TCPCongestion: col.askedCC})
		if err != nil {
			return err
		}
		err = func() error {
			if col.transport == "tls" {
				cc, err := namespaceCC(lab.Gateway)
				if err != nil {
					return err
				}
				col.cc = cc
			}
			cells[col.label()] = map[int]*linkCell{}
			for _, l := range o.losses {
				c := &linkCell{}
				cells[col.label()][l] = c
				if err := lab.SetLossBoth(ctx, l); err != nil {
					return err
				}
				for i := range o.runs {
					r := linkRun{lab: lab, transport: col.transport, dir: filepath.Join(dir, fmt.Sprintf("%s-%s-%d-%d", col.label(), d, l, i)),
						pki: p, weir: o.weir, collector: o.collector, lines: lines, records: o.records, timeout: o.timeout, window: o.window}
					before, err := lab.Counters(ctx, linklab.Uplink)
					if err != nil {
						return err
					}
					res, err := r.run(ctx)
					if err != nil {
						return fmt.Errorf("link: %s at %d%% loss, delay %s, run %d: %w", col.label(), l, d, i+1, err)
					}
					after, err := lab.Counters(ctx, linklab.Uplink)
					if err != nil {
						return err
					}
					c.recs = append(c.recs, res.rate)
					c.bytes = append(c.bytes, res.rate*float64(payload)/float64(o.records))
					if res.firstAck > 0 {
						c.firstAck = append(c.firstAck, res.firstAck.Seconds())
					}
					if res.afterHS > 0 {
						c.afterHS = append(c.afterHS, res.afterHS.Seconds())
					}
					if rcv := after.Received - before.Received; rcv > 0 {
						c.dropped = append(c.dropped, float64(after.Dropped-before.Dropped)/float64(rcv))
					}
					note := ""
					if res.acked < o.records {
						c.partial++
						note = fmt.Sprintf(" (timed out with %d of %d acked; rate of those)", res.acked, o.records)
					}
					fmt.Fprintf(os.Stderr, "link: %s, delay %s, %d%% loss, run %d: %.0f records/s, first ack %.2f s after the collector started, %.3f s after the handshake (%.3f s)%s\n",
						col.label(), d, l, i+1, res.rate, res.firstAck.Seconds(), res.afterHS.Seconds(), res.handshake.Seconds(), note)
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
	printLinkTable(o, cols, cells)
	return nil
}

// namespaceCC reads the TCP congestion control a namespace runs.
func namespaceCC(ns linklab.Namespace) (string, error) {
	var cc string
	err := ns.Do(func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
		cc = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("link: read tcp_congestion_control in %s: %w", ns.Name, err)
	}
	return cc, nil
}

func printLinkTable(o linkOptions, cols []linkColumn, cells map[string]map[int]*linkCell) {
	fmt.Printf("%-6s", "loss")
	for _, col := range cols {
		fmt.Printf(" %16s %6s %6s %8s %8s", col.label()+" rec/s", "MB/s", "drops", "1st ack", "after hs")
	}
	fmt.Println()
	partial := false
	for _, l := range o.losses {
		fmt.Printf("%-6s", fmt.Sprintf("%d %%", l))
		for _, col := range cols {
			c := cells[col.label()][l]
			if c == nil {
				fmt.Printf(" %16s %6s %6s %8s %8s", "n/a", "n/a", "", "", "")
				continue
			}
			recs, mbs := c.median()
			mark := ""
			if c.partial > 0 {
				mark, partial = "*", true
			}
			first := "-"
			if len(c.firstAck) > 0 {
				first = fmt.Sprintf("%.2fs", median(c.firstAck))
			}
			afterHS := "-"
			if len(c.afterHS) > 0 {
				afterHS = fmt.Sprintf("%.3fs", median(c.afterHS))
			}
			fmt.Printf(" %16s %6.2f %5.1f%% %8s %8s", fmt.Sprintf("%s%.0f", mark, recs), mbs, 100*median(c.dropped), first, afterHS)
		}
		fmt.Println()
	}
	fmt.Println("(drops: share of uplink packets the lab dropped, measured; downlink alike. 1st ack: from the collector's start;")
	fmt.Println(" after hs: from the end of that session's transport handshake to its first ack, as the gateway measured it)")
	if partial {
		fmt.Printf("(*: a run hit --timeout %s; its rate is of the records acked by then)\n", o.timeout)
	}
	for _, col := range cols {
		if col.transport == "tls" && col.cc != col.askedCC && col.askedCC != "" {
			fmt.Printf("(note: %s was asked for, the namespaces run %s)\n", col.askedCC, col.cc)
		}
	}
	fmt.Println()
	ratio := func(a, b string, la, lb int, target string) {
		ca, cb := cells[a][la], cells[b][lb]
		name := fmt.Sprintf("%s@%d%% / %s@%d%%", a, la, b, lb)
		if ca == nil || cb == nil {
			return
		}
		ra, _ := ca.median()
		rb, _ := cb.median()
		if rb == 0 {
			fmt.Printf("%-32s %6s   target %s\n", name, "n/a", target)
			return
		}
		fmt.Printf("%-32s %6.2f   target %s\n", name, ra/rb, target)
	}
	ratio("dtls", "dtls", 10, 0, "≥ 0.90")
	for _, col := range cols {
		if col.transport != "tls" {
			continue
		}
		ratio("dtls", col.label(), 0, 0, "≥ 1")
		for _, l := range []int{10, 20} {
			target := "≥ 3"
			if col.cc == "bbr" {
				target = "≥ 2"
			}
			ratio("dtls", col.label(), l, l, target)
		}
	}
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
	window          int
}

const benchPort = 7443

// prepTimeout bounds a run's first connection and the spooling of its
// lines.
const prepTimeout = 3 * time.Minute

// linkResult is what one run measured.
type linkResult struct {
	rate     float64       // records/s acked, from the first ack to the last
	acked    int           // records acked; fewer than asked for if the run timed out
	firstAck time.Duration // from the collector's start to the first ack
	// The transport handshake of the session that carried the first ack,
	// and from its end to that ack.
	handshake, afterHS time.Duration
}

// run connects a fresh gateway to the collector once, stops the
// collector, spools the lines while it is down, starts it again and
// measures the acks: the collector returns to a gateway that knew it, as
// after an outage in the field. A run that hits its timeout after acks
// began returns the rate of what was acked by then.
func (r linkRun) run(parent context.Context) (linkResult, error) {
	// Connecting once and spooling the lines are bounded apart from the
	// measured part, which --timeout bounds: at 20 % loss a first
	// connection alone can take seconds.
	ctx, cancel := context.WithTimeout(parent, prepTimeout)
	defer cancel()
	if err := os.MkdirAll(filepath.Join(r.dir, "logs"), 0o755); err != nil {
		return linkResult{}, err
	}
	logFile := filepath.Join(r.dir, "logs", "app.log")
	if err := os.WriteFile(logFile, nil, 0o644); err != nil {
		return linkResult{}, err
	}
	addr := r.lab.Collector.AddrPort(benchPort)
	transport := ""
	if r.transport != "tls" {
		transport = "\n      transport: " + r.transport
	}
	window := ""
	if r.window > 0 {
		window = fmt.Sprintf("\n  window: %d", r.window)
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
  reconnect_max: 100ms%s
`, r.dir, r.dir, addr, transport, filepath.Join(r.pki, pki.CACertFile), cert, key, window)
	config := filepath.Join(r.dir, "weir.yaml")
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		return linkResult{}, err
	}

	gw, err := startIn(r.lab.Gateway, filepath.Join(r.dir, "gateway.log"), r.weir, "run", "--config", config)
	if err != nil {
		return linkResult{}, err
	}
	defer gw.stop()
	socket := filepath.Join(r.dir, "data", "weir.sock")
	client := adminClient(socket)
	// waitFor polls the gateway's status until ok holds.
	waitFor := func(what string, ok func(benchStatus) bool) (benchStatus, error) {
		for {
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				return benchStatus{}, fmt.Errorf("gateway %s: %w (log %s)", what, err, gw.log)
			}
			if err := gw.exited(); err != nil {
				return benchStatus{}, err
			}
			if s, err := fetchBenchStatus(ctx, client); err == nil && ok(s) {
				return s, nil
			}
		}
	}

	args := []string{"run", "--ca", filepath.Join(r.pki, pki.CACertFile),
		"--cert", filepath.Join(r.pki, "collector-localhost.pem"), "--key", filepath.Join(r.pki, "collector-localhost-key.pem"),
		"--sink", filepath.Join(r.dir, "sink.jsonl")}
	if r.transport == "dtls" {
		args = append(args, "--listen", "127.0.0.1:7443", "--listen-dtls", addr.String())
	} else {
		args = append(args, "--listen", addr.String())
	}
	coll, err := startIn(r.lab.Collector, filepath.Join(r.dir, "collector-first.log"), r.collector, args...)
	if err != nil {
		return linkResult{}, err
	}
	_, err = waitFor("connecting to the collector", func(s benchStatus) bool {
		return len(s.Uplink.Endpoints) > 0 && s.Uplink.Endpoints[0].Handshakes > 0
	})
	coll.stop()
	if err != nil {
		return linkResult{}, err
	}
	if coll.err != nil {
		return linkResult{}, coll.err
	}
	st, err := waitFor("losing the collector", func(s benchStatus) bool {
		return len(s.Uplink.Endpoints) > 0 && s.Uplink.Endpoints[0].State != "connected"
	})
	if err != nil {
		return linkResult{}, err
	}
	base := st.Uplink.RecordsAcked // the gateway's own records, before the lines
	if err := os.WriteFile(logFile, r.lines, 0o644); err != nil {
		return linkResult{}, err
	}
	if _, err := waitFor(fmt.Sprintf("spooling %d lines", r.records), func(s benchStatus) bool {
		return s.Appended >= st.Appended+uint64(r.records)
	}); err != nil {
		return linkResult{}, err
	}

	coll, err = startIn(r.lab.Collector, filepath.Join(r.dir, "collector.log"), r.collector, args...)
	if err != nil {
		return linkResult{}, err
	}
	defer coll.stop()
	started := time.Now()
	ctx, cancelRun := context.WithTimeout(parent, r.timeout)
	defer cancelRun()

	var (
		t0, last           time.Time
		acked0, got        = base, base // got: the last count fetched; a failed fetch keeps it
		handshake, afterHS time.Duration
	)
	finish := func(partial bool) (linkResult, error) {
		res := linkResult{acked: int(got - base), handshake: handshake, afterHS: afterHS}
		if !t0.IsZero() {
			res.firstAck = t0.Sub(started)
			if d := last.Sub(t0); d > 0 && got > acked0 {
				res.rate = float64(got-acked0) / d.Seconds()
			}
		}
		gw.stop()
		coll.stop()
		if err := errors.Join(gw.err, coll.err); err != nil && !partial {
			return res, err
		}
		lines := 0
		if !partial {
			lines = r.records
		}
		if err := checkSink(filepath.Join(r.dir, "sink.jsonl"), int(got), lines); err != nil {
			return res, err
		}
		return res, nil
	}
	for {
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				// A cell that cannot finish in time (TCP at high loss)
				// still says how far it got.
				return finish(true)
			}
			return linkResult{acked: int(got - base)}, fmt.Errorf("%d of %d records acked: %w (logs %s, %s)", got-base, r.records, err, gw.log, coll.log)
		}
		for _, p := range []*proc{gw, coll} {
			if err := p.exited(); err != nil {
				return linkResult{acked: int(got - base)}, err
			}
		}
		s, err := fetchBenchStatus(ctx, client)
		if err != nil {
			continue
		}
		now := time.Now()
		if s.Uplink.RecordsAcked > got {
			got, last = s.Uplink.RecordsAcked, now
		}
		if t0.IsZero() && got > base {
			t0, acked0 = now, got
			if len(s.Uplink.Endpoints) > 0 {
				e := s.Uplink.Endpoints[0]
				handshake, afterHS = msDuration(e.HandshakeMillis), msDuration(e.FirstAckMillis)
			}
		}
		// Done when the lines are acked and everything else the gateway
		// appended meanwhile (seals, its own records) too: the count alone
		// could be reached by those while a last line is still in flight.
		if got-base >= uint64(r.records) && got >= s.Appended {
			if got == acked0 {
				return linkResult{acked: int(got - base)}, fmt.Errorf("all %d records acked at once; use more --records", r.records)
			}
			return finish(false)
		}
	}
}

// checkSink reads the collector's sink: it must hold at least the acked
// records (the gateway's own records among them), each line the run sent
// (seq=N) at most once, and every one of the first lines.
func checkSink(path string, acked, lines int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	seen := map[int]bool{}
	dups, total := 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		total++
		line := sc.Bytes()
		i := bytes.LastIndex(line, []byte("seq="))
		if i < 0 {
			continue
		}
		j := i + 4
		for j < len(line) && line[j] >= '0' && line[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(string(line[i+4 : j]))
		if err != nil {
			return fmt.Errorf("sink %s: bad seq in %q", path, line)
		}
		if seen[n] {
			dups++
		}
		seen[n] = true
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read sink %s: %w", path, err)
	}
	if dups > 0 {
		return fmt.Errorf("sink %s holds %d lines twice", path, dups)
	}
	if total < acked {
		return fmt.Errorf("sink %s holds %d records, %d were acked", path, total, acked)
	}
	for i := range lines {
		if !seen[i] {
			return fmt.Errorf("sink %s lacks line seq=%d", path, i)
		}
	}
	return nil
}

type benchStatus struct {
	Appended uint64 `json:"records_appended"`
	Uplink   struct {
		RecordsAcked uint64 `json:"records_acked"`
		Endpoints    []struct {
			State           string  `json:"state"`
			Handshakes      uint64  `json:"handshakes"`
			HandshakeMillis float64 `json:"handshake_ms"`
			FirstAckMillis  float64 `json:"first_ack_ms"`
		} `json:"endpoints"`
	} `json:"uplink"`
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

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
