package elastic

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// fakeES implements the _bulk contract as Elasticsearch documents it
// (create with _id: 201, or 409 version_conflict_engine_exception when
// the id exists; a per-item error object; errors: true when any item
// failed), and misbehaves on a schedule: a 503 for a whole request, a
// 429 for a whole request, a slow answer, a connection dropped before and
// one dropped after indexing, a 429 for some items the first time, and a
// mapping error for any document whose message says POISON.
type fakeES struct {
	t        *testing.T
	mu       sync.Mutex
	requests int
	docs     map[string]int // id -> times indexed
	seen429  map[string]bool
	slow     time.Duration
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/_bulk" || r.Method != http.MethodPost {
		http.Error(w, "not found", 404)
		return
	}
	if r.Header.Get("Authorization") != "ApiKey c2VjcmV0" {
		w.WriteHeader(401)
		return
	}
	f.mu.Lock()
	f.requests++
	n := f.requests
	f.mu.Unlock()
	switch n {
	case 1:
		w.WriteHeader(503)
		_, _ = w.Write([]byte(`{"error":{"type":"unavailable_shards_exception"},"status":503}`))
		return
	case 2:
		w.WriteHeader(429)
		_, _ = w.Write([]byte(`{"error":{"type":"es_rejected_execution_exception"},"status":429}`))
		return
	case 3: // dropped before anything is read
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		require.NoError(f.t, err)
		body = zr
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 16<<20)
	var items []string
	anyErr := false
	for sc.Scan() {
		var action map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		require.NoError(f.t, json.Unmarshal(sc.Bytes(), &action))
		a, ok := action["create"]
		require.True(f.t, ok, "every action is a create: %s", sc.Text())
		require.True(f.t, sc.Scan(), "a create without its document")
		doc, err := siem.ParseECS(sc.Bytes())
		require.NoError(f.t, err)
		id, _ := siem.Lookup(doc, "event.id")
		require.Equal(f.t, a.ID, id, "_id is the record's event.id")
		require.Equal(f.t, "weir-2026.03.01", a.Index)
		msg, _ := doc["message"].(string)
		f.mu.Lock()
		var item string
		switch {
		case strings.Contains(msg, "POISON"):
			item = fmt.Sprintf(`{"create":{"_index":%q,"_id":%q,"status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse field [weir.fields.flow]"}}}`, a.Index, a.ID)
			anyErr = true
		case strings.HasSuffix(a.ID, "7") && !f.seen429[a.ID]:
			f.seen429[a.ID] = true
			item = fmt.Sprintf(`{"create":{"_index":%q,"_id":%q,"status":429,"error":{"type":"es_rejected_execution_exception"}}}`, a.Index, a.ID)
			anyErr = true
		case f.docs[a.ID] > 0:
			item = fmt.Sprintf(`{"create":{"_index":%q,"_id":%q,"status":409,"error":{"type":"version_conflict_engine_exception"}}}`, a.Index, a.ID)
			anyErr = true
		default:
			f.docs[a.ID]++
			item = fmt.Sprintf(`{"create":{"_index":%q,"_id":%q,"_version":1,"result":"created","status":201}}`, a.Index, a.ID)
		}
		f.mu.Unlock()
		items = append(items, item)
	}
	require.NoError(f.t, sc.Err())
	switch n {
	case 4: // indexed, then the answer is lost
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
		return
	case 5: // indexed, answered after the client gave up
		time.Sleep(f.slow)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"took":3,"errors":%v,"items":[%s]}`, anyErr, strings.Join(items, ","))
}

// TestBulkNothingLostNothingTwice: 300 records through a real spool, a
// gate and a runner to a _bulk endpoint that fails in every documented
// way. Every record is indexed exactly once, the two a mapping error
// refuses are in the dead-letter file exactly once each, and the spool
// is acknowledged to its end.
func TestBulkNothingLostNothingTwice(t *testing.T) {
	f := &fakeES{t: t, docs: map[string]int{}, seen429: map[string]bool{}, slow: 700 * time.Millisecond}
	srv := httptest.NewServer(f)
	defer srv.Close()
	evs := outputtest.Records(300, func(i int, e *event.Event) {
		if i == 10 || i == 123 {
			e.Message = fmt.Sprintf("record %d POISON", i)
			e.Fields = []event.Field{event.Str("flow", "not a number")}
		}
	})
	sp, seqs := outputtest.Spool(t, evs)
	dlPath := filepath.Join(t.TempDir(), "dead.jsonl")
	dl, err := deadletter.Open(dlPath, 0)
	require.NoError(t, err)
	defer dl.Close()
	client, err := httpout.Client(httpout.TLSConfig{}, 300*time.Millisecond)
	require.NoError(t, err)
	tg, err := New(Options{Name: "es", URL: srv.URL, Index: "weir-{date}", APIKey: "c2VjcmV0", Gzip: true, Client: client,
		Encoding: siem.DefaultEncodingConfig(), Dead: dl, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	require.NoError(t, err)
	st := outputtest.Run(t, sp, tg, 50, seqs[len(seqs)-1], 30*time.Second)
	time.Sleep(f.slow) // the slow answer's handler returns

	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.docs, 298, "records indexed")
	for i, seq := range seqs {
		id := fmt.Sprintf("gw-1:%d", seq)
		if i == 10 || i == 123 {
			require.Zero(t, f.docs[id], "%s was refused and must not be indexed", id)
			continue
		}
		require.Equal(t, 1, f.docs[id], "%s indexed", id)
	}
	require.Equal(t, uint64(2), dl.Count())
	b, err := os.ReadFile(dlPath)
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	require.Len(t, lines, 2, "each refused record set aside once")
	var dead struct {
		ID     string `json:"id"`
		Status int    `json:"status"`
		Reason string `json:"reason"`
	}
	require.NoError(t, json.Unmarshal(lines[0], &dead))
	require.Equal(t, fmt.Sprintf("gw-1:%d", seqs[10]), dead.ID)
	require.Equal(t, 400, dead.Status)
	require.Contains(t, dead.Reason, "document_parsing_exception")
	require.GreaterOrEqual(t, st.Failures, uint64(5), "the 503, the 429, two dropped connections and the slow answer each failed a batch")
	t.Logf("requests %d, runner %+v", f.requests, st)
}
