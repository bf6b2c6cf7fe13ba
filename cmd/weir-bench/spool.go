package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/spool"
)

const recordSize = 200

func newSpoolCmd() *cobra.Command {
	var (
		dir      string
		seconds  float64
		backlog  spool.ByteSize = 1 << 30
		skipHold bool
	)
	cmd := &cobra.Command{
		Use:   "spool",
		Short: "Durable append rates, read+ack rate, and the RSS of a process holding a large backlog",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				d, err := os.MkdirTemp("", "weir-bench-spool-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(d)
				dir = d
			}
			run := time.Duration(seconds * float64(time.Second))
			fmt.Printf("spool, %d-byte records, profile small, every commit fsynced (%s)\n\n", recordSize, dir)
			fmt.Printf("%-34s %12s %10s %10s %9s\n", "append", "records/s", "p50", "p99", "commits")
			for _, c := range []struct {
				name           string
				batch, writers int
			}{
				{"batch 1, 1 writer", 1, 1},
				{"batch 1, 64 writers (group commit)", 1, 64},
				{"batch 64, 1 writer", 64, 1},
				{"batch 64, 4 writers", 64, 4},
				{"batch 1024, 1 writer", 1024, 1},
			} {
				r, err := benchAppend(filepath.Join(dir, fmt.Sprintf("append-%d-%d", c.batch, c.writers)), c.batch, c.writers, run)
				if err != nil {
					return err
				}
				fmt.Printf("%-34s %12.0f %10s %10s %9d\n", c.name, r.rate, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.commits)
			}
			rate, err := benchReadAck(filepath.Join(dir, "readack"), 500_000)
			if err != nil {
				return err
			}
			fmt.Printf("\n%-34s %12.0f\n", "read 1000 + ack, records/s", rate)
			if skipHold {
				return nil
			}
			return benchHold(filepath.Join(dir, "hold"), int64(backlog))
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the spools (default: a temporary one, removed after)")
	cmd.Flags().Float64Var(&seconds, "seconds", 3, "how long each append case runs")
	cmd.Flags().TextVar(&backlog, "backlog", &backlog, "backlog the RSS measurement holds")
	cmd.Flags().BoolVar(&skipHold, "skip-rss", false, "skip the backlog RSS measurement")
	return cmd
}

// open opens a spool as the gateway does by default: profile small,
// max_bytes 4GiB.
func open(dir string) (*spool.Spool, error) {
	return spool.Open(spool.Options{Dir: dir, Config: spool.DefaultConfig(), Logger: slog.New(slog.DiscardHandler)})
}

type appendResult struct {
	rate     float64
	p50, p99 time.Duration
	commits  uint64
}

func benchAppend(dir string, batch, writers int, d time.Duration) (appendResult, error) {
	s, err := open(dir)
	if err != nil {
		return appendResult{}, err
	}
	defer os.RemoveAll(dir)
	defer s.Close()
	entries := make([]spool.Entry, batch)
	for i := range entries {
		entries[i] = spool.Entry{Data: make([]byte, recordSize)}
	}
	ctx := context.Background()
	var (
		mu    sync.Mutex
		lat   []time.Duration
		total int
		wg    sync.WaitGroup
		errs  = make(chan error, writers)
	)
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			n := 0
			for time.Since(start) < d {
				t := time.Now()
				if _, err := s.Append(ctx, entries, nil); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(t))
				n += batch
			}
			mu.Lock()
			lat, total = append(lat, mine...), total+n
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return appendResult{}, err
	}
	slices.Sort(lat)
	return appendResult{
		rate: float64(total) / elapsed.Seconds(),
		p50:  lat[len(lat)/2], p99: lat[len(lat)*99/100],
		commits: s.Stats().Commits,
	}, nil
}

func benchReadAck(dir string, n int) (float64, error) {
	s, err := open(dir)
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	defer s.Close()
	entries := make([]spool.Entry, 1000)
	for i := range entries {
		entries[i] = spool.Entry{Data: make([]byte, recordSize)}
	}
	for i := 0; i < n; i += len(entries) {
		if _, err := s.Append(context.Background(), entries, nil); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	done := 0
	for cursor := uint64(0); ; {
		recs, err := s.Read(cursor, 1000, 0)
		if err != nil {
			return 0, err
		}
		if len(recs) == 0 {
			break
		}
		last := recs[len(recs)-1].Seq
		if err := s.Ack(last); err != nil {
			return 0, err
		}
		cursor, done = last+1, done+len(recs)
	}
	return float64(done) / time.Since(start).Seconds(), nil
}

// benchHold fills a spool to backlog bytes in one process, then measures the
// peak RSS of a fresh process that opens it and keeps 10k records/s flowing
// through it (append, read, ack) while the backlog stays.
func benchHold(dir string, backlog int64) error {
	fmt.Printf("\nRSS holding a %s backlog (profile small, Go memory limit as the gateway's default: GOMEMLIMIT or 64MiB)\n", spool.ByteSize(backlog))
	for _, phase := range []string{"fill", "steady"} {
		out, err := exec.Command(os.Args[0], "hold", "--dir", dir, "--phase", phase, "--backlog", fmt.Sprint(backlog)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("hold %s: %w: %s", phase, err, out)
		}
		fmt.Print(string(out))
	}
	return nil
}

// memSampler follows the process's resident memory from /proc: the
// kernel's high-water mark of all of it (VmHWM), and the peaks of private
// memory (RssAnon: the Go heap, Badger's skiplists) and of mapped file
// pages (RssFile: Badger's tables and memtable logs, page cache the kernel
// can take back), sampled every 50 ms.
type memSampler struct {
	mu                 sync.Mutex
	peakAnon, peakFile int64
	stop               chan struct{}
	done               chan struct{}
}

func startMemSampler() *memSampler {
	m := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			m.sample()
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memSampler) sample() {
	st := procStatus()
	m.mu.Lock()
	m.peakAnon = max(m.peakAnon, st["RssAnon"])
	m.peakFile = max(m.peakFile, st["RssFile"])
	m.mu.Unlock()
}

// report stops the sampler and describes what it saw.
func (m *memSampler) report() string {
	close(m.stop)
	<-m.done
	m.sample()
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	return fmt.Sprintf("peak private %s, peak file pages %s, VmHWM %s",
		mib(m.peakAnon), mib(m.peakFile), mib(procStatus()["VmHWM"]))
}

// procStatus reads the kB figures of /proc/self/status, in bytes.
func procStatus() map[string]int64 {
	v := map[string]int64{}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return v
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var n int64
		if _, err := fmt.Sscanf(strings.TrimSpace(val), "%d kB", &n); err == nil {
			v[k] = n << 10
		}
	}
	return v
}
