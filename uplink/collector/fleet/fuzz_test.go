package fleet

import (
	"bufio"
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
)

// FuzzParseRecord feeds sink lines (a JSONL sink's, a JetStream
// message's) to the parser and what parses to a store: nothing panics,
// and a gateway's state stays within its bounds whatever the line says.
func FuzzParseRecord(f *testing.F) {
	b, err := os.ReadFile("testdata/sink.jsonl")
	require.NoError(f, err)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f.Add(append([]byte(nil), sc.Bytes()...))
	}
	f.Add([]byte(`{"seq":1,"gateway":"g","decode_error":"x","raw_base64":"AA=="}`))
	f.Add([]byte(`{"gateway":"g","time_ns":1,"kind":"alert","fields":{"state":"open","x_base64":"AA==","n":1e400}}`))
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	o := DefaultOptions()
	o.Dir, o.Now, o.MaxGateways = f.TempDir(), func() time.Time { return now }, 64
	s, err := Open(o)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, line []byte) {
		gw, ev, err := ParseRecord(line)
		if err != nil {
			return
		}
		if ev.Time != 0 {
			// Bring it into the store's week, so its points are drawn.
			ev.Time = now.Add(-time.Duration(uint64(ev.Time) % uint64(week))).UnixNano()
		}
		s.Observe(gw, now, []*event.Event{&ev}, Position{Offset: -1})
		d, ok := s.Detail(gw)
		if !ok {
			return // an id the store refuses
		}
		if len(d.Events) > maxEvents || len(d.Links) > maxLinks || len(d.Buses) > maxBuses || len(d.Latest) > maxLatest {
			t.Fatalf("bounds broken: %d events, %d links, %d buses, %d latest", len(d.Events), len(d.Links), len(d.Buses), len(d.Latest))
		}
		if _, err := s.Series(gw, Hour); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzSites parses sites files.
func FuzzSites(f *testing.F) {
	f.Add([]byte("pump-3: {site: Pump station 3, region: north}\n"))
	f.Add([]byte("a: {}\nb: {x: ''}\n"))
	f.Add([]byte("- a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sites, err := ParseSites("fuzz", b)
		if err != nil {
			return
		}
		for id, s := range sites {
			if id == "" || len(id) > MaxIDLen {
				t.Fatalf("id %q accepted", id)
			}
			_ = s.String()
		}
	})
}
