package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// generator appends numbered 200-byte lines round robin to its files:
// "wbL<12-digit number> T<19-digit unix ns written> xxx...". The number
// is the exactly-once check's, the time the latency's.
type generator struct {
	rnd   uint64
	files []*os.File
	bufs  []*bufio.Writer
	next  int
}

func newGenerator(dir string, n int) (*generator, error) {
	g := &generator{rnd: 0x9e3779b97f4a7c15}
	for i := range n {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("app-%d.log", i)), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			g.close()
			return nil, err
		}
		g.files = append(g.files, f)
		g.bufs = append(g.bufs, bufio.NewWriterSize(f, 256<<10))
	}
	return g, nil
}

func (g *generator) close() {
	for _, f := range g.files {
		f.Close()
	}
}

// words fill each line after its number and time, picked at random, so
// that compression meets text like a log's (a line of one repeated
// character would compress to almost nothing).
var words = strings.Fields(`user session opened closed for root by uid pid
	connection from port accepted rejected timeout retry sshd cron kernel
	eth0 link up down temperature pressure flow valve pump alarm cleared
	warning error info debug device sensor modbus unit register value ok
	failed reading write read started stopped service reload config 10.0.0.7
	192.168.1.20 tcp udp tls handshake certificate expired renewed disk
	full free space mount backup job completed queue length latency ms`)

// write appends n lines at rate lines/s (0: as fast as it can), in slices
// of 5 ms, each file's buffer flushed at the end of a slice.
func (g *generator) write(n, rate int) error {
	const slice = 5 * time.Millisecond
	per := n
	if rate > 0 {
		per = max(1, rate*int(slice)/int(time.Second))
	} else {
		per = 2000
	}
	start := time.Now()
	line := make([]byte, 0, tailLineSize)
	for done := 0; done < n; {
		if rate > 0 {
			due := start.Add(time.Duration(float64(done) / float64(rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		now := time.Now().UnixNano()
		for k := 0; k < per && done < n; k++ {
			line = fmt.Appendf(line[:0], "wbL%012d T%019d ", g.next, now)
			for len(line) < tailLineSize-1 {
				g.rnd ^= g.rnd << 13
				g.rnd ^= g.rnd >> 7
				g.rnd ^= g.rnd << 17
				w := words[g.rnd%uint64(len(words))]
				line = append(line, w[:min(len(w), tailLineSize-2-len(line))]...)
				line = append(line, ' ')
			}
			line = line[:tailLineSize-1]
			line = append(line, '\n')
			if _, err := g.bufs[g.next%len(g.bufs)].Write(line); err != nil {
				return err
			}
			g.next++
			done++
		}
		for _, b := range g.bufs {
			if err := b.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// sinkReader follows the receiver's output file(s) (a glob), counts each
// line's number and, while asked, the latency from written to read.
type sinkReader struct {
	glob   string
	mu     sync.Mutex
	counts []uint8
	seen   int // distinct numbers seen
	last   time.Time
	lat    []float64 // ms
	latOn  bool
	offs   map[string]int64
	carry  map[string][]byte
	signal chan struct{}
}

func newSinkReader(glob string, total int) *sinkReader {
	return &sinkReader{glob: glob, counts: make([]uint8, total+1), offs: map[string]int64{}, carry: map[string][]byte{}, signal: make(chan struct{}, 1)}
}

func (s *sinkReader) run(ctx context.Context) {
	buf := make([]byte, 1<<20)
	for ctx.Err() == nil {
		paths, _ := filepath.Glob(s.glob)
		got := false
		for _, p := range paths {
			if s.readFrom(p, buf) {
				got = true
			}
		}
		if !got {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func (s *sinkReader) readFrom(p string, buf []byte) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	got := false
	for {
		n, err := f.ReadAt(buf, s.offs[p])
		if n > 0 {
			got = true
			s.offs[p] += int64(n)
			s.take(p, buf[:n], time.Now())
		}
		if err != nil || n < len(buf) {
			return got
		}
	}
}

func (s *sinkReader) take(p string, b []byte, now time.Time) {
	data := append(s.carry[p], b...)
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		s.carry[p] = data
		return
	}
	s.carry[p] = append([]byte(nil), data[end+1:]...)
	s.mu.Lock()
	defer s.mu.Unlock()
	for line := range bytes.SplitSeq(data[:end], []byte{'\n'}) {
		i := bytes.Index(line, []byte("wbL"))
		if i < 0 || len(line) < i+3+12+2+19 {
			continue
		}
		num, err1 := strconv.Atoi(string(line[i+3 : i+15]))
		ns, err2 := strconv.ParseInt(string(line[i+17:i+36]), 10, 64)
		if err1 != nil || err2 != nil || num < 0 || num >= len(s.counts) {
			continue
		}
		if s.counts[num] == 0 {
			s.seen++
		}
		if s.counts[num] < 255 {
			s.counts[num]++
		}
		if s.latOn {
			s.lat = append(s.lat, float64(now.UnixNano()-ns)/1e6)
		}
	}
	s.last = now
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// waitFor returns when every line numbered below n has arrived, or fails
// when none has arrived for stall.
func (s *sinkReader) waitFor(n int, stall time.Duration) error {
	last, lastAt := -1, time.Now()
	for {
		s.mu.Lock()
		seen := s.seen
		s.mu.Unlock()
		if seen >= n {
			return nil
		}
		if seen != last {
			last, lastAt = seen, time.Now()
		}
		if time.Since(lastAt) > stall {
			return fmt.Errorf("%d of %d lines at the sink, none more for %s", seen, n, stall)
		}
		select {
		case <-s.signal:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *sinkReader) lastArrival() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *sinkReader) startLatency() {
	s.mu.Lock()
	s.lat, s.latOn = s.lat[:0], true
	s.mu.Unlock()
}

func (s *sinkReader) stopLatency() []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latOn = false
	return append([]float64(nil), s.lat...)
}

// count says how many of the first n lines arrived, how many did not, and
// how many arrived more than once.
func (s *sinkReader) count(n int) (delivered, missing, duplicated int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.counts[:n] {
		switch {
		case c == 0:
			missing++
		case c > 1:
			delivered++
			duplicated++
		default:
			delivered++
		}
	}
	return
}

// procCPU is a process's user+system CPU seconds (0 if it is gone).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command's closing parenthesis; utime and stime are
	// the 14th and 15th of the line.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100 // USER_HZ
}

// procMem is a process's resident bytes and the anonymous part of them
// (heap, stacks: what the process itself holds). The rest is mapped files,
// for Badger its tables and memtables: page cache the kernel can reclaim.
func procMem(pid int) (rss, anon int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "RssAnon:":
			anon = kb << 10
		}
	}
	return rss, anon
}

type peakSampler struct {
	mu                     sync.Mutex
	sRSS, sAnon, rRSS, rPr int64
}

func newPeakSampler() *peakSampler { return &peakSampler{} }

func (p *peakSampler) run(ctx context.Context, sys system) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for ctx.Err() == nil {
		sr, sp := procMem(sys.senderPID())
		rr, rp := procMem(sys.receiverPID())
		p.mu.Lock()
		p.sRSS, p.sAnon, p.rRSS, p.rPr = max(p.sRSS, sr), max(p.sAnon, sp), max(p.rRSS, rr), max(p.rPr, rp)
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

func (p *peakSampler) peaks() (senderRSS, senderAnon, receiverRSS int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sRSS, p.sAnon, p.rRSS
}

// fsyncCount counts fsync, fdatasync, sync_file_range and msync calls of
// two processes with perf's syscall tracepoints (no slowdown worth
// naming, unlike strace); zeros when perf is not there.
type fsyncCount struct {
	cmds  [2]*exec.Cmd
	outs  [2]string
	start time.Time
}

var syncCalls = []string{"fsync", "fdatasync", "sync_file_range", "msync"}

func startFsyncCount(pids ...int) *fsyncCount {
	fc := &fsyncCount{start: time.Now()}
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fc
	}
	var ev []string
	for _, c := range syncCalls {
		ev = append(ev, "syscalls:sys_enter_"+c)
	}
	for i, pid := range pids[:2] {
		f, err := os.CreateTemp("", "weir-bench-perf-")
		if err != nil {
			continue
		}
		f.Close()
		fc.outs[i] = f.Name()
		cmd := exec.Command(perf, "stat", "-x,", "-o", f.Name(), "-e", strings.Join(ev, ","), "-p", strconv.Itoa(pid))
		if cmd.Start() == nil {
			fc.cmds[i] = cmd
		}
	}
	return fc
}

func (fc *fsyncCount) stop() (sender, receiver float64) {
	el := time.Since(fc.start).Seconds()
	var n [2]float64
	for i, cmd := range fc.cmds {
		if cmd == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		b, _ := os.ReadFile(fc.outs[i])
		os.Remove(fc.outs[i])
		for l := range strings.SplitSeq(string(b), "\n") {
			f := strings.Split(l, ",")
			if len(f) > 2 && strings.HasPrefix(f[2], "syscalls:") {
				v, _ := strconv.ParseFloat(f[0], 64)
				n[i] += v
			}
		}
	}
	return n[0] / el, n[1] / el
}

func numCPU() int { return runtime.NumCPU() }

// waitListening waits until addr takes TCP connections, or proc exits.
func waitPort(check func() error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %w", timeout, err)
}

// tailFile is the last n bytes of a file, for error messages.
func tailFile(p string, n int64) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, st.Size()-n)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return string(b)
}

// wireCounter counts the bytes of IP packets sent to the receiver's port
// (TCP or UDP, headers included) with an nftables counter, the same way
// for every system; -1 when nft is not usable (not root, no nftables).
type wireCounter struct{ table string }

func newWireCounter(port int) *wireCounter {
	w := &wireCounter{table: fmt.Sprintf("weirbench%d", port)}
	rules := fmt.Sprintf("table inet %[1]s {\n chain in {\n  type filter hook input priority 0; policy accept;\n  meta l4proto { tcp, udp } th dport %[2]d counter\n }\n}\n", w.table, port)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if err := cmd.Run(); err != nil {
		w.table = ""
	}
	return w
}

func (w *wireCounter) bytes() int64 {
	if w.table == "" {
		return -1
	}
	out, err := exec.Command("nft", "list", "table", "inet", w.table).Output()
	if err != nil {
		return -1
	}
	_, after, ok := strings.Cut(string(out), " bytes ")
	if !ok {
		return -1
	}
	n, _ := strconv.ParseInt(strings.Fields(after)[0], 10, 64)
	return n
}

func (w *wireCounter) close() {
	if w.table != "" {
		_ = exec.Command("nft", "delete", "table", "inet", w.table).Run()
	}
}
