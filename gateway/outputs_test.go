package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink/siem"
)

// bulkSink is the least of Elasticsearch's _bulk that the output needs:
// creates by _id, 409 for an id it has.
type bulkSink struct {
	mu   sync.Mutex
	docs map[string]string // _id -> message
	down bool              // answer 503 to everything
}

func (b *bulkSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		w.WriteHeader(503)
		return
	}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 1<<20)
	var items []string
	for sc.Scan() {
		var a map[string]struct {
			ID string `json:"_id"`
		}
		if json.Unmarshal(sc.Bytes(), &a) != nil || !sc.Scan() {
			w.WriteHeader(400)
			return
		}
		doc, err := siem.ParseECS(sc.Bytes())
		if err != nil {
			w.WriteHeader(400)
			return
		}
		id := a["create"].ID
		status := 201
		if _, ok := b.docs[id]; ok {
			status = 409
		} else {
			b.docs[id], _ = doc["message"].(string)
		}
		items = append(items, fmt.Sprintf(`{"create":{"_id":%q,"status":%d}}`, id, status))
	}
	_, _ = fmt.Fprintf(w, `{"errors":false,"items":[%s]}`, strings.Join(items, ","))
}

func (b *bulkSink) messages() map[string]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]bool{}
	for _, m := range b.docs {
		out[m] = true
	}
	return out
}

// TestOutputDeliversTailedLines: a gateway without an uplink and with an
// Elasticsearch output tails a file; every line reaches the output once,
// the spool is acknowledged only as far as the output took it (nothing
// while the output answers 503), and then drains.
func TestOutputDeliversTailedLines(t *testing.T) {
	es := &bulkSink{docs: map[string]string{}, down: true}
	srv := httptest.NewServer(es)
	defer srv.Close()
	dataDir := t.TempDir()
	logDir := t.TempDir()
	logFile := filepath.Join(logDir, "app.log")
	require.NoError(t, os.WriteFile(logFile, nil, 0o644))
	p := filepath.Join(t.TempDir(), "weir.yaml")
	require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf(`gateway: {id: gw-out}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
inputs:
  files:
    - {name: app, paths: [%q], start_at: beginning, poll_interval: 50ms}
outputs:
  - name: es
    type: elasticsearch
    format: ecs
    flush_interval: 50ms
    retry_min: 20ms
    retry_max: 100ms
    elasticsearch: {url: %q, gzip: false}
`, dataDir, logFile, srv.URL)), 0o600))
	tg := startGateway(t, p, dataDir)

	f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	for i := range 50 {
		_, err := fmt.Fprintf(f, "line %d\n", i)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	ctx := context.Background()
	require.Eventually(t, func() bool {
		st, err := FetchStatus(ctx, tg.socket)
		return err == nil && st.Spool.Records >= 50
	}, 10*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	st, err := FetchStatus(ctx, tg.socket)
	require.NoError(t, err)
	require.GreaterOrEqual(t, st.Spool.Records, int64(50), "nothing leaves the spool while the output refuses")

	es.mu.Lock()
	es.down = false
	es.mu.Unlock()
	require.Eventually(t, func() bool { return len(es.messages()) >= 50 }, 20*time.Second, 20*time.Millisecond)
	msgs := es.messages()
	for i := range 50 {
		require.True(t, msgs[fmt.Sprintf("line %d", i)], "line %d delivered", i)
	}
	require.Eventually(t, func() bool {
		st, err := FetchStatus(ctx, tg.socket)
		return err == nil && st.Spool.Records == 0
	}, 10*time.Second, 20*time.Millisecond, "the spool drains once the output holds its records")
}
