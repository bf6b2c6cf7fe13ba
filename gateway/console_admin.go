package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/gateway/console"
)

// The admin socket's side of `weir console`: the daemon's recent log
// lines (GET /v1/logs) and the console's audit records (POST /v1/audit),
// which the gateway stamps and spools like any record.

// ConsoleStateDir is where `weir console` keeps its login state and its
// audit outbox: console/ in data_dir, or in /var/lib/weir when data_dir
// is empty. Never under the working directory (./weir-data): whoever can
// write there could lift a lockout.
func ConsoleStateDir(cfg Config) string {
	dir := cfg.DataDir
	if dir == "" {
		dir = DataDirCandidates()[0]
	}
	return filepath.Join(dir, "console")
}

// AuditRequest is the body of POST /v1/audit.
type AuditRequest struct {
	Records []console.Record `json:"records"`
}

// Bounds of POST /v1/audit, checked before anything is spooled.
const maxAuditBody = 64 << 10

type peerConnKey struct{}

// withPeerConn keeps each admin connection in its requests' context, so
// a handler can ask who is at the other end (auditPeerAllowed).
func withPeerConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerConnKey{}, c)
}

// serveAudit spools console audit records. Only root and the gateway's
// own user may post them: the socket's group (admin.group) runs the
// diagnostics, and must not be able to write the audit trail.
func (g *Gateway) serveAudit(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Context().Value(peerConnKey{}).(net.Conn)
	if uid, err := peerUID(c); err != nil || uid != 0 && uid != os.Geteuid() {
		why := "audit records are taken from root and weir's own user only"
		if err != nil {
			why += " (" + err.Error() + ")"
		}
		http.Error(w, why, http.StatusForbidden)
		return
	}
	var req AuditRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAuditBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "bad audit request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if n := len(req.Records); n == 0 || n > console.MaxBatch {
		http.Error(w, fmt.Sprintf("bad audit request: %d records, want 1..%d", n, console.MaxBatch), http.StatusBadRequest)
		return
	}
	evs := make([]event.Event, len(req.Records))
	for i := range req.Records {
		if err := req.Records[i].Check(); err != nil {
			http.Error(w, fmt.Sprintf("bad audit request: records[%d].%v", i, err), http.StatusBadRequest)
			return
		}
		evs[i] = req.Records[i].Event()
	}
	if err := g.Emit(r.Context(), evs, nil); err != nil {
		g.log.Warn("console audit records not spooled", "records", len(evs), "err", err)
		http.Error(w, "not spooled: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int{"spooled": len(evs)})
}

// serveLogs answers GET /v1/logs?n=N (1..500, default 50).
func (g *Gateway) serveLogs(w http.ResponseWriter, r *http.Request) {
	n := 50
	if s := r.URL.Query().Get("n"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 || n > logRingLines {
			http.Error(w, fmt.Sprintf("want n=1..%d", logRingLines), http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(g.logs.last(n))
}

// SendAudit hands console audit records to the gateway listening on
// socket, to be spooled in one transaction.
func SendAudit(ctx context.Context, socket string, recs []console.Record) error {
	body, err := json.Marshal(AuditRequest{Records: recs})
	if err != nil {
		return err
	}
	return do(ctx, socket, http.MethodPost, "/v1/audit", bytes.NewReader(body), nil)
}

// FetchLogs asks the gateway for its newest n log lines.
func FetchLogs(ctx context.Context, socket string, n int) (*Logs, error) {
	var l Logs
	if err := get(ctx, socket, "/v1/logs?n="+strconv.Itoa(n), &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// FetchStatusSections asks for the status as it is on the wire, one raw
// value per section, so that a printer can show a section (board, say)
// whatever its shape.
func FetchStatusSections(ctx context.Context, socket string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := get(ctx, socket, "/v1/status", &m); err != nil {
		return nil, err
	}
	return m, nil
}

// do sends a request with body to the admin socket and decodes the answer
// into v, when v is not nil.
func do(ctx context.Context, socket, method, path string, body io.Reader, v any) error {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, method, "http://weir"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("gateway: admin socket %s: %w", socket, dialProblem(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("gateway: admin socket %s: %s: %s", socket, resp.Status, strings.TrimSpace(string(msg)))
	}
	if v == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("gateway: admin socket %s: bad answer: %w", socket, err)
	}
	return nil
}

var errNoPeer = errors.New("no peer credentials")
