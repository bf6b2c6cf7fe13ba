package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/sensors/hostlog"
	"github.com/weirgw/weir/spool"
)

const tailLineSize = 200 // bytes, with the newline

func newTailCmd() *cobra.Command {
	var (
		dir     string
		seconds float64
		runs    int
		watch   string
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "File tailing into a real spool: lines/s and MB/s of 200-byte lines, 1 and 8 files",
		Long: `File tailing into a real spool (profile small, every commit fsynced).

Writers append 200-byte lines to N files as fast as the tailer takes them
(each keeps at most 100,000 lines ahead of it); one hostlog.Tailer follows
the files and hands its batches to a sink that stamps, encodes and appends
them to the spool with their checkpoints, as the gateway does. The table
shows the median of --runs runs of --seconds each: lines tailed per second
and MB/s of line bytes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				d, err := os.MkdirTemp("", "weir-bench-tail-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(d)
				dir = d
			}
			d := time.Duration(seconds * float64(time.Second))
			fmt.Printf("tail, %d-byte lines into a spool, profile small, every commit fsynced, watch %s (%s)\n\n", tailLineSize, watch, dir)
			fmt.Printf("%-8s %12s %10s %12s\n", "files", "lines/s", "MB/s", "emits/s")
			for _, files := range []int{1, 8} {
				var res []tailResult
				for i := range runs {
					r, err := benchTail(filepath.Join(dir, fmt.Sprintf("tail-%d-%d", files, i)), files, d, watch)
					if err != nil {
						return err
					}
					res = append(res, r)
				}
				slices.SortFunc(res, func(a, b tailResult) int { return cmp.Compare(a.lines, b.lines) })
				m := res[len(res)/2]
				fmt.Printf("%-8d %12.0f %10.1f %12.0f\n", files, m.lines, m.lines*tailLineSize/1e6, m.emits)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the files and spools (default: a temporary one, removed after)")
	cmd.Flags().Float64Var(&seconds, "seconds", 3, "how long each run lasts")
	cmd.Flags().IntVar(&runs, "runs", 3, "runs per case; the median is shown")
	cmd.Flags().StringVar(&watch, "watch", hostlog.WatchAuto, "auto (inotify) or poll")
	return cmd
}

type tailResult struct {
	lines, emits float64 // per second
}

// spoolSink is the gateway's Emit, reduced: stamp, encode, append with the
// checkpoints in one transaction.
type spoolSink struct {
	s     *spool.Spool
	mu    sync.Mutex
	emits int
}

func (k *spoolSink) Emit(ctx context.Context, evs []event.Event, cps []spool.Checkpoint) error {
	// The gateway's own stamping and encoding, so the figure is the
	// gateway's path.
	recs, err := gateway.Entries(evs, gateway.Stamp{Gateway: "bench", Host: "bench", Time: time.Now()})
	if err != nil {
		return err
	}
	_, err = k.s.Append(ctx, recs, cps)
	k.mu.Lock()
	k.emits++
	k.mu.Unlock()
	return err
}

// StampBytes is the gateway's: the stamp above adds the id and host.
func (k *spoolSink) StampBytes() int { return len("bench") + len("bench") }

func benchTail(dir string, files int, d time.Duration, watch string) (tailResult, error) {
	defer os.RemoveAll(dir)
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return tailResult{}, err
	}
	sp, err := open(filepath.Join(dir, "spool"))
	if err != nil {
		return tailResult{}, err
	}
	defer sp.Close()
	cfg := hostlog.DefaultFileConfig()
	cfg.Name, cfg.Paths, cfg.StartAt, cfg.Watch = "bench", []string{filepath.Join(logs, "*.log")}, hostlog.StartAtBeginning, watch
	tl, err := hostlog.NewTailer(cfg, sp, slog.New(slog.DiscardHandler))
	if err != nil {
		return tailResult{}, err
	}
	sink := &spoolSink{s: sp}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tailed := func() uint64 { return tl.Status().Lines }
	var wg sync.WaitGroup
	errs := make(chan error, files+1)
	written := make([]uint64, files)
	var wmu sync.Mutex
	ahead := func() uint64 {
		wmu.Lock()
		defer wmu.Unlock()
		var w uint64
		for _, n := range written {
			w += n
		}
		return w - min(w, tailed())
	}
	for i := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := writeLines(ctx, filepath.Join(logs, fmt.Sprintf("f%d.log", i)), func(n uint64) {
				wmu.Lock()
				written[i] += n
				wmu.Unlock()
			}, func() bool { return ahead() > 100_000 }); err != nil {
				errs <- err
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := tl.Run(ctx, sink); err != nil {
			errs <- err
		}
	}()
	// Measure from the first line tailed, over d.
	for tailed() == 0 {
		time.Sleep(time.Millisecond)
	}
	l0, start := tailed(), time.Now()
	sink.mu.Lock()
	e0 := sink.emits
	sink.mu.Unlock()
	time.Sleep(d)
	l1, el := tailed(), time.Since(start)
	sink.mu.Lock()
	e1 := sink.emits
	sink.mu.Unlock()
	cancel()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return tailResult{}, err
	}
	return tailResult{lines: float64(l1-l0) / el.Seconds(), emits: float64(e1-e0) / el.Seconds()}, nil
}

// writeLines appends 200-byte lines to path in bursts of 1,000 until ctx
// is done, waiting while wait says the tailer is far enough behind.
func writeLines(ctx context.Context, path string, wrote func(uint64), wait func() bool) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	pad := strings.Repeat("x", tailLineSize)
	for n := 0; ctx.Err() == nil; {
		if wait() {
			time.Sleep(time.Millisecond)
			continue
		}
		for range 1000 {
			head := fmt.Sprintf("%s line %012d ", filepath.Base(path), n)
			w.WriteString(head)
			w.WriteString(pad[:tailLineSize-1-len(head)])
			w.WriteByte('\n')
			n++
		}
		if err := w.Flush(); err != nil {
			return err
		}
		wrote(1000)
	}
	return nil
}
