package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// e2eOptions are the end-to-end run's knobs (flags of `weir-bench e2e`).
type e2eOptions struct {
	dir       string
	bin       string // directory of weir and weir-collector
	syslogNG  string // syslog-ng's extracted root (scripts/deps.sh), or "" for the installed one
	systems   []string
	rates     []int
	rateFor   time.Duration
	flatOut   int // lines per flat-out run
	runs      int // flat-out runs
	backlog   int // lines of the drain case
	files     int // tailed files
	results   string
	keepFiles bool
	profile   string // directory for weir run's CPU and block profiles
}

func newE2ECmd() *cobra.Command {
	o := e2eOptions{}
	var rates []string
	cmd := &cobra.Command{
		Use:   "e2e",
		Short: "End to end: generated log files tailed, spooled, sent over mutual TLS and written durably by a second process; Weir, rsyslog and syslog-ng side by side",
		Long: `End to end, with the real binaries: a generator appends 200-byte lines to
--files files, first at fixed --rates for --rate-for each, then flat out
(--flat-out lines, --runs times), then a backlog of --backlog lines written
while the receiver is stopped and drained after it returns. Each system
tails the files, queues durably, sends over TLS with client certificates
to a second process of its own kind, which writes a file:

  weir            weir run → spool → uplink (tls, zstd) → weir-collector run (JSONL sink)
  weir-nozstd     the same with compression none (bytes on the wire)
  weir-dtls       the same over DTLS
  weir-large      the same with the spool's large profile (not run by default)
  rsyslog         imfile → disk-assisted queue → omfwd (gtls, x509) → rsyslogd → omfile
  rsyslog-sync    the same with a disk queue synced at every message (Weir's durability;
                  about 1,000 records/s, so it runs a shorter case)
  syslog-ng       wildcard-file → network(tls) with a reliable disk-buffer → syslog-ng → file

bench/README.md says how each is configured and how durable it is. The
table (one column per system) goes to stdout and, as Markdown and JSON,
to --results.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, r := range rates {
				n, err := strconv.Atoi(r)
				if err != nil || n <= 0 {
					return fmt.Errorf("e2e: --rates: %q is not a positive number of lines/s", r)
				}
				o.rates = append(o.rates, n)
			}
			if o.dir == "" {
				d, err := os.MkdirTemp("", "weir-bench-e2e-")
				if err != nil {
					return err
				}
				if !o.keepFiles {
					defer os.RemoveAll(d)
				}
				o.dir = d
			}
			return runE2E(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "working directory (default: a temporary one, removed after)")
	f.StringVar(&o.bin, "bin", "bin", "directory holding weir and weir-collector")
	f.StringVar(&o.syslogNG, "syslog-ng-root", "bin/tools/syslog-ng", "syslog-ng as scripts/deps.sh extracts it (its usr/sbin/syslog-ng); empty: syslog-ng on PATH")
	f.StringSliceVar(&o.systems, "systems", []string{"weir", "weir-nozstd", "weir-dtls", "rsyslog", "rsyslog-sync", "syslog-ng"}, "systems to run, in order")
	f.StringSliceVar(&rates, "rates", []string{"10000", "50000"}, "fixed rates, lines/s")
	f.DurationVar(&o.rateFor, "rate-for", 5*time.Second, "how long each fixed rate lasts")
	f.IntVar(&o.flatOut, "flat-out", 200_000, "lines per flat-out run")
	f.IntVar(&o.runs, "runs", 3, "flat-out runs (min/median/max shown)")
	f.IntVar(&o.backlog, "backlog", 200_000, "lines of the backlog drained after the receiver returns (1,000,000 take too long for a 10-minute bench on 2 cores)")
	f.IntVar(&o.files, "files", 4, "files the generator writes (round robin)")
	f.StringVar(&o.results, "results", "bench/results", "directory the table is written to (e2e.md, e2e.json)")
	f.StringVar(&o.profile, "profile", "", "directory: weir run writes its CPU and block profiles there (<system>.cpu.pprof, <system>.block.pprof), weir-collector run its CPU profile, one per start (<system>.collector.<start>.cpu.pprof); read them with go tool pprof -top")
	f.BoolVar(&o.keepFiles, "keep", false, "keep the working directory (logs, configurations, sinks)")
	return cmd
}

// result is one system's figures.
type result struct {
	System string `json:"system"`
	// Fixed rates: lines/s asked → achieved, latency.
	Rates []rateResult `json:"rates"`
	// Flat out: records/s of each run, and the median run's other figures.
	FlatOut      []float64 `json:"flat_out_records_per_s"`
	CPUPerM      float64   `json:"sender_cpu_s_per_million"`
	RecvCPUPerM  float64   `json:"receiver_cpu_s_per_million"`
	WirePerRec   float64   `json:"wire_bytes_per_record"`
	FlatP50      float64   `json:"flat_out_p50_ms"`
	FlatP99      float64   `json:"flat_out_p99_ms"`
	DrainSeconds float64   `json:"drain_s"`
	DrainRate    float64   `json:"drain_records_per_s"`
	SenderRSS    int64     `json:"sender_peak_rss_bytes"`
	SenderAnon   int64     `json:"sender_peak_anon_bytes"`
	RecvRSS      int64     `json:"receiver_peak_rss_bytes"`
	Written      int       `json:"written"`
	Delivered    int       `json:"delivered"`
	Missing      int       `json:"missing"`
	Duplicated   int       `json:"duplicated"`
	FsyncSender  float64   `json:"sender_fsyncs_per_s"`
	FsyncRecv    float64   `json:"receiver_fsyncs_per_s"`
	Err          string    `json:"error,omitempty"`
	Scaled       string    `json:"scaled,omitempty"` // the shorter case a slow system ran
}

type rateResult struct {
	Asked    int     `json:"asked"`
	Achieved float64 `json:"achieved"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
}

func runE2E(ctx context.Context, o e2eOptions) error {
	if err := os.MkdirAll(o.results, 0o755); err != nil {
		return err
	}
	load0 := loadAvg()
	start := time.Now()
	fmt.Printf("end to end, %d-byte lines in %d files, load average %s (%s)\n", tailLineSize, o.files, load0, o.dir)
	mach, err := measureMachine(o.dir)
	if err != nil {
		return err
	}
	fmt.Println(mach)
	var res []result
	for _, name := range o.systems {
		sys, err := newSystem(name, o)
		if err != nil {
			return err
		}
		fmt.Printf("\n== %s\n", name)
		so, scaled := shortCase(name, o)
		if scaled != "" {
			fmt.Printf("   %s\n", scaled)
		}
		r, err := runSystem(ctx, so, sys)
		r.Scaled = scaled
		if err != nil && r.Err == "" {
			r.Err = err.Error()
			fmt.Printf("   %s: %v\n", name, err)
		}
		r.System = name
		res = append(res, r)
	}
	env := fmt.Sprintf("load average %s at the start, %s at the end; %d cores; %s; %s",
		load0, loadAvg(), numCPU(), time.Since(start).Round(time.Second), mach)
	md := table(res, o, env) + ceilingLine(res, mach)
	fmt.Print("\n" + md)
	if err := os.WriteFile(filepath.Join(o.results, "e2e.md"), []byte(md), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(struct {
		Environment string   `json:"environment"`
		Machine     machine  `json:"machine"`
		Results     []result `json:"results"`
	}{env, mach, res}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.results, "e2e.json"), append(js, '\n'), 0o644)
}

// shortCase shortens the cases for a system that syncs every message
// (rsyslog-sync: about 1,000 records/s, which would take the bench past
// its 10 minutes): no fixed rates, one flat-out run of at most 20,000
// lines, a backlog of at most 5,000. Its rates and CPU per record stay
// comparable; the reason says what it ran.
func shortCase(name string, o e2eOptions) (e2eOptions, string) {
	if name != "rsyslog-sync" {
		return o, ""
	}
	o.rates = nil
	o.flatOut, o.runs, o.backlog = min(o.flatOut, 20_000), 1, min(o.backlog, 5_000)
	return o, fmt.Sprintf("ran a shorter case (it syncs every message): no fixed rates, flat out %d lines x 1 run, backlog %d lines", o.flatOut, o.backlog)
}

// runSystem runs every case on one system, each case's lines numbered on
// from the last, and counts at the end.
func runSystem(ctx context.Context, o e2eOptions, sys system) (result, error) {
	var r result
	dir := filepath.Join(o.dir, sys.name())
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return r, err
	}
	gen, err := newGenerator(logs, o.files)
	if err != nil {
		return r, err
	}
	defer gen.close()
	total := o.flatOut*o.runs + o.backlog
	for _, rate := range o.rates {
		total += rate * int(o.rateFor/time.Second)
	}
	sk := newSinkReader(sys.sink(), total)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := sys.startReceiver(ctx); err != nil {
		return r, err
	}
	if err := sys.startSender(ctx); err != nil {
		sys.stop()
		return r, err
	}
	defer sys.stop()
	go sk.run(ctx)
	wire := newWireCounter(sys.port())
	defer wire.close()
	mem := newPeakSampler()
	go mem.run(ctx, sys)

	// Warm up: one line through, so handshakes and file discovery are
	// out of the figures.
	if err := gen.write(1, 0); err != nil {
		return r, err
	}
	if err := sk.waitFor(gen.next, 60*time.Second); err != nil {
		return r, fmt.Errorf("warm-up line: %w", err)
	}
	for _, rate := range o.rates {
		n := rate * int(o.rateFor/time.Second)
		c, err := measure(sys, wire, gen, sk, n, rate)
		if err != nil {
			return r, fmt.Errorf("%d lines/s: %w", rate, err)
		}
		r.Rates = append(r.Rates, rateResult{Asked: rate, Achieved: c.rate, P50: c.p50, P99: c.p99})
		fmt.Printf("   %6d lines/s: %8.0f records/s, p50 %6.1f ms, p99 %7.1f ms\n", rate, c.rate, c.p50, c.p99)
	}
	var flat []caseResult
	for i := range o.runs {
		c, err := measure(sys, wire, gen, sk, o.flatOut, 0)
		if err != nil {
			return r, fmt.Errorf("flat out, run %d: %w", i+1, err)
		}
		flat = append(flat, c)
		r.FlatOut = append(r.FlatOut, c.rate)
		fmt.Printf("   flat out %d: %8.0f records/s, p50 %6.1f ms, p99 %7.1f ms, sender %.2f CPU s/M, %.0f B/record on the wire, fsync/s %.0f+%.0f\n",
			i+1, c.rate, c.p50, c.p99, c.cpuPerM, c.wire, c.fsyncSender, c.fsyncRecv)
	}
	slices.SortFunc(flat, func(a, b caseResult) int { return cmp.Compare(a.rate, b.rate) })
	m := flat[len(flat)/2]
	r.CPUPerM, r.RecvCPUPerM, r.WirePerRec, r.FlatP50, r.FlatP99 = m.cpuPerM, m.recvCPUPerM, m.wire, m.p50, m.p99
	r.FsyncSender, r.FsyncRecv = m.fsyncSender, m.fsyncRecv

	if o.backlog > 0 {
		d, err := drain(ctx, sys, gen, sk, o.backlog)
		if d > 0 {
			r.DrainSeconds, r.DrainRate = d.Seconds(), float64(o.backlog)/d.Seconds()
			fmt.Printf("   backlog of %d drained in %.1f s (%.0f records/s)\n", o.backlog, d.Seconds(), r.DrainRate)
		}
		if err != nil {
			// Counted all the same: what is missing is the finding.
			r.Err = fmt.Sprintf("backlog: %v", err)
			fmt.Printf("   backlog: %v\n", err)
		}
	}
	// Anything still on its way (a resend) has a moment to arrive before
	// the count.
	time.Sleep(2 * time.Second)
	r.Written = gen.next
	r.Delivered, r.Missing, r.Duplicated = sk.count(gen.next)
	r.SenderRSS, r.SenderAnon, r.RecvRSS = mem.peaks()
	fmt.Printf("   written %d, delivered %d, missing %d, duplicated %d; peak RSS sender %s (anonymous %s), receiver %s\n",
		r.Written, r.Delivered, r.Missing, r.Duplicated, mib(r.SenderRSS), mib(r.SenderAnon), mib(r.RecvRSS))
	return r, nil
}

type caseResult struct {
	rate, p50, p99, cpuPerM, recvCPUPerM, wire float64
	fsyncSender, fsyncRecv                     float64
}

// measure writes n lines at rate (0: flat out) and waits for all of them
// at the sink: records/s from the first line written to the last one
// durable, latency of each line, the sender's CPU per record and the
// bytes sent to the receiver's port.
func measure(sys system, wire *wireCounter, gen *generator, sk *sinkReader, n, rate int) (caseResult, error) {
	var c caseResult
	first := gen.next
	sp, rp := sys.senderPID(), sys.receiverPID()
	cpu0, rcpu0, io0 := procCPU(sp), procCPU(rp), wire.bytes()
	fs := startFsyncCount(sp, rp)
	sk.startLatency()
	t0 := time.Now()
	if err := gen.write(n, rate); err != nil {
		return c, err
	}
	if err := sk.waitFor(first+n, 30*time.Second); err != nil {
		return c, err
	}
	el := sk.lastArrival().Sub(t0)
	cpu1, rcpu1, io1 := procCPU(sp), procCPU(rp), wire.bytes()
	c.fsyncSender, c.fsyncRecv = fs.stop()
	lat := sk.stopLatency()
	c.rate = float64(n) / el.Seconds()
	c.p50, c.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	c.cpuPerM = (cpu1 - cpu0) / float64(n) * 1e6
	c.recvCPUPerM = (rcpu1 - rcpu0) / float64(n) * 1e6
	c.wire = -1
	if io0 >= 0 && io1 >= 0 {
		c.wire = float64(io1-io0) / float64(n)
	}
	return c, nil
}

// drain stops the receiver, writes n lines, waits until the sender has
// taken them in (its CPU idle), starts the receiver and times until the
// last line is at the sink.
func drain(ctx context.Context, sys system, gen *generator, sk *sinkReader, n int) (time.Duration, error) {
	if err := sys.stopReceiver(); err != nil {
		return 0, err
	}
	first := gen.next
	if err := gen.write(n, 0); err != nil {
		return 0, err
	}
	// The sender has queued what it read when a second passes with less
	// than 2 % of a core used (at least 2 s, at most 60 s: a peer that
	// is still writing its queue then drains while it finishes).
	sp := sys.senderPID()
	time.Sleep(2 * time.Second)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		c0 := procCPU(sp)
		time.Sleep(time.Second)
		if procCPU(sp)-c0 < 0.02 {
			break
		}
	}
	if err := sys.startReceiver(ctx); err != nil {
		return 0, err
	}
	t0 := time.Now()
	err := sk.waitFor(first+n, 30*time.Second)
	// Short of lines, the time is to the last one that came, and the
	// error says how many did not.
	return sk.lastArrival().Sub(t0), err
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[min(len(v)-1, int(p*float64(len(v))))]
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
