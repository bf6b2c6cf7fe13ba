package hec

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink/siem"
	"github.com/weirgw/weir/uplink/siem/deadletter"
	"github.com/weirgw/weir/uplink/siem/httpout"
	"github.com/weirgw/weir/uplink/siem/output/outputtest"
)

// fakeHEC implements the HTTP Event Collector's documented contract:
// token auth ("Splunk <token>", 401 otherwise), a channel header when
// acknowledgement is on, a stream of event objects, {"text":"Success",
// "code":0,"ackId":N}, and /services/collector/ack answering
// {"acks":{"N":bool}} (false at the first ask, true after); 503 "Server
// is busy" (code 9), 429, 400 "Invalid data format" (code 6) for a
// request holding an event it refuses, nothing of it indexed. On a
// schedule it is busy, rate-limits, drops a connection, and answers
// slowly. With loseAck set, one ackId is never acknowledged.
type fakeHEC struct {
	t       *testing.T
	mu      sync.Mutex
	posts   int
	nextAck int64
	pending map[int64][]string // ackId -> the ids it indexes
	asked   map[int64]int
	indexed map[string]int
	loseAck int64
}

func (f *fakeHEC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Splunk tok-123" {
		w.WriteHeader(401)
		_, _ = w.Write([]byte(`{"text":"Invalid token","code":4}`))
		return
	}
	ch := r.Header.Get("X-Splunk-Request-Channel")
	switch r.URL.Path {
	case "/services/collector/ack":
		require.Equal(f.t, ch, r.URL.Query().Get("channel"))
		var q struct{ Acks []int64 }
		require.NoError(f.t, json.NewDecoder(r.Body).Decode(&q))
		f.mu.Lock()
		out := map[string]bool{}
		for _, id := range q.Acks {
			f.asked[id]++
			done := f.asked[id] > 1 && id != f.loseAck
			if ids, ok := f.pending[id]; ok && done {
				for _, e := range ids {
					f.indexed[e]++
				}
				delete(f.pending, id)
			}
			out[strconv.FormatInt(id, 10)] = done
		}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"acks": out})
		return
	case "/services/collector/event":
	default:
		w.WriteHeader(404)
		return
	}
	require.NotEmpty(f.t, ch, "acknowledgement needs a channel")
	f.mu.Lock()
	f.posts++
	n := f.posts
	f.mu.Unlock()
	switch n {
	case 1:
		w.WriteHeader(503)
		_, _ = w.Write([]byte(`{"text":"Server is busy","code":9}`))
		return
	case 2:
		w.WriteHeader(429)
		return
	case 3:
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
		return
	case 4:
		time.Sleep(300 * time.Millisecond) // slow, within the client's timeout
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		require.NoError(f.t, err)
		body = zr
	}
	d := json.NewDecoder(body)
	var ids []string
	for k := 0; d.More(); k++ {
		var ev struct {
			Time   float64         `json:"time"`
			Event  json.RawMessage `json:"event"`
			Fields struct {
				WeirID string `json:"weir_id"`
			} `json:"fields"`
		}
		require.NoError(f.t, d.Decode(&ev))
		require.NotZero(f.t, ev.Time)
		doc, err := siem.ParseECS(ev.Event)
		require.NoError(f.t, err)
		id, _ := siem.Lookup(doc, "event.id")
		require.Equal(f.t, ev.Fields.WeirID, id)
		if msg, _ := doc["message"].(string); strings.Contains(msg, "POISON") {
			w.WriteHeader(400)
			_, _ = fmt.Fprintf(w, `{"text":"Invalid data format","code":6,"invalid-event-number":%d}`, k)
			return
		}
		ids = append(ids, ev.Fields.WeirID)
	}
	f.mu.Lock()
	f.nextAck++
	id := f.nextAck
	f.pending[id] = ids
	f.mu.Unlock()
	_, _ = fmt.Fprintf(w, `{"text":"Success","code":0,"ackId":%d}`, id)
}

func newFake(t *testing.T) *fakeHEC {
	return &fakeHEC{t: t, pending: map[int64][]string{}, asked: map[int64]int{}, indexed: map[string]int{}, loseAck: -1}
}

func target(t *testing.T, url string, dl *deadletter.File, ackTimeout time.Duration) *Target {
	client, err := httpout.Client(httpout.TLSConfig{}, time.Second)
	require.NoError(t, err)
	tg, err := New(Options{Name: "hec", URL: url, Token: "tok-123", Sourcetype: "weir:ecs", Format: siem.FormatECS,
		Encoding: siem.DefaultEncodingConfig(), Gzip: true, Ack: true, AckTimeout: ackTimeout, Client: client, Dead: dl})
	require.NoError(t, err)
	return tg
}

// TestHECNothingLostNothingTwice: 300 records through a real spool, a
// gate and a runner to an HEC with indexer acknowledgement that is busy,
// rate-limits, drops a connection, answers slowly and refuses one event:
// every other record is indexed exactly once, the refused one is in the
// dead-letter file, and the spool is acknowledged to its end.
func TestHECNothingLostNothingTwice(t *testing.T) {
	f := newFake(t)
	srv := httptest.NewServer(f)
	defer srv.Close()
	evs := outputtest.Records(300, func(i int, e *event.Event) {
		if i == 42 {
			e.Message = "record 42 POISON"
		}
	})
	sp, seqs := outputtest.Spool(t, evs)
	dl, err := deadletter.Open(t.TempDir()+"/dead.jsonl", 0)
	require.NoError(t, err)
	defer dl.Close()
	st := outputtest.Run(t, sp, target(t, srv.URL, dl, 5*time.Second), 40, seqs[len(seqs)-1], 30*time.Second)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.indexed, 299)
	for i, seq := range seqs {
		id := fmt.Sprintf("gw-1:%d", seq)
		if i == 42 {
			require.Zero(t, f.indexed[id])
			continue
		}
		require.Equal(t, 1, f.indexed[id], id)
	}
	require.Equal(t, uint64(1), dl.Count())
	require.GreaterOrEqual(t, st.Failures, uint64(3))
}

// TestHECLostAckResends: an ackId that never comes is sent again after
// ack_timeout, so nothing is lost; HEC cannot dedupe, so that batch's
// records may be indexed twice, each copy with the same weir_id.
func TestHECLostAckResends(t *testing.T) {
	f := newFake(t)
	f.posts = 10 // past the misbehaviour schedule
	f.loseAck = 1
	srv := httptest.NewServer(f)
	defer srv.Close()
	evs := outputtest.Records(20, nil)
	sp, seqs := outputtest.Spool(t, evs)
	dl, err := deadletter.Open(t.TempDir()+"/dead.jsonl", 0)
	require.NoError(t, err)
	defer dl.Close()
	outputtest.Run(t, sp, target(t, srv.URL, dl, 300*time.Millisecond), 10, seqs[len(seqs)-1], 30*time.Second)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.indexed, 20, "every record indexed")
	require.Len(t, f.pending[1], 10, "the lost ack's batch: indexed by Splunk or not, the output cannot know")
}
