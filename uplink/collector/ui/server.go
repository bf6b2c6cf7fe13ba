package ui

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/collector/fleet"
)

//go:embed templates/*.html static/*
var assets embed.FS

// csp allows nothing but the page's own stylesheet and icon: no script
// at all, no inline style, no frame, forms only to the page itself. The
// plots are inline SVG drawn by the server.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Server serves the fleet page and each gateway's page, read-only.
type Server struct {
	cfg     Config
	store   *fleet.Store
	log     *slog.Logger
	tmpl    *template.Template
	static  http.Handler
	tokens  *tokenFile
	guard   *loginGuard
	tls     *tls.Config
	sem     chan struct{}
	now     func() time.Time
	metrics *metrics
	lim     *limitListener // the connection bounds, once serving
	seals   SealLine       // nil: no live seal check to show
}

// SealLine gives a gateway's line of the collector's live seal check
// (weir-collector status) and whether its log failed; ok false when the
// check has not seen the gateway.
type SealLine func(gateway string) (line string, failed, ok bool)

// ShowSeals puts each gateway's seal check on its page (call before
// Serve).
func (s *Server) ShowSeals(f SealLine) { s.seals = f }

type metrics struct {
	requests *prometheus.CounterVec // code
	refused  *prometheus.CounterVec // reason
}

// New builds the server; cfg is expected to pass Validate.
func New(cfg Config, store *fleet.Store, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	d := DefaultConfig()
	if cfg.MaxConns < 1 {
		cfg.MaxConns = d.MaxConns
	}
	if cfg.MaxConnsPerAddr < 1 {
		cfg.MaxConnsPerAddr = d.MaxConnsPerAddr
	}
	if cfg.MaxInFlight < 1 {
		cfg.MaxInFlight = d.MaxInFlight
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if cfg.BusyWait <= 0 {
		cfg.BusyWait = d.BusyWait
	}
	if cfg.PageSize < 1 || cfg.PageSize > MaxPageSize {
		cfg.PageSize = d.PageSize
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: templates: %w", err)
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("ui: assets: %w", err)
	}
	s := &Server{cfg: cfg, store: store, log: log, tmpl: tmpl, static: http.StripPrefix("/static/", http.FileServerFS(static)),
		guard: newLoginGuard(), sem: make(chan struct{}, cfg.MaxInFlight), now: time.Now,
		metrics: &metrics{
			requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_ui_requests_total",
				Help: "Requests to the fleet page's listener, by status code."}, []string{"code"}),
			refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weir_ui_refused_total",
				Help: "Connections and requests the fleet page refused, by reason (conns, conns_per_addr, auth, login, busy)."}, []string{"reason"}),
		}}
	if cfg.TokenFile != "" {
		if s.tokens, err = newTokenFile(cfg.TokenFile); err != nil {
			return nil, fmt.Errorf("ui-token-file: %w", err)
		}
	}
	if cfg.Cert != "" {
		if s.tls, err = serverTLS(cfg); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// serverTLS re-reads the certificate (and client CA) when they change,
// as the gateway listener does.
func serverTLS(cfg Config) (*tls.Config, error) {
	id := uplink.NewIdentity(uplink.TLSConfig{CA: cfg.ClientCA, Cert: cfg.Cert, Key: cfg.Key})
	auth := tls.NoClientCert
	if cfg.ClientCA != "" {
		auth = tls.RequireAndVerifyClientCert
	}
	tc, err := id.ServerConfigAuth(auth)
	if err != nil {
		return nil, fmt.Errorf("ui-cert: %w", err)
	}
	return tc, nil
}

// Register adds the listener's counters and the store's per-gateway
// gauges to reg.
func (s *Server) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{s.metrics.requests, s.metrics.refused, s.store.Collector()} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("ui: register metrics: %w", err)
		}
	}
	return nil
}

// Handler is the page's routes behind its headers, authentication and
// bound on pages in flight.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.fleetPage)
	mux.HandleFunc("GET /gateway", s.gatewayPage)
	mux.Handle("GET /static/", s.static)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/icon.svg", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	return s.headers(s.auth(s.bound(mux)))
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(fmt.Sprint(sw.code)).Inc()
	})
}

// auth lets a request through when the listener's checks pass: a client
// certificate that names no gateway (TLS verified it), and the token or
// its cookie. The stylesheet and the login form are open, so the login
// page can be drawn.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && isGatewayCert(r.TLS.PeerCertificates[0]) {
			s.metrics.refused.WithLabelValues("auth").Inc()
			http.Error(w, "a gateway's certificate does not open the fleet page", http.StatusForbidden)
			return
		}
		open := strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/login" || r.URL.Path == "/favicon.ico"
		if s.tokens == nil || open || s.tokens.tokenOK(r) {
			next.ServeHTTP(w, r)
			return
		}
		s.metrics.refused.WithLabelValues("auth").Inc()
		if r.Header.Get("Authorization") == "" && r.Method == http.MethodGet {
			http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="weir fleet"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
}

// bound lets MaxInFlight pages render at once; a request waits up to
// BusyWait for a turn, then gets 503.
func (s *Server) bound(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(s.cfg.BusyWait)
		defer t.Stop()
		select {
		case s.sem <- struct{}{}:
		case <-t.C:
			s.metrics.refused.WithLabelValues("busy").Inc()
			w.Header().Set("Retry-After", "5")
			http.Error(w, "busy: too many pages at once", http.StatusServiceUnavailable)
			return
		case <-r.Context().Done():
			return
		}
		defer func() { <-s.sem }()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.tokens == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, "login.html", loginView{Next: safeNext(r.URL.Query().Get("next"))})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.tokens == nil {
		http.NotFound(w, r)
		return
	}
	addr := r.RemoteAddr
	if a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		addr = addrKey(a)
	}
	if wait, ok := s.guard.allow(addr, s.now()); !ok {
		s.metrics.refused.WithLabelValues("login").Inc()
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		http.Error(w, "too many failed logins from your address; wait "+wait.Round(time.Second).String(), http.StatusTooManyRequests)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	tok, err := s.tokens.current()
	if err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), tok) != 1 {
		s.guard.failed(addr, s.now())
		s.metrics.refused.WithLabelValues("login").Inc()
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, "login.html", loginView{Next: next, Failed: true})
		return
	}
	s.guard.succeeded(addr)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: cookieValue(tok), Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext keeps a redirect on this site: a path, never a scheme or
// another host.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.HasPrefix(n, "/\\") || strings.ContainsAny(n, "\r\n") {
		return "/"
	}
	return n
}

type loginView struct {
	Next   string
	Failed bool
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	if err := s.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		s.log.Error("fleet page: render", "template", name, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write([]byte(b.String()))
}

// Serve serves on ln (TLS when configured) until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.lim = newLimitListener(ln, s.cfg.MaxConns, s.cfg.MaxConnsPerAddr, func(reason string) {
		s.metrics.refused.WithLabelValues(reason).Inc()
	})
	ln = s.lim
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: s.cfg.ReadHeaderTimeout, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 8 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	})
	defer stop()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ui: %w", err)
	}
	return nil
}

// LoadSites reads the sites file into the store now and whenever it
// changes (checked every interval) until ctx ends; a file that does not
// read keeps the last good one and is logged.
func LoadSites(ctx context.Context, path string, store *fleet.Store, every time.Duration, log *slog.Logger) error {
	var last os.FileInfo
	load := func() error {
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("ui-sites: %w", err)
		}
		if last != nil && fi.Size() == last.Size() && fi.ModTime().Equal(last.ModTime()) {
			return nil
		}
		sites, err := fleet.LoadSites(path)
		if err != nil {
			return fmt.Errorf("ui-sites: %w", err)
		}
		last = fi
		store.SetSites(sites)
		return nil
	}
	if err := load(); err != nil {
		return err
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := load(); err != nil {
			log.Warn("sites file not re-read; keeping the last one", "err", err)
		}
	}
}
