package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHostlogCrash: the built gateway tails a file that a writer appends
// numbered lines to and rotates, by rename (to a name the glob matches, so
// a file rotated while the gateway is down is still found) and by
// copytruncate (to a name it does not match); the gateway is SIGKILLed
// about 20 times at random moments and started again at once. At the end
// every line reached the collector's sink exactly once.
//
// copytruncate loses, by its nature, whatever the tailer had not read when
// the file is truncated. The writer therefore appends nothing between its
// copy and its truncation, and truncates only once the sink holds every
// line written so far: what the test checks is that the truncated file is
// read again from its start, never skipped into nor repeated, whether the
// gateway was running, dead or starting when it happened.
func TestHostlogCrash(t *testing.T) {
	e := setup(t)
	stopColl := e.startCollector()
	defer stopColl()
	logs := filepath.Dir(e.logFile)

	gw := &killable{t: t, bin: e.weir, args: []string{"run", "--config", e.config}, logPath: filepath.Join(e.dir, "gateway.log")}
	gw.start()
	defer gw.kill()

	w := &crashWriter{t: t, path: e.logFile, dir: logs, sink: e.sink}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run(stop)
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	const kills = 20
	for range kills {
		time.Sleep(time.Duration(50+rng.IntN(700)) * time.Millisecond)
		gw.kill()
		gw.start()
	}
	close(stop)
	wg.Wait()
	require.NoError(t, w.err)
	total := w.next
	t.Logf("%d lines written, %d renames, %d copytruncates, %d kills", total, w.renames, w.copytruncates, kills)
	require.Greater(t, w.renames, 0)
	require.Greater(t, w.copytruncates, 0)

	var got map[int]int
	require.Eventually(t, func() bool {
		got = crashSinkLines(t, e.sink)
		return len(got) >= total
	}, 30*time.Second, 100*time.Millisecond, "want %d distinct lines in the sink", total)
	time.Sleep(500 * time.Millisecond) // a repeat would arrive now
	got = crashSinkLines(t, e.sink)
	var missing, repeated []int
	for i := range total {
		switch got[i] {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			repeated = append(repeated, i)
		}
	}
	require.Empty(t, missing, "lines lost")
	require.Empty(t, repeated, "lines repeated")
	require.Len(t, got, total, "lines the writer never wrote")
	gw.kill()
}

// killable is a gateway process to SIGKILL and start again.
type killable struct {
	t       *testing.T
	bin     string
	args    []string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

func (k *killable) start() {
	k.t.Helper()
	logf, err := os.OpenFile(k.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(k.t, err)
	k.cmd = exec.Command(k.bin, k.args...)
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	require.NoError(k.t, k.cmd.Start())
	logf.Close()
	k.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(k.cmd, k.done)
}

func (k *killable) kill() {
	if k.cmd == nil {
		return
	}
	_ = k.cmd.Process.Signal(syscall.SIGKILL)
	<-k.done
	k.cmd = nil
}

// crashWriter appends numbered lines in bursts and rotates the file now
// and then.
type crashWriter struct {
	t             *testing.T
	path, dir     string
	sink          string
	next          int // the next line's number
	renames       int
	copytruncates int
	err           error
}

func (w *crashWriter) run(stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	sinceRotation := 0
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(1+rng.IntN(5)) * time.Millisecond):
		}
		n := 1 + rng.IntN(20)
		if w.err = w.append(n); w.err != nil {
			return
		}
		sinceRotation += n
		if sinceRotation < 1500+rng.IntN(1500) {
			continue
		}
		sinceRotation = 0
		if rng.IntN(3) > 0 {
			w.renames++
			w.err = os.Rename(w.path, filepath.Join(w.dir, fmt.Sprintf("app-%d.log", w.renames)))
		} else {
			w.copytruncates++
			w.err = w.copyTruncate()
		}
		if w.err != nil {
			return
		}
	}
}

func (w *crashWriter) append(n int) error {
	f, err := os.OpenFile(w.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	for range n {
		fmt.Fprintf(bw, "crash line=%07d %s\n", w.next, strings.Repeat("x", w.next%50))
		w.next++
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyTruncate waits until the sink holds every line written so far, then
// copies the file aside (a name the glob does not match) and truncates it.
func (w *crashWriter) copyTruncate() error {
	deadline := time.Now().Add(20 * time.Second)
	for len(crashSinkLines(w.t, w.sink)) < w.next {
		if time.Now().After(deadline) {
			return fmt.Errorf("copytruncate: the sink did not catch up with %d lines", w.next)
		}
		time.Sleep(20 * time.Millisecond)
	}
	in, err := os.Open(w.path)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(w.dir, fmt.Sprintf("app.log.%d", w.copytruncates)))
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Truncate(w.path, 0)
}

// crashSinkLines counts the sink's records from the tailed files by line
// number.
func crashSinkLines(t *testing.T, sink string) map[int]int {
	got := map[int]int{}
	b, err := os.ReadFile(sink)
	if os.IsNotExist(err) {
		return got
	}
	require.NoError(t, err)
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r struct {
			Source  string `json:"source"`
			Message string `json:"message"`
		}
		require.NoError(t, json.Unmarshal(line, &r))
		if r.Source != "app" {
			continue
		}
		rest, ok := strings.CutPrefix(r.Message, "crash line=")
		require.True(t, ok, "unexpected record %q", r.Message)
		num, tail, _ := strings.Cut(rest, " ")
		n, err := strconv.Atoi(num)
		require.NoError(t, err, "record %q", r.Message)
		require.Equal(t, strings.Repeat("x", n%50), tail, "record %q", r.Message)
		got[n]++
	}
	return got
}
