package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink/collector/fleet"
)

type tag struct {
	name  string
	attrs []string
}

var (
	tagRE  = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=/>]+(?:="[^"]*"|='[^']*'|=[^\s>]*)?)*)\s*/?>`)
	attrRE = regexp.MustCompile(`\s+([^\s=/>]+)(?:="[^"]*"|='[^']*'|=[^\s>]*)?`)
)

// tags lists the elements of a page and their attribute names, reading
// quoted values as values: what a browser would build, not what text
// looks like.
func tags(body string) []tag {
	var out []tag
	for _, m := range tagRE.FindAllStringSubmatch(body, -1) {
		tg := tag{name: strings.ToLower(m[1])}
		for _, a := range attrRE.FindAllStringSubmatch(m[2], -1) {
			tg.attrs = append(tg.attrs, strings.ToLower(a[1]))
		}
		out = append(out, tg)
	}
	return out
}

const hostileID = `gw"><script>alert("id")</script>`

var hostile = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(2)>`,
	`'><svg/onload=alert(3)>`,
	"\x1b[31mred\u202etxt.exe",
}

func testStore(t testing.TB, now time.Time) *fleet.Store {
	t.Helper()
	o := fleet.DefaultOptions()
	o.Dir, o.Now = t.TempDir(), func() time.Time { return now }
	s, err := fleet.Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func tel(at time.Time, source string, fields ...event.Field) *event.Event {
	return &event.Event{Time: at.UnixNano(), Quality: event.Quality{Source: event.TimePTP, State: event.ClockLocked, ErrorBound: 900},
		Source: source, Kind: event.KindTelemetry, Severity: event.SevInfo, Message: source, Fields: fields}
}

func feedHealthy(s *fleet.Store, id string, now time.Time, loss float64) {
	for m := 60; m >= 0; m-- {
		at := now.Add(-time.Duration(m) * time.Minute)
		s.Observe(id, at, []*event.Event{
			tel(at, "weir:spool", event.Int("backlog_records", int64(m)), event.Int("backlog_bytes", int64(m)*300), event.Float("oldest_unacked_seconds", 0.5)),
			tel(at, "weir:uplink", event.Str("endpoint", "tls://head-end:7443"), event.Str("state", "connected"), event.Bool("active", true),
				event.Float("srtt_ms", 20+float64(m%5)), event.Float("loss_1m", loss), event.Float("goodput_bps", 1.5e6)),
			tel(at, "modbus:rs485-1", event.Str("bus", "rs485-1"), event.Str("state", "up"), event.Float("frame_error_rate_1m", 0)),
		}, fleet.Position{Offset: -1})
	}
	at := now.Add(-50 * time.Minute)
	s.Observe(id, at, []*event.Event{tel(at, "weir:clock", event.Str("from", "start"), event.Str("to", "locked"), event.Int("offset_ns", 120))}, fleet.Position{Offset: -1})
}

func newTestServer(t *testing.T, cfg Config, s *fleet.Store, now time.Time) *Server {
	t.Helper()
	srv, err := New(cfg, s, nil)
	require.NoError(t, err)
	srv.now = func() time.Time { return now }
	return srv
}

func get(t *testing.T, h http.Handler, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// Every string a gateway chose reaches the page as text: no element,
// attribute or script of its making, and a strict policy besides.
func TestHostileStringsAreText(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := testStore(t, now)
	feedHealthy(s, "gw-ok", now, 0)
	at := now.Add(-time.Minute)
	var evs []*event.Event
	for i, h := range hostile {
		evs = append(evs,
			tel(at, "weir:uplink", event.Str("endpoint", h), event.Str("state", h), event.Float("srtt_ms", 10), event.Float("loss_1m", 0.5),
				event.Str("cert_warning", h), event.Str("last_error", h)),
			tel(at, "modbus:"+h, event.Str("bus", h), event.Str("state", h), event.Float("frame_error_rate_1m", 0.2)),
			&event.Event{Time: at.UnixNano() + int64(i), Source: "weir:board", Kind: event.KindAlert, Severity: event.SevCritical,
				Message: h, Host: h, Fields: []event.Field{event.Str("state", h), event.Str("config_version", h), event.Str("config_result", h)}})
	}
	s.Observe(hostileID, at, evs, fleet.Position{Offset: -1})
	s.SetSites(map[string]fleet.Site{hostileID: {{"site", hostile[0]}, {"region", hostile[1]}}})

	// The check below sees markup when there is some.
	require.Equal(t, []tag{{"p", nil}, {"img", []string{"src", "onerror"}}}, tags(`<p><img src=x onerror="alert(1)"> &lt;img onload=x&gt; <b title="<i onclick=x>">`)[:2])

	h := newTestServer(t, DefaultConfig(), s, now).Handler()
	pages := []string{"/", "/?q=" + url.QueryEscape(hostile[0]), "/gateway?id=" + url.QueryEscape(hostileID),
		"/gateway?id=" + url.QueryEscape(hostileID) + "&range=week", "/gateway?id=" + url.QueryEscape(hostile[1])}
	for _, p := range pages {
		res, body := get(t, h, p)
		if p == pages[4] {
			assert.Equal(t, http.StatusNotFound, res.StatusCode)
		} else {
			require.Equal(t, http.StatusOK, res.StatusCode, p)
		}
		assert.Equal(t, csp, res.Header.Get("Content-Security-Policy"))
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
		for _, bad := range []string{"<script", "<img", "<svg/", "\x1b", "\u202e"} {
			assert.NotContains(t, body, bad, "%s carries %q", p, bad)
		}
		for _, tag := range tags(body) {
			assert.NotContains(t, []string{"script", "img", "iframe", "object", "embed"}, tag.name, "%s: a %s element", p, tag.name)
			for _, a := range tag.attrs {
				assert.False(t, strings.HasPrefix(a, "on"), "%s: <%s %s=...>", p, tag.name, a)
			}
		}
		assert.Regexp(t, regexp.MustCompile(`&lt;script&gt;|&lt;img|\\x1b`), body, p)
	}
	_, body := get(t, h, "/gateway?id="+url.QueryEscape(hostileID))
	assert.Contains(t, body, `\x1b[31mred\u202etxt.exe`, "control characters are shown, not obeyed")
}

func TestFleetPageSortsFiltersAndPages(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := testStore(t, now)
	for i := range 30 {
		loss := 0.0
		if i%10 == 0 {
			loss = 0.01 * float64(i/10+3)
		}
		feedHealthy(s, "gw-"+string(rune('a'+i/26))+string(rune('a'+i%26)), now, loss)
	}
	h := newTestServer(t, DefaultConfig(), s, now).Handler()
	ids := func(body string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`data-gateway="([^"]+)" data-level="([^"]+)"`).FindAllStringSubmatch(body, -1) {
			out = append(out, m[1]+":"+m[2])
		}
		return out
	}
	_, body := get(t, h, "/")
	got := ids(body)
	require.Len(t, got, 30)
	assert.Equal(t, []string{"gw-au:warning", "gw-ak:warning", "gw-aa:warning", "gw-ab:ok"}, got[:4], "worst first")

	_, body = get(t, h, "/?level=warning")
	assert.Len(t, ids(body), 3)
	_, body = get(t, h, "/?q=GW-B")
	assert.Len(t, ids(body), 4)
	_, body = get(t, h, "/?sort=loss&dir=desc&per=2&page=2")
	assert.Equal(t, []string{"gw-aa:warning", "gw-ab:ok"}, ids(body))
	assert.Contains(t, body, "page 2 of 15")
	_, body = get(t, h, "/?sort=id")
	assert.Equal(t, "gw-aa:warning", ids(body)[0])
	_, body = get(t, h, "/?per=100000&page=-3&sort=%3Cx%3E&level=%22")
	assert.Len(t, ids(body), 30, "nonsense parameters fall back to defaults")

	res, body := get(t, h, "/gateway?id=gw-aa&range=day")
	require.Equal(t, http.StatusOK, res.StatusCode)
	for _, p := range plotDefs {
		m := regexp.MustCompile(`id="plot-` + p.id + `" data-points="(\d+)"`).FindStringSubmatch(body)
		require.NotNil(t, m, p.id)
		if p.id != "fer" { // every value 0: still drawn
			assert.NotEqual(t, "0", m[1], p.id)
		}
	}
	assert.Contains(t, body, "clock start → locked")
}

func TestTokenAndLogin(t *testing.T) {
	now := time.Now()
	s := testStore(t, now)
	feedHealthy(s, "gw-1", now, 0)
	dir := t.TempDir()
	tokPath := filepath.Join(dir, "token")
	token := "correct-horse-battery-staple-42"
	require.NoError(t, os.WriteFile(tokPath, []byte(token+"\n"), 0o644))
	cfg := DefaultConfig()
	cfg.Listen, cfg.TokenFile = "127.0.0.1:0", tokPath
	require.ErrorContains(t, cfg.Validate(), "readable or writable by group or others")
	require.NoError(t, os.Chmod(tokPath, 0o600))
	require.NoError(t, cfg.Validate())
	h := newTestServer(t, cfg, s, now).Handler()

	res, _ := get(t, h, "/")
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/login?next=%2F", res.Header.Get("Location"))
	res, _ = get(t, h, "/static/style.css")
	assert.Equal(t, http.StatusOK, res.StatusCode, "the stylesheet is open, for the login page")

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code)
	req.Header.Set("Authorization", "Bearer "+token+"x")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusUnauthorized, rec.Code)

	login := func(tok, next string) *http.Response {
		form := url.Values{"token": {tok}, "next": {next}}
		req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "192.0.2.7:5555"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	res = login("wrong-token-wrong-token", "/")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res = login(token, "/")
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode, "the next try waits, even with the right token")
	assert.NotEmpty(t, res.Header.Get("Retry-After"))

	cfg2 := cfg
	h2 := newTestServer(t, cfg2, s, now).Handler()
	form := url.Values{"token": {token}, "next": {"//evil.example/x"}}
	req = httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec = httptest.NewRecorder()
	h2.ServeHTTP(rec, req)
	require.Equal(t, http.StatusSeeOther, rec.Code)
	assert.Equal(t, "/", rec.Header().Get("Location"), "a redirect stays on the site")
	cookies := rec.Result().Cookies()
	require.Len(t, cookies, 1)
	assert.True(t, cookies[0].HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, cookies[0].SameSite)
	assert.NotContains(t, cookies[0].Value, token)
	req = httptest.NewRequest(http.MethodGet, "/gateway?id=gw-1", nil)
	req.AddCookie(cookies[0])
	rec = httptest.NewRecorder()
	h2.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code)

	// A new token ends the sessions of the old one.
	time.Sleep(1100 * time.Millisecond)
	require.NoError(t, os.WriteFile(tokPath, []byte("another-token-of-enough-length\n"), 0o600))
	rec = httptest.NewRecorder()
	h2.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusSeeOther, rec.Code)
}

func TestConfigRefusesAnOpenPort(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte("x"), 0o644))
	tests := []struct {
		name string
		cfg  func(*Config)
		want string
	}{
		{"loopback plain", func(c *Config) { c.Listen = "127.0.0.1:7480" }, ""},
		{"loopback v6", func(c *Config) { c.Listen = "[::1]:7480" }, ""},
		{"localhost", func(c *Config) { c.Listen = "localhost:7480" }, ""},
		{"exposed plain", func(c *Config) { c.Listen = "0.0.0.0:7480" }, "needs TLS"},
		{"exposed tls, no auth", func(c *Config) { c.Listen, c.Cert, c.Key = ":7480", ca, ca }, "never an open port"},
		{"exposed tls and client CA", func(c *Config) { c.Listen, c.Cert, c.Key, c.ClientCA = "10.0.0.5:7480", ca, ca, ca }, ""},
		{"client CA is the gateways'", func(c *Config) { c.Listen, c.Cert, c.Key, c.ClientCA, c.GatewayCA = ":7480", ca, ca, ca, ca }, "the gateways' CA"},
		{"client CA without TLS", func(c *Config) { c.Listen, c.ClientCA = "127.0.0.1:1", ca }, "need TLS"},
		{"half a pair", func(c *Config) { c.Listen, c.Cert = "127.0.0.1:1", ca }, "both or neither"},
		{"not host:port", func(c *Config) { c.Listen = "7480" }, "not host:port"},
		{"page size", func(c *Config) { c.Listen, c.PageSize = "127.0.0.1:1", 5000 }, "ui-page-size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.cfg(&c)
			err := c.Validate()
			if tt.want == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tt.want)
			}
		})
	}
}

// A gateway's page shows the collector's live seal check, and a failed
// log among its reasons.
func TestGatewayPageShowsSeals(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	s := testStore(t, now)
	feedHealthy(s, "gw-1", now, 0)
	feedHealthy(s, "gw-2", now, 0)
	srv := newTestServer(t, DefaultConfig(), s, now)
	srv.ShowSeals(func(gw string) (string, bool, bool) {
		if gw == "gw-1" {
			return "3 seals checked, last verified epoch 2 (tree size 62, seal at sequence 1062); FAILED from sequence 1041: <b>root</b>", true, true
		}
		return "", false, false
	})
	h := srv.Handler()
	_, body := get(t, h, "/gateway?id=gw-1")
	require.Contains(t, body, "<th>Seals</th><td>3 seals checked, last verified epoch 2 (tree size 62, seal at sequence 1062); FAILED from sequence 1041: &lt;b&gt;root&lt;/b&gt;</td>")
	require.Contains(t, body, "<li>tamper-evident log fails (see Seals)</li>")
	_, body = get(t, h, "/gateway?id=gw-2")
	require.NotContains(t, body, "<th>Seals</th>")
}
