package gateway

import (
	"context"
	"encoding/json"
	"net/http"
)

// ConfigView is the configuration in force, as `weir config show`
// prints it: which generation, where it came from (the file, the fleet
// bundle merged over it), remote configuration's state, and every key
// with secrets redacted.
type ConfigView struct {
	Generation uint64         `json:"generation"`
	Source     string         `json:"source"`
	Fleet      *FleetStatus   `json:"fleet,omitempty"`
	Config     map[string]any `json:"config"`
}

// ConfigView takes a snapshot.
func (g *Gateway) ConfigView() ConfigView {
	p := g.now()
	st := g.configStatus()
	m := p.cfg.Redacted().Map()
	if g.dataDir != "" {
		m["data_dir"] = g.dataDir
	}
	return ConfigView{Generation: p.gen, Source: st.Source, Fleet: st.Fleet, Config: m}
}

func (g *Gateway) serveConfig(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(g.ConfigView())
}

// FetchConfig asks the gateway listening on socket for the
// configuration in force.
func FetchConfig(ctx context.Context, socket string) (*ConfigView, error) {
	var v ConfigView
	if err := get(ctx, socket, "/v1/config", &v); err != nil {
		return nil, err
	}
	return &v, nil
}
