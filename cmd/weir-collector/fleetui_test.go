//go:build linux

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/uplink/pki"
)

// chromium finds the browser (Debian's chromium, which scripts/deps.sh
// installs for these tests). Without it the test skips on a developer's
// machine, and fails as root or under CI, where it must run.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getuid() == 0 || os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: scripts/deps.sh installs it (Debian package chromium) for the fleet page's browser tests")
	}
	t.Skip("chromium is not installed (scripts/deps.sh installs it); the fleet page's browser test needs it")
	return ""
}

// browser is one headless Chromium: a fresh profile, nothing fetched
// from the network, and every console error, uncaught exception and
// browser log error (a CSP violation, a failed load) collected.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("hide-scrollbars", true), chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1600, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	b := &browser{ctx: ctx}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleType("error") || m.Type == chromedp.ConsoleType("assert") {
				b.mu.Lock()
				b.errors = append(b.errors, fmt.Sprintf("%s (%s %s)", m.String(), m.Source, m.URL))
				b.mu.Unlock()
			}
		}
	}()
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1600, 1000)), "start chromium")
	return b
}

// run runs one action within a minute.
func run[T any](t *testing.T, b *browser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

// open navigates to url and waits for the element of id.
func (b *browser) open(t *testing.T, url, id string) {
	t.Helper()
	run(t, b, chromedp.Steps(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID(id))))
}

func (b *browser) nodes(t *testing.T, sel string) []*chromedp.Node {
	t.Helper()
	return run(t, b, chromedp.Nodes(chromedp.CSSAll(sel), chromedp.AtLeast(0)))
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	return run(t, b, chromedp.Text(chromedp.CSS(sel)))
}

func (b *browser) errs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.errors)
}

// fleetMetric reads one per-gateway gauge from the collector's /metrics.
func fleetMetric(t *testing.T, r *rig, name, gateway string) (float64, bool) {
	m := r.metrics()
	v, ok := m[fmt.Sprintf(`%s{gateway=%q}`, name, gateway)]
	return v, ok
}

// TestFleetPageInChromium runs the collector with the fleet page on
// loopback, fed by a simulated fleet of 199 gateways over real mutual-TLS
// sessions (two hours of their past delivered as backlog, then a live
// minute every two seconds) and by a sink that already held records of a
// gateway whose id is markup. Headless Chromium then reads the pages: the
// fleet table has 200 rows, each in its state and the worst first; the
// gateway page draws every plot with data; the hostile strings show as
// text; the page logs no error. Screenshots are written to the test's
// artifact directory (go test -artifacts -outputdir DIR keeps them).
func TestFleetPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the collector, 199 simulated gateways and Chromium for about a minute; not in -short")
	}
	b := newBrowser(t)
	pkiDir := provisionPKI(t)
	fleet := newSimFleet(t, pkiDir, 199)
	_, _, err := pki.IssueGateway(pkiDir, hostileSinkID, pki.Options{})
	require.Error(t, err, "no certificate can name a gateway %q", hostileSinkID)
	sink := filepath.Join(t.TempDir(), "head-end", "records.jsonl")
	seedSink(t, sink, time.Now())
	r := startRigSink(t, pkiDir, sink, "--ui-listen", "127.0.0.1:0", "--ui-stale", "15s", "--ui-sites", fleet.sitesFile(t),
		"--max-handshakes-per-addr", "16", "--max-handshakes", "64")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	delivered := make(chan struct{})
	start := time.Now()
	fleet.run(ctx, t, r, 2*time.Hour, 2*time.Second, delivered)
	<-delivered
	t.Logf("199 gateways connected and delivered two hours of records each in %s", time.Since(start).Round(time.Millisecond))
	outageID := fleet.ids[outage][0]
	require.Eventually(t, func() bool {
		v, ok := fleetMetric(t, r, "weir_fleet_health", outageID)
		return ok && v == 4
	}, 60*time.Second, 500*time.Millisecond, "the gateway in an outage is not shown silent")
	v, ok := fleetMetric(t, r, "weir_fleet_bus_frame_error_rate", fleet.ids[emi][0])
	require.True(t, ok)
	assert.Greater(t, v, 0.0, "the bus with EMI has frame errors on /metrics")

	base := "http://" + r.ui
	out := t.ArtifactDir()
	save := func(name string, b []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(out, name), b, 0o644))
	}

	// The fleet page, all 200 rows on one page.
	b.open(t, base+"/?per=250", "fleet")
	rows := b.nodes(t, "#fleet tbody tr")
	save("fleet.png", run(t, b, chromedp.CaptureScreenshot()))
	save("fleet-full.png", run(t, b, chromedp.FullScreenshot(100)))
	require.Len(t, rows, 200, "one row per gateway")
	levelOf := map[string]string{}
	rank := map[string]int{"silent": 4, "critical": 3, "warning": 2, "unknown": 1, "ok": 0}
	prev := 5
	for i, n := range rows {
		id, lvl := n.AttributeValue("data-gateway"), n.AttributeValue("data-level")
		levelOf[id] = lvl
		require.Contains(t, rank, lvl, "row %d", i)
		require.LessOrEqual(t, rank[lvl], prev, "row %d (%s, %s) after a better one: worst first", i, id, lvl)
		prev = rank[lvl]
	}
	assert.Equal(t, "silent", levelOf[outageID])
	assert.Equal(t, "silent", levelOf[hostileSinkID], "the sink's gateway sends nothing now")
	assert.Equal(t, "warning", levelOf[fleet.ids[emi][0]])
	assert.Equal(t, "critical", levelOf[fleet.ids[tamperOpen][0]])
	assert.Equal(t, "warning", levelOf[fleet.ids[holdover][0]])
	assert.Equal(t, "critical", levelOf[fleet.ids[hostileStrings][0]], "its alert and its configuration result")
	for _, id := range fleet.ids[lossy] {
		assert.Equal(t, "warning", levelOf[id], id)
	}
	for _, id := range fleet.ids[healthy] {
		assert.Equal(t, "ok", levelOf[id], id)
	}
	t.Logf("fleet page: %d silent, %d critical, %d warning, %d ok", count(levelOf, "silent"), count(levelOf, "critical"),
		count(levelOf, "warning"), count(levelOf, "ok"))

	// The id that is markup is a link's text, and the page holds no
	// element of its making.
	assert.Equal(t, hostileSinkID, b.text(t, `#fleet tbody tr[data-gateway='`+strings.ReplaceAll(hostileSinkID, `"`, `\"`)+`'] td.id a`))
	assert.Equal(t, hostileHost, b.text(t, `#fleet tbody tr[data-gateway='gw-hostile'] td.site .host`))
	assert.Empty(t, b.nodes(t, "script"), "no script element on the page")
	assert.Empty(t, b.nodes(t, "#fleet img, #fleet svg, #fleet i, #fleet b"), "no element a gateway's string made")

	// A sort by loss, a filter, a page: the server does each.
	b.open(t, base+"/?sort=loss&dir=desc&per=20", "fleet")
	sorted := b.nodes(t, "#fleet tbody tr")
	require.Len(t, sorted, 20)
	assert.Contains(t, fleet.ids[lossy], sorted[0].AttributeValue("data-gateway"), "the lossiest first")
	b.open(t, base+"/", "fleet")
	run(t, b, chromedp.Steps(chromedp.SetValue(chromedp.CSS("input[name=q]"), "reservoir-emi"), chromedp.Submit(chromedp.CSS("input[name=q]"))))
	require.Eventually(t, func() bool { return strings.Contains(run(t, b, chromedp.Location()), "q=reservoir-emi") },
		10*time.Second, 50*time.Millisecond, "the filter form")
	run(t, b, chromedp.WaitVisible(chromedp.ID("fleet")))
	filtered := b.nodes(t, "#fleet tbody tr")
	require.Len(t, filtered, 1, "the filter form")
	assert.Equal(t, fleet.ids[emi][0], filtered[0].AttributeValue("data-gateway"))

	// The gateway with EMI: every plot has points, the events strip its
	// marks, the latest telemetry its table.
	b.open(t, base+"/gateway?id="+fleet.ids[emi][0]+"&range=hour", "plots")
	plots := b.nodes(t, "figure.plot")
	lines := b.nodes(t, "figure.plot path.line")
	marks := b.nodes(t, "svg.strip circle.mark")
	latest := b.nodes(t, "#latest details")
	save("gateway.png", run(t, b, chromedp.CaptureScreenshot()))
	save("gateway-full.png", run(t, b, chromedp.FullScreenshot(100)))
	require.Len(t, plots, 9)
	for _, p := range plots {
		n, err := strconv.Atoi(p.AttributeValue("data-points"))
		require.NoError(t, err)
		assert.Positive(t, n, "plot %s has no point", p.AttributeValue("id"))
	}
	require.NotEmpty(t, lines)
	for _, l := range lines {
		assert.Regexp(t, regexp.MustCompile(`^M[0-9.]+,[0-9.]+`), l.AttributeValue("d"))
	}
	assert.NotEmpty(t, marks, "events on the strip (clock changes, frame errors)")
	assert.GreaterOrEqual(t, len(latest), 3, "spool, link and bus telemetry")
	for _, rg := range []string{"day", "week"} {
		b.open(t, base+"/gateway?id="+fleet.ids[emi][0]+"&range="+rg, "plots")
		for _, p := range b.nodes(t, "figure.plot") {
			assert.NotEqual(t, "0", p.AttributeValue("data-points"), "%s: plot %s", rg, p.AttributeValue("id"))
		}
	}

	// The hostile gateway's page: its strings as text.
	b.open(t, base+"/gateway?id=gw-hostile", "plots")
	assert.Equal(t, hostileHost, b.text(t, "h1 .host"))
	assert.Contains(t, b.text(t, "#events table"), hostileMsg)
	assert.Empty(t, b.nodes(t, "script"))
	assert.Empty(t, b.nodes(t, "main img, #events i, #events b"))
	save("hostile.png", run(t, b, chromedp.CaptureScreenshot()))
	// And the one the sink brought.
	b.open(t, base+"/gateway?id="+url.QueryEscape(hostileSinkID), "gateway-id")
	assert.Equal(t, hostileSinkID, b.text(t, "#gateway-id"))

	// Smaller shots, as README.md shows them (docs/images).
	run(t, b, chromedp.EmulateViewport(1200, 720))
	b.open(t, base+"/", "fleet")
	save("readme-fleet.png", run(t, b, chromedp.CaptureScreenshot()))
	b.open(t, base+"/gateway?id="+fleet.ids[emi][0]+"&range=hour", "plots")
	save("readme-gateway.png", run(t, b, chromedp.CaptureScreenshot()))

	assert.Empty(t, b.errs(), "errors logged by the page")
	t.Logf("screenshots in %s", out)
	resp, err := http.Get(base + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		resp.Header.Get("Content-Security-Policy"))
}

func count(m map[string]string, v string) int {
	n := 0
	for _, x := range m {
		if x == v {
			n++
		}
	}
	return n
}

// rss is the collector's resident and peak resident memory, from /proc.
func (r *rig) rss() (cur, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	require.NoError(r.t, err)
	get := func(key string) int64 {
		m := regexp.MustCompile(key + `:\s+(\d+) kB`).FindSubmatch(b)
		require.NotNil(r.t, m, "no %s in /proc/%d/status", key, r.cmd.Process.Pid)
		kb, err := strconv.ParseInt(string(m[1]), 10, 64)
		require.NoError(r.t, err)
		return kb << 10
	}
	return get("VmRSS"), get("VmHWM")
}

// TestFleetPageLoad is the load check of the fleet page (make
// fleet-load): 1,000 simulated gateways, each delivering half an hour of
// records and then a live minute every five seconds, into a collector
// without the page and then into one with it. It reports (never asserts:
// figures depend on the machine) the collector's memory in each and so
// what the page and its store add, and Chromium's first contentful
// paint of the fleet page (250 rows, and all 1,000) and of a gateway's
// page.
func TestFleetPageLoad(t *testing.T) {
	if os.Getenv("WEIR_FLEET_LOAD") == "" {
		t.Skip("the 1,000-gateway load check runs with make fleet-load (WEIR_FLEET_LOAD=1)")
	}
	const n = 1000
	b := newBrowser(t)
	pkiDir := provisionPKI(t)
	fleet := newSimFleet(t, pkiDir, n)
	type result struct{ rss, peak int64 }
	feed := func(r *rig) result {
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		delivered := make(chan struct{})
		start := time.Now()
		fleet.run(ctx, t, r, 30*time.Minute, 5*time.Second, delivered)
		<-delivered
		t.Logf("%d gateways delivered half an hour each in %s", n, time.Since(start).Round(time.Millisecond))
		time.Sleep(15 * time.Second) // live minutes; the store's first flush
		cur, peak := r.rss()
		return result{cur, peak}
	}
	args := []string{"--max-handshakes-per-addr", "16", "--max-handshakes", "64", "--max-conns", "1100", "--max-sessions-per-gateway", "4"}
	for _, g := range fleet.gws {
		g.seq = 1_000_000 // a fresh collector: start over
	}
	base := feed(startRig(t, pkiDir, args...))
	for _, g := range fleet.gws {
		g.seq, g.state = 1_000_000, simState{}
	}
	r := startRig(t, pkiDir, append(args, "--ui-listen", "127.0.0.1:0", "--ui-stale", "1m")...)
	withUI := feed(r)
	mib := func(v int64) string { return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20)) }
	t.Logf("collector RSS with %d gateways: without the page %s (peak %s), with it %s (peak %s): the page and its store add %s (peak %s)",
		n, mib(base.rss), mib(base.peak), mib(withUI.rss), mib(withUI.peak), mib(withUI.rss-base.rss), mib(withUI.peak-base.peak))

	// The paint entry is recorded a frame or two after the page shows.
	paint := func(url, id string) (fcp, server float64) {
		b.open(t, url, id)
		deadline := time.Now().Add(5 * time.Second)
		for fcp = -1; fcp < 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			fcp = run(t, b, chromedp.Evaluate[float64](`(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime`))
		}
		server = run(t, b, chromedp.Evaluate[float64](`(function(){const e = performance.getEntriesByType('navigation')[0]; return e.responseEnd - e.requestStart})()`))
		return fcp, server
	}
	base2 := "http://" + r.ui
	for _, p := range []struct{ name, url, id string }{
		{"fleet page, 250 rows", base2 + "/", "fleet"},
		{"fleet page, all 1,000 rows", base2 + "/?per=1000", "fleet"},
		{"fleet page, sorted by loss", base2 + "/?sort=loss&dir=desc", "fleet"},
		{"gateway page, hour", base2 + "/gateway?id=" + fleet.ids[emi][0], "plots"},
		{"gateway page, week", base2 + "/gateway?id=" + fleet.ids[emi][0] + "&range=week", "plots"},
	} {
		var fcps, servers []float64
		for range 3 {
			fcp, server := paint(p.url, p.id)
			fcps, servers = append(fcps, fcp), append(servers, server)
		}
		t.Logf("%s: first contentful paint %.0f, %.0f, %.0f ms (request to last byte %.0f, %.0f, %.0f ms)", p.name,
			fcps[0], fcps[1], fcps[2], servers[0], servers[1], servers[2])
	}
	rows := b.nodes(t, "figure.plot")
	require.Len(t, rows, 9)
	b.open(t, base2+"/?per=1000", "fleet")
	require.Len(t, b.nodes(t, "#fleet tbody tr"), n)
	assert.Empty(t, b.errs(), "errors logged by the page")
	st, err := os.Stat(filepath.Join(filepath.Dir(r.sink), "fleet"))
	require.NoError(t, err)
	require.True(t, st.IsDir())
	du, err := exec.Command("du", "-sk", "--apparent-size", filepath.Join(filepath.Dir(r.sink), "fleet")).Output()
	require.NoError(t, err)
	du2, err := exec.Command("du", "-sk", filepath.Join(filepath.Dir(r.sink), "fleet")).Output()
	require.NoError(t, err)
	t.Logf("fleet store on disk: %s KiB apparent, %s KiB allocated", strings.Fields(string(du))[0], strings.Fields(string(du2))[0])
}
