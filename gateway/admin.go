package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// listenAdmin opens the admin socket, 0660 so an operators' group can run
// diagnostics without root. A socket left by a crashed run is replaced; one
// that answers belongs to a running gateway and is an error.
func (g *Gateway) listenAdmin() (net.Listener, error) {
	if _, err := os.Stat(g.socket); err == nil {
		if c, err := net.DialTimeout("unix", g.socket, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("gateway: admin socket %s: another weir is running", g.socket)
		}
		if err := os.Remove(g.socket); err != nil {
			return nil, fmt.Errorf("gateway: remove stale admin socket %s: %w", g.socket, err)
		}
	}
	// The umask keeps the socket closed to others from its first instant;
	// nothing else in the process creates files at this point of start-up.
	old := syscall.Umask(0o117)
	ln, err := net.Listen("unix", g.socket)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("gateway: admin socket: %w", err)
	}
	return ln, nil
}

func serveAdmin(ctx context.Context, ln net.Listener, g *Gateway) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(g.Status())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin socket: %w", err)
	}
	return nil
}

// FetchStatus asks the gateway listening on socket for its status.
func FetchStatus(ctx context.Context, socket string) (*Status, error) {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://weir/v1/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gateway: admin socket %s: %w (is `weir run` running?)", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("gateway: admin socket %s: %s", socket, resp.Status)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("gateway: admin socket %s: bad status: %w", socket, err)
	}
	return &st, nil
}
