package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/ptp"
)

// listenAdmin opens the admin socket, 0660 so an operators' group
// (admin.group) can run diagnostics without root. What is at its path
// decides: nothing, or a socket of ours left by a crashed run (replaced),
// starts; a socket of ours that answers belongs to a running gateway, and
// anything else (another user's socket, a file, a link) is not ours to
// remove: both are errors that say so. A socket outside the data
// directory needs a directory nobody else can write (checkSocketDir), so
// only root or the gateway's user can have put anything there.
func (g *Gateway) listenAdmin() (net.Listener, error) {
	if dir := filepath.Dir(g.socket); filepath.Clean(dir) != filepath.Clean(g.dataDir) {
		if err := checkSocketDir(dir); err != nil {
			return nil, fmt.Errorf("gateway: admin.socket %s: %w", g.socket, err)
		}
	}
	gid := -1
	if name := g.cfg.Admin.Group; name != "" {
		var err error
		if gid, err = lookupGroup(name); err != nil {
			return nil, fmt.Errorf("gateway: admin.group %q: %w", name, err)
		}
	}
	if err := g.clearSocket(); err != nil {
		return nil, err
	}
	// The umask keeps the socket closed to others from its first instant;
	// nothing else in the process creates files at this point of start-up.
	old := syscall.Umask(0o117)
	ln, err := net.Listen("unix", g.socket)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("gateway: admin socket: %w", err)
	}
	if gid >= 0 {
		if err := os.Chown(g.socket, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("gateway: admin.group %q: %w", g.cfg.Admin.Group, err)
		}
	}
	return ln, nil
}

// clearSocket removes a stale admin socket of ours, and refuses anything
// else at its path.
func (g *Gateway) clearSocket() error {
	fi, err := os.Lstat(g.socket)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gateway: admin socket %s: %w", g.socket, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("gateway: admin socket %s: something else is there (%s), not a socket; remove it if it is not needed", g.socket, fi.Mode().Type())
	}
	if uid, ok := fileOwner(fi); ok && int(uid) != os.Geteuid() {
		return fmt.Errorf("gateway: admin socket %s: belongs to %s, not to %s that weir runs as; not removing it (remove it as its owner or root if it is stale)",
			g.socket, userName(uid), userName(uint32(os.Geteuid())))
	}
	if c, err := net.DialTimeout("unix", g.socket, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("gateway: admin socket %s: another weir is running", g.socket)
	}
	if err := os.Remove(g.socket); err != nil {
		return fmt.Errorf("gateway: remove stale admin socket %s: %w", g.socket, err)
	}
	return nil
}

// lookupGroup resolves a group name, or takes a numeric gid as it is.
func lookupGroup(name string) (int, error) {
	if gid, err := strconv.Atoi(name); err == nil && gid >= 0 {
		return gid, nil
	}
	grp, err := user.LookupGroup(name)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(grp.Gid)
}

func serveAdmin(ctx context.Context, ln net.Listener, g *Gateway) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(g.Status())
	})
	// The health check's own probe of the socket, and its last verdict.
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(g.health.snapshot())
	})
	mux.HandleFunc("GET /v1/link", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(g.Link())
	})
	mux.HandleFunc("GET /v1/sensors", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(g.Sensors())
	})
	mux.HandleFunc("GET /v1/sensors/read", g.serveSensorRead)
	mux.HandleFunc("GET /v1/ptp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(g.clock.Status())
	})
	mux.HandleFunc("GET /v1/spool/records", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		from, err1 := strconv.ParseUint(q.Get("from"), 10, 64)
		n, err2 := strconv.Atoi(q.Get("n"))
		if err1 != nil || err2 != nil || n < 1 || n > 10000 {
			http.Error(w, "want from=SEQ and n=1..10000", http.StatusBadRequest)
			return
		}
		recs, err := g.InspectSpool(from, n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(recs)
	})
	mux.HandleFunc("GET /v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(g.Alerts())
	})
	mux.HandleFunc("GET /v1/logs", g.serveLogs)
	mux.HandleFunc("GET /v1/config", g.serveConfig)
	mux.HandleFunc("POST /v1/audit", g.serveAudit)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ConnContext: withPeerConn}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin socket: %w", err)
	}
	return nil
}

// SpoolRecord is one spooled record as `weir spool inspect` shows it.
type SpoolRecord struct {
	Seq      uint64          `json:"seq"`
	Class    string          `json:"class"`
	Appended time.Time       `json:"appended"`
	Event    json.RawMessage `json:"event,omitempty"`
	Error    string          `json:"decode_error,omitempty"`
	Raw      []byte          `json:"raw_base64,omitempty"`
}

// InspectSpool decodes n spooled records from sequence from, for diagnosis.
func (g *Gateway) InspectSpool(from uint64, n int) ([]SpoolRecord, error) {
	recs, err := g.spool.Read(from, n, 0)
	if err != nil {
		return nil, err
	}
	out := make([]SpoolRecord, len(recs))
	for i, r := range recs {
		out[i] = SpoolRecord{Seq: r.Seq, Class: r.Class.String(), Appended: r.Appended}
		var e event.Event
		if err := e.UnmarshalBinary(r.Data); err != nil {
			out[i].Error, out[i].Raw = err.Error(), r.Data
			continue
		}
		e.Seq = r.Seq
		if out[i].Event, err = json.Marshal(&e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// get fetches path from the admin socket into v.
func get(ctx context.Context, socket, path string, v any) error {
	return do(ctx, socket, http.MethodGet, path, nil, v)
}

// dialProblem says why the admin socket did not answer, in the
// operator's words, not the HTTP client's ("Get "http://weir/...": dial
// unix ...").
func dialProblem(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("no socket there (is `weir run` running?)")
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing listening (is `weir run` running?)")
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("permission denied: the socket is for its owner and admin.group")
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer in time")
	}
	return fmt.Errorf("%s (is `weir run` running?)", netProblem(err))
}

// FetchSpoolRecords asks the running gateway for n decoded records from
// sequence from.
func FetchSpoolRecords(ctx context.Context, socket string, from uint64, n int) ([]SpoolRecord, error) {
	var recs []SpoolRecord
	err := get(ctx, socket, fmt.Sprintf("/v1/spool/records?from=%d&n=%d", from, n), &recs)
	return recs, err
}

// FetchStatus asks the gateway listening on socket for its status.
func FetchStatus(ctx context.Context, socket string) (*Status, error) {
	var st Status
	if err := get(ctx, socket, "/v1/status", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// FetchPTP asks the gateway listening on socket for its clock's state.
func FetchPTP(ctx context.Context, socket string) (*ptp.Status, error) {
	var st ptp.Status
	if err := get(ctx, socket, "/v1/ptp", &st); err != nil {
		return nil, err
	}
	return &st, nil
}
