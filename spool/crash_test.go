package spool

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/merkle"
)

// The crash test runs this test binary again as a child that appends with
// checkpoints as fast as it can, and kills it with SIGKILL at random moments.
const crashChildEnv = "SPOOL_CRASH_CHILD_DIR"

const crashSources = 4

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	if dir := os.Getenv(diskChildEnv); dir != "" {
		diskChild(dir, os.Getenv(diskChildStepEnv))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild appends from crashSources sources, each resuming at its
// checkpoint, and acks old records, reporting every Append and Ack that
// returned: "a <source> <first> <count> <last value>" and "k <upTo>".
func crashChild(dir string) {
	// Small segments, so acks drop segments (DropPrefix) all the time and
	// kills land in the middle of drops too.
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), segmentBytes: 16 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	report := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = os.Stdout.WriteString(fmt.Sprintf(format, a...) + "\n")
	}
	report("ready")
	ctx := context.Background()
	for src := range crashSources {
		go func() {
			name := fmt.Sprintf("src-%d", src)
			pos, err := s.Checkpoint(name)
			if err != nil {
				os.Exit(3)
			}
			n, _ := strconv.ParseUint(string(pos), 10, 64)
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(src)))
			for {
				b := 1 + rng.IntN(64)
				entries := make([]Entry, b)
				for i := range entries {
					entries[i] = Entry{Class: Class(rng.IntN(int(numClasses))), Data: fmt.Appendf(nil, "%s:%d", name, n+uint64(i)+1)}
				}
				end := n + uint64(b)
				first, err := s.Append(ctx, entries, []Checkpoint{{Source: name, Position: strconv.AppendUint(nil, end, 10)}})
				if err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					os.Exit(4)
				}
				report("a %d %d %d %d", src, first, b, end)
				n = end
			}
		}()
	}
	// Ack all but the newest few thousand records, now and then.
	for {
		time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
		st := s.Stats()
		if st.NextSeq > st.AckedUpTo+3000 {
			upTo := st.NextSeq - 2000
			if err := s.Ack(upTo); err != nil {
				fmt.Fprintln(os.Stderr, "child ack:", err)
				os.Exit(5)
			}
			report("k %d %d", upTo, s.Stats().Drops)
		}
	}
}

type appended struct {
	src          int
	first, count uint64
	end          uint64
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	const kills = 60
	dir := t.TempDir()
	var (
		all      []appended // every Append that returned, across all children
		ackedMax uint64     // highest Ack that returned
		seqMax   uint64     // highest sequence any child was given
		drops    uint64     // segments the children dropped
		tc       = treeCheck{leaves: map[uint64]merkle.Hash{}}
	)
	// On a loaded machine (the race detector, other packages' tests) a
	// child may live too briefly to ack a whole segment: the rounds go on,
	// up to three times as many, until the children have dropped one.
	rounds := 0
	for round := 0; round < kills || (drops == 0 && round < 3*kills); round++ {
		rounds++
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		select {
		case l := <-lines:
			require.Equal(t, "ready", l, "child: %s", stderr.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: child did not start: %s", round, stderr.String())
		}
		kill := time.After(time.Duration(10+rand.IntN(150)) * time.Millisecond)
		var roundFirst, roundDrops uint64
		roundStart := len(all)
	collect:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break collect
				}
				var a appended
				if _, err := fmt.Sscanf(l, "a %d %d %d %d", &a.src, &a.first, &a.count, &a.end); err == nil {
					if roundFirst == 0 {
						roundFirst = a.first
					}
					all = append(all, a)
					continue
				}
				var k, d uint64
				_, err := fmt.Sscanf(l, "k %d %d", &k, &d)
				require.NoError(t, err, "child said %q", l)
				ackedMax = max(ackedMax, k)
				roundDrops = max(roundDrops, d)
			case <-kill:
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				kill = nil
			}
		}
		err = cmd.Wait()
		require.Error(t, err, "child must die by SIGKILL, stderr: %s", stderr.String())
		if roundFirst != 0 {
			require.Greater(t, roundFirst, seqMax, "round %d: a sequence number was reused", round)
		}
		for _, a := range all {
			seqMax = max(seqMax, a.first+a.count-1)
		}
		for _, a := range all[roundStart:] {
			for i := range a.count {
				tc.leaves[a.first+i] = merkle.RecordLeaf(a.first+i, fmt.Appendf(nil, "src-%d:%d", a.src, a.end-a.count+i+1))
			}
		}
		verifyAfterCrash(t, dir, round, all, ackedMax, &tc)
		drops += roundDrops
	}
	require.NotZero(t, drops, "the children never dropped a segment: the test does not cover drops")
	require.GreaterOrEqual(t, tc.rootsChecked, rounds/2, "too few rounds had every leaf known to check the root")
	t.Logf("%d kills, %d appends returned, highest ack %d, %d segments dropped; the Merkle root recomputed and matched after %d of them",
		rounds, len(all), ackedMax, drops, tc.rootsChecked)
}

// treeCheck follows the spool's Merkle log across kills: every leaf the
// test has seen (reported by the child or read from the spool), and where
// the log began.
type treeCheck struct {
	leaves       map[uint64]merkle.Hash
	first        uint64
	rootsChecked int
}

// check holds the log to the records: it began once and only grows, it
// ends just below the next sequence, and its root is the root of the
// records' leaves, evicted or acknowledged ones included.
func (tc *treeCheck) check(t *testing.T, round int, s *Spool, recs []Record) {
	t.Helper()
	for _, r := range recs {
		tc.leaves[r.Seq] = merkle.RecordLeaf(r.Seq, r.Data)
	}
	h := s.Tree()
	st := s.Stats()
	if tc.first == 0 {
		tc.first = h.First
	}
	require.Equal(t, tc.first, h.First, "round %d: the Merkle log began again (%s)", round, h.Began)
	require.Empty(t, h.Began, "round %d: the Merkle log did not continue", round)
	require.Equal(t, st.NextSeq, h.First+h.Size, "round %d: the tree and the records disagree", round)
	leaves := make([]merkle.Hash, 0, h.Size)
	for seq := h.First; seq < h.First+h.Size; seq++ {
		l, ok := tc.leaves[seq]
		if !ok {
			t.Logf("round %d: leaf %d was acknowledged before the test saw it; root not checked", round, seq)
			return
		}
		leaves = append(leaves, l)
	}
	require.Equal(t, merkle.Root(leaves), h.Root, "round %d: the root is not the records' root", round)
	tc.rootsChecked++
}

// verifyAfterCrash opens the spool the child left and checks: every
// sequence an Append returned is readable (unless acked), holding what was
// appended; nothing repeats; each checkpoint matches exactly the newest
// record committed with it.
func verifyAfterCrash(t *testing.T, dir string, round int, all []appended, ackedMax uint64, tc *treeCheck) {
	t.Helper()
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err, "round %d: reopen after SIGKILL", round)
	defer s.Close()
	st := s.Stats()
	require.Empty(t, st.Recovered, "round %d: the spool was moved aside after SIGKILL", round)
	require.GreaterOrEqual(t, st.AckedUpTo, ackedMax, "round %d: an ack that returned was lost", round)
	recs, err := s.Read(0, 1<<30, 0)
	require.NoError(t, err)
	require.Equal(t, int64(len(recs)), st.Records, "round %d: counts disagree with the records held", round)
	bySeq := make(map[uint64]string, len(recs))
	lastValue := map[string]uint64{}
	var prev uint64
	for _, r := range recs {
		require.Greater(t, r.Seq, prev, "round %d: sequences out of order or repeated", round)
		prev = r.Seq
		require.Greater(t, r.Seq, st.AckedUpTo)
		bySeq[r.Seq] = string(r.Data)
		name, v, ok := strings.Cut(string(r.Data), ":")
		require.True(t, ok)
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
		if last, seen := lastValue[name]; seen {
			require.Equal(t, last+1, n, "round %d: %s has a gap or repeat after value %d", round, name, last)
		}
		lastValue[name] = n
	}
	for _, a := range all {
		for i := range a.count {
			seq := a.first + i
			if seq <= st.AckedUpTo {
				continue
			}
			got, ok := bySeq[seq]
			require.True(t, ok, "round %d: sequence %d, returned by Append, is missing", round, seq)
			require.Equal(t, fmt.Sprintf("src-%d:%d", a.src, a.end-a.count+i+1), got)
		}
	}
	tc.check(t, round, s, recs)
	for src := range crashSources {
		name := fmt.Sprintf("src-%d", src)
		pos, err := s.Checkpoint(name)
		require.NoError(t, err)
		if last, ok := lastValue[name]; ok {
			require.Equal(t, strconv.FormatUint(last, 10), string(pos),
				"round %d: checkpoint of %s does not match its newest record", round, name)
		}
	}
}
