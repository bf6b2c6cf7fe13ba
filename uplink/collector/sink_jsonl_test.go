package collector

import (
	"bufio"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

func entries(gw string, first uint64, n int) []Entry {
	out := make([]Entry, n)
	for i := range out {
		seq := first + uint64(i)
		out[i] = Entry{Seq: seq, Event: &event.Event{Seq: seq, Gateway: gw, Message: "line", Quality: event.Quality{ErrorBound: -1}}}
	}
	return out
}

func write(t *testing.T, s *JSONL, gw string, e []Entry) {
	t.Helper()
	_, err := s.Write(gw, e)
	require.NoError(t, err)
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		out = append(out, m)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestJSONLRecoversHighest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	s, err := OpenJSONL(path, nil)
	require.NoError(t, err)
	write(t, s, "gw-a", entries("gw-a", 1, 3))
	write(t, s, "gw-b", entries("gw-b", 100, 2))
	write(t, s, "gw-a", entries("gw-a", 4, 1))
	require.Equal(t, uint64(4), s.Highest("gw-a"))
	require.NoError(t, s.Close())

	cases := []struct {
		name string
		prep func()
	}{
		{"with state", func() {}},
		{"no state", func() { require.NoError(t, os.Remove(path+".state")) }},
		{"garbage state", func() { require.NoError(t, os.WriteFile(path+".state", []byte("{"), 0o600)) }},
		{"stale state", func() {
			require.NoError(t, os.WriteFile(path+".state", []byte(`{"offset":0,"highest":{"gw-a":2}}`), 0o600))
		}},
		{"state past end", func() { require.NoError(t, os.WriteFile(path+".state", []byte(`{"offset":99999}`), 0o600)) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.prep()
			s, err := OpenJSONL(path, nil)
			require.NoError(t, err)
			require.Equal(t, uint64(4), s.Highest("gw-a"))
			require.Equal(t, uint64(101), s.Highest("gw-b"))
			require.Equal(t, uint64(0), s.Highest("gw-c"))
			require.NoError(t, s.Close())
		})
	}
	require.Len(t, readLines(t, path), 6)
}

func TestJSONLCutsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	s, err := OpenJSONL(path, nil)
	require.NoError(t, err)
	write(t, s, "gw", entries("gw", 1, 2))
	require.NoError(t, s.Close())
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"seq":3,"gateway":"gw","mess`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	s, err = OpenJSONL(path, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(2), s.Highest("gw"), "a torn record was never acked")
	write(t, s, "gw", entries("gw", 3, 1))
	require.NoError(t, s.Close())
	lines := readLines(t, path)
	require.Len(t, lines, 3)
	require.Equal(t, float64(3), lines[2]["seq"])
}

func TestJSONLKeepsUndecodable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	s, err := OpenJSONL(path, nil)
	require.NoError(t, err)
	write(t, s, "gw", []Entry{{Seq: 9, Raw: []byte{0xde, 0xad}, DecodeErr: errors.New("event: decode: bad")}})
	require.NoError(t, s.Close())
	lines := readLines(t, path)
	require.Len(t, lines, 1)
	require.Equal(t, "3q0=", lines[0]["raw_base64"])
	require.Equal(t, "event: decode: bad", lines[0]["decode_error"])
	require.Equal(t, "gw", lines[0]["gateway"])
}

func TestJSONLRejectsCorruptLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	require.NoError(t, os.WriteFile(path, []byte("{\"seq\":1}\nnot json\n"), 0o600))
	_, err := OpenJSONL(path, nil)
	require.ErrorContains(t, err, "line at offset 10")
}

func TestJSONLDedupeStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	s, err := OpenJSONL(path, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(9), s.Resume("gw", 9).Highest, "nothing above the floor yet")
	write(t, s, "gw", entries("gw", 10, 5))  // 10..14: joins the floor
	write(t, s, "gw", entries("gw", 30, 5))  // 30..34: out of order (balance)
	write(t, s, "gw", entries("gw", 12, 10)) // 12..21: overlaps; only 15..21 new
	require.Equal(t, uint64(21), s.Highest("gw"))
	require.NoError(t, s.Close())
	require.Len(t, readLines(t, path), 17, "no sequence written twice")

	for _, name := range []string{"with state", "without state"} {
		t.Run(name, func(t *testing.T) {
			if name == "without state" {
				require.NoError(t, os.Remove(path+".state"))
			}
			s, err := OpenJSONL(path, nil)
			require.NoError(t, err)
			defer s.Close()
			for _, seq := range []uint64{10, 21, 30, 34} {
				require.True(t, s.Holds("gw", seq), "seq %d", seq)
			}
			for _, seq := range []uint64{22, 29, 35} {
				require.False(t, s.Holds("gw", seq), "seq %d", seq)
			}
			require.Equal(t, uint64(21), s.Resume("gw", 9).Highest)
			r := s.Resume("gw", 29)
			require.Equal(t, uint64(34), r.Highest, "30..34 are held")
			require.Equal(t, FloorOverHole, r.Verdict, "22..29 never arrived: the floor is not taken over them")
			require.False(t, s.Holds("gw", 22))
		})
	}
}

// FuzzJSONLRecover opens a sink from any sink file and state file: a
// corrupt sink is an error, never a panic; what opens holds sets that
// keep their invariants, takes a write, and opens again holding it.
func FuzzJSONLRecover(f *testing.F) {
	good := []byte(`{"seq":1,"gateway":"gw"}` + "\n" + `{"seq":2,"gateway":"gw"}` + "\n" + `{"seq":9,"gateway":"gw-b"}` + "\n")
	for _, c := range [][2]string{
		{string(good), `{"offset":50,"gateways":{"gw":{"floor":1}}}`},
		{string(good), `{"offset":25,"gateways":{"gw":{"floor":1}}}`},
		{string(good), ``},
		{string(good) + `{"seq":3,"gat`, `{"offset":75}`},
		{string(good), `{"offset":0,"gateways":{"gw":{"floor":3,"ranges":[[2,9],[5,4]]}}}`},
		{string(good), `{"offset":0,"highest":{"gw":18446744073709551615}}`},
		{string(good), `{"offset":-4}`},
		{"not json\n", ``},
		{"", `{"offset":0,"gateways":{"@collector":{"floor":1,"reported":7}}}`},
	} {
		f.Add([]byte(c[0]), []byte(c[1]))
	}
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, sink, state []byte) {
		path := filepath.Join(t.TempDir(), "sink.jsonl")
		require.NoError(t, os.WriteFile(path, sink, 0o600))
		if len(state) > 0 {
			require.NoError(t, os.WriteFile(path+".state", state, 0o600))
		}
		s, err := OpenJSONL(path, log)
		if err != nil {
			return
		}
		for gw, set := range s.sets {
			if err := set.check(); err != nil {
				t.Fatalf("recovered set of %q: %v", gw, err)
			}
		}
		_, err = s.Write("gw-fuzz", entries("gw-fuzz", 7, 1))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		s, err = OpenJSONL(path, log)
		require.NoError(t, err, "a sink this package wrote opens again")
		require.True(t, s.Holds("gw-fuzz", 7))
		require.NoError(t, s.Close())
	})
}
