package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/spool"
)

// damagedSpool writes a spool of n log records in data/spool, closes it
// and returns its directory.
func damagedSpool(t *testing.T, data string, n int) string {
	t.Helper()
	dir := filepath.Join(data, "spool")
	sp, err := spool.Open(spool.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	for i := 0; i < n; i += 500 {
		evs := make([]event.Event, 500)
		for j := range evs {
			evs[j] = event.Event{Source: "file:/var/log/app.log", Kind: event.KindLog,
				Message: fmt.Sprintf("line %08d %s", i+j, strings.Repeat("x", 160))}
		}
		entries, err := Entries(evs, Stamp{Gateway: "gw-damage", Host: "h", Time: time.Now()})
		require.NoError(t, err)
		_, err = sp.Append(context.Background(), entries, []spool.Checkpoint{{Source: "file:/var/log/app.log", Position: []byte("pos")}})
		require.NoError(t, err)
	}
	require.NoError(t, sp.Close())
	return dir
}

// spoolFile is the file of the given kind in dir: the largest table, or
// the named file, or the first with the extension.
func spoolFile(t *testing.T, dir, kind string) string {
	t.Helper()
	if kind == "MANIFEST" || kind == "KEYREGISTRY" || kind == "DISCARD" {
		return filepath.Join(dir, kind)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"+kind))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no %s file in %s", kind, dir)
	sort.Slice(files, func(i, j int) bool {
		a, _ := os.Stat(files[i])
		b, _ := os.Stat(files[j])
		return a.Size() > b.Size()
	})
	return files[0]
}

func overwriteAt(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	fi, err := f.Stat()
	require.NoError(t, err)
	if off < 0 {
		off += fi.Size()
	}
	_, err = f.WriteAt([]byte("\xde\xad\xbe\xef sixteen bytes"[:16]), max(off, 0))
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// TestBootsWithDamagedSpool damages each kind of spool file in turn and
// starts the gateway on it. Each time it must boot and run in one go (the
// old gateway panicked in Emit after moving a spool aside, and its second
// start was the first to work), and the head-end must hear of the damage
// from a critical record: the spool moved aside, or records quarantined.
func TestBootsWithDamagedSpool(t *testing.T) {
	const n = 4000 // one table of about 220 blocks once closed
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"sst data", func(t *testing.T, dir string) {
			f := spoolFile(t, dir, ".sst")
			fi, _ := os.Stat(f)
			overwriteAt(t, f, fi.Size()/2)
		}},
		{"sst index", func(t *testing.T, dir string) { overwriteAt(t, spoolFile(t, dir, ".sst"), -200) }},
		{"sst truncated", func(t *testing.T, dir string) {
			f := spoolFile(t, dir, ".sst")
			fi, _ := os.Stat(f)
			require.NoError(t, os.Truncate(f, fi.Size()/2))
		}},
		{"sst zero-length", func(t *testing.T, dir string) { require.NoError(t, os.Truncate(spoolFile(t, dir, ".sst"), 0)) }},
		{"vlog", func(t *testing.T, dir string) { overwriteAt(t, spoolFile(t, dir, ".vlog"), 0) }},
		{"vlog zero-length", func(t *testing.T, dir string) { require.NoError(t, os.Truncate(spoolFile(t, dir, ".vlog"), 0)) }},
		{"MANIFEST", func(t *testing.T, dir string) { overwriteAt(t, spoolFile(t, dir, "MANIFEST"), 8) }},
		{"MANIFEST truncated", func(t *testing.T, dir string) { require.NoError(t, os.Truncate(spoolFile(t, dir, "MANIFEST"), 10)) }},
		{"MANIFEST zero-length", func(t *testing.T, dir string) { require.NoError(t, os.Truncate(spoolFile(t, dir, "MANIFEST"), 0)) }},
		{"KEYREGISTRY", func(t *testing.T, dir string) { overwriteAt(t, spoolFile(t, dir, "KEYREGISTRY"), 0) }},
		{"KEYREGISTRY zero-length", func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(spoolFile(t, dir, "KEYREGISTRY"), 0))
		}},
		{"DISCARD", func(t *testing.T, dir string) { overwriteAt(t, spoolFile(t, dir, "DISCARD"), 0) }},
		{"mem log", func(t *testing.T, dir string) {
			// A write-ahead log left by a crash, damaged in its middle.
			require.NoError(t, os.WriteFile(filepath.Join(dir, "00099.mem"), []byte(strings.Repeat("\x01junk", 1000)), 0o600))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			dir := damagedSpool(t, data, n)
			tc.damage(t, dir)
			file := gatewayConfig(t, data, "")
			tg := startGateway(t, file, data)

			// Reading the whole spool, as the uplink does, finds what
			// damage the spool did not notice at open.
			recs, last := allRecords(t, tg, 0)
			logs := len(find(recs, "file:/var/log/app.log", "line"))
			st, err := FetchStatus(context.Background(), tg.socket)
			require.NoError(t, err)
			switch {
			case st.Spool.Recovered != "":
				require.Contains(t, st.Spool.Recovered, "moved aside")
				alert := waitFor(t, tg, 0, "weir", "moved aside")
				require.Equal(t, "crit", alert.Severity)
				t.Logf("moved aside: %s", st.Spool.Recovered)
			case logs < n:
				// The alert may have come in while the records were read.
				alert := waitFor(t, tg, last+1, "weir:spool", "quarantined", find(recs, "weir:spool", "quarantined")...)
				require.Equal(t, "crit", alert.Severity)
				require.EqualValues(t, n-logs, alert.Fields["records"], "the record names every record not delivered")
				t.Logf("opened; %d records quarantined: %s", n-logs, alert.Message)
			default:
				t.Logf("opened; all %d records readable", n)
			}
		})
	}
}

// allRecords reads the spool from a sequence on through the admin socket,
// in pages, and returns the records and the last sequence.
func allRecords(t *testing.T, tg *testGateway, from uint64) ([]spooled, uint64) {
	t.Helper()
	var out []spooled
	last := from
	for {
		recs, err := FetchSpoolRecords(context.Background(), tg.socket, from, 5000)
		require.NoError(t, err)
		if len(recs) == 0 {
			return out, last
		}
		last = recs[len(recs)-1].Seq
		for _, r := range recs {
			require.Empty(t, r.Error, "record %d does not decode", r.Seq)
			var s spooled
			require.NoError(t, json.Unmarshal(r.Event, &s))
			out = append(out, s)
		}
		from = recs[len(recs)-1].Seq + 1
	}
}

// waitFor waits for one record of source whose message holds text, at
// or after sequence from, or among seen.
func waitFor(t *testing.T, tg *testGateway, from uint64, source, text string, seen ...spooled) spooled {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs, _ := allRecords(t, tg, from)
		if got := append(seen, find(recs, source, text)...); len(got) > 0 {
			require.Len(t, got, 1, "reported more than once")
			return got[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record of %s saying %q after 20s", source, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
