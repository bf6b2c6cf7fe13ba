package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway/console"
	"github.com/weirgw/weir/sensors/hostlog"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
	"github.com/weirgw/weir/sensors/syslog"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/pki"
	"github.com/weirgw/weir/uplink/siem/outputs"
)

func TestChangedKeys(t *testing.T) {
	base := func() Config {
		l, err := Load(writeConfig(t, `gateway: {id: gw}
inputs:
  files:
    - {name: a, paths: [/var/log/a.log]}
    - {name: b, paths: [/var/log/b.log]}
uplink:
  endpoints: [{address: "127.0.0.1:7000"}]
  tls: {ca: ca.pem, cert: gw.pem, key_pem: secret-one}
`), true)
		require.NoError(t, err)
		return l.Config
	}
	cases := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"a threshold of one input", func(c *Config) { c.Inputs.Files[1].PollInterval = time.Second },
			[]string{"inputs.files[1].poll_interval"}},
		{"an input added", func(c *Config) { c.Inputs.Files = append(c.Inputs.Files, hostlog.FileConfig{Name: "c"}) },
			[]string{"inputs.files"}},
		{"a section turned on", func(c *Config) { sc := syslog.DefaultConfig(); c.Inputs.Syslog = &sc }, []string{"inputs.syslog"}},
		{"a secret, named not shown", func(c *Config) { c.Uplink.TLS.KeyPEM = "secret-two" }, []string{"uplink.tls.key_pem"}},
		{"restart keys", func(c *Config) { c.Spool.MaxBytes *= 2; c.DataDir = "/elsewhere" }, []string{"data_dir", "spool.max_bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := base(), base()
			c.change(&b)
			got := changedKeys(&a, &b)
			require.Equal(t, c.want, got)
			require.NotContains(t, fmt.Sprint(got), "secret")
		})
	}
}

func TestNeedsRestart(t *testing.T) {
	hook := &sectionHook{key: "rules"}
	cur, next := Config{}, Config{}
	cases := []struct {
		keys []string
		want string
	}{
		{[]string{"inputs.files[0].poll_interval", "inputs.modbus.devices[2].interval", "uplink.tls.cert", "telemetry_interval",
			"console.idle_timeout", "inputs.syslog.rate_limit.burst", "rules.windows[0]"}, ""},
		{[]string{"spool.max_bytes", "spool.profile", "data_dir"},
			"spool.max_bytes (the spool is opened at start with its bounds and profile); data_dir (the spool, the positions and the admin socket live there)"},
		{[]string{"board.leds.alert_hold"}, "board.leds.alert_hold (the board's pins and watchdog are opened at start)"},
		{[]string{"admin.socket", "log.level", "metrics.listen", "clock.mode", "gateway.id", "outputs"}, "admin.socket"},
		{[]string{"some_future_section.x"}, "some_future_section.x (the reload does not know this section)"},
	}
	for _, c := range cases {
		got := strings.Join(needsRestart(c.keys, &cur, &next, []*sectionHook{hook}), "; ")
		if c.want == "" {
			require.Empty(t, got, "%v", c.keys)
			continue
		}
		require.Contains(t, got, c.want)
	}
	// With outputs, the uplink's turning on or off is for a restart.
	next.Outputs = make([]outputs.Config, 1)
	next.Uplink.Endpoints = cur.Uplink.Endpoints
	require.Empty(t, needsRestart(nil, &cur, &next, nil))
	next.Uplink.Endpoints = append(next.Uplink.Endpoints, uplink.Endpoint{Address: "127.0.0.1:7000"})
	require.Contains(t, strings.Join(needsRestart(nil, &cur, &next, nil), ""), "uplink.endpoints (with outputs")
}

// TestReloadKeysCoverConfig: every section of the file, and every input,
// says what a reload does with it, so a section added to Config must
// decide.
func TestReloadKeysCoverConfig(t *testing.T) {
	listed := map[string]bool{}
	for _, k := range reloadKeys {
		require.False(t, listed[k.key], "%s listed twice", k.key)
		listed[k.key] = true
		require.NotEmpty(t, k.how, k.key)
	}
	var want []string
	yamlKeys := func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if prefix+name == "inputs" {
				continue // each input on its own
			}
			want = append(want, prefix+name)
		}
	}
	yamlKeys(reflect.TypeFor[Config](), "")
	yamlKeys(reflect.TypeFor[InputsConfig](), "inputs.")
	for _, k := range want {
		require.True(t, listed[k], "reloadKeys does not say what a reload does with %s", k)
	}
	require.Len(t, reloadKeys, len(want), "reloadKeys lists a section Config does not have")
}

// reloadGateway runs the gateway of the configuration file until the
// test ends.
func reloadGateway(t *testing.T, file, data string) (*Gateway, *testGateway) {
	t.Helper()
	g := runBoardGateway(t, file)
	return g, &testGateway{socket: filepath.Join(data, "weir.sock"), file: file, dataDir: data}
}

// reloadFile writes body to file, reads it as SIGHUP does and reloads.
func reloadFile(t *testing.T, g *Gateway, file, body string) ReloadResult {
	t.Helper()
	require.NoError(t, os.WriteFile(file, []byte(body), 0o600))
	l, err := Load(file, true)
	if err != nil {
		return g.RefuseReload(context.Background(), "test", err)
	}
	return g.Reload(context.Background(), l.Config, "test "+file)
}

// tailerNamed is the running tailer of a file input.
func tailerNamed(g *Gateway, name string) *hostlog.Tailer {
	for _, tl := range g.now().tailers {
		if tl.Status().Name == name {
			return tl
		}
	}
	return nil
}

// TestReloadFilesUnderLoad: three files written without pause; a reload
// changes one input's threshold (restarting it), adds an input for the
// third file and leaves the second alone; another, invalid, is refused.
// Every line of every file is spooled exactly once, the untouched input
// keeps its tailer and its count.
func TestReloadFilesUnderLoad(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	logs := t.TempDir()
	cfg := func(aPoll string, withC bool) string {
		s := fmt.Sprintf(`gateway: {id: gw-reload}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
inputs:
  files:
    - {name: a, paths: [%s/a.log], start_at: beginning, poll_interval: %s}
    - {name: b, paths: [%s/b.log], start_at: beginning, poll_interval: 20ms}
`, data, logs, aPoll, logs)
		if withC {
			s += fmt.Sprintf("    - {name: c, paths: [%s/c.log], start_at: beginning, poll_interval: 20ms}\n", logs)
		}
		return s
	}
	file := writeConfig(t, cfg("20ms", false))
	g, tg := reloadGateway(t, file, data)

	const perFile = 3000
	var wg sync.WaitGroup
	var written [3]atomic.Int64
	for n, name := range []string{"a", "b", "c"} {
		wg.Go(func() {
			f, err := os.OpenFile(filepath.Join(logs, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			w := bufio.NewWriter(f)
			for i := range perFile {
				fmt.Fprintf(w, "%s line %d\n", name, i)
				if i%10 == 9 {
					_ = w.Flush()
					written[n].Store(int64(i + 1))
					time.Sleep(2 * time.Millisecond)
				}
			}
			_ = w.Flush()
			written[n].Store(perFile)
		})
	}
	require.Eventually(t, func() bool { return tailerNamed(g, "a").Status().Lines > 100 }, 10*time.Second, 5*time.Millisecond)
	b := tailerNamed(g, "b")
	bLines := b.Status().Lines

	t0 := time.Now()
	res := reloadFile(t, g, file, cfg("30ms", true))
	t.Logf("reload under load took %s", time.Since(t0).Round(time.Millisecond))
	require.Equal(t, ReloadOK, res.Result, res.Error)
	require.Equal(t, uint64(2), res.Generation)
	require.ElementsMatch(t, []string{"inputs.files a: restarted", "inputs.files c: started"}, res.Changed)
	require.Equal(t, []string{"inputs.files"}, res.Keys, "one more input: the list's length changed")
	for n := range written {
		require.Less(t, written[n].Load(), int64(perFile), "the reload came while the files were written")
	}
	require.Same(t, b, tailerNamed(g, "b"), "the unchanged input keeps running, untouched")
	require.GreaterOrEqual(t, b.Status().Lines, bLines, "its count goes on")

	bad := reloadFile(t, g, file, cfg("-1s", true))
	require.Equal(t, ReloadRefused, bad.Result)
	require.Contains(t, bad.Error, "poll_interval")
	require.Equal(t, uint64(2), bad.Generation, "the configuration in force stays")
	require.Equal(t, uint64(2), g.now().gen)
	wg.Wait()

	tg.waitRecords(t, "every line", func(r []spooled) bool {
		n := 0
		for _, x := range r {
			if x.Kind == "log" {
				n++
			}
		}
		return n >= 3*perFile
	})
	time.Sleep(200 * time.Millisecond) // a duplicate would be spooled by now
	recs := tg.records(t)
	seen := map[string]int{}
	for _, r := range recs {
		if r.Kind == "log" {
			seen[r.Message]++
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		for i := range perFile {
			msg := fmt.Sprintf("%s line %d", name, i)
			require.Equal(t, 1, seen[msg], "%q spooled %d times", msg, seen[msg])
		}
	}
	require.Len(t, seen, 3*perFile)

	// Each reload is a record of its own; the refused one is critical.
	var got []string
	for _, r := range find(recs, "weir:config", "configuration reload") {
		got = append(got, fmt.Sprint(r.Fields["result"]))
	}
	require.Equal(t, []string{ReloadOK, ReloadRefused}, got)
	st, err := FetchStatus(context.Background(), tg.socket)
	require.NoError(t, err)
	require.Equal(t, uint64(2), st.Config.Generation)
	require.Equal(t, map[string]uint64{ReloadOK: 1, ReloadRefused: 1}, st.Config.Reloads)
	require.Equal(t, ReloadRefused, st.Config.LastReload.Result)
	require.Equal(t, "test "+file, st.Config.Source)
}

// TestReloadRefusesRestartKeys: a reload that changes a key only a
// restart applies is refused whole, the live change beside it included.
func TestReloadRefusesRestartKeys(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	body := func(maxBytes, telemetry string) string {
		return fmt.Sprintf(`gateway: {id: gw-restart}
data_dir: %s
telemetry_interval: %s
metrics: {listen: ""}
spool: {max_bytes: %s}
inputs: {files: []}
`, data, telemetry, maxBytes)
	}
	file := writeConfig(t, body("64MiB", "1h"))
	g, _ := reloadGateway(t, file, data)
	before := g.now()
	res := reloadFile(t, g, file, body("128MiB", "2h"))
	require.Equal(t, ReloadRefused, res.Result)
	require.Equal(t, "needs a restart: spool.max_bytes (the spool is opened at start with its bounds and profile)", res.Error)
	require.Same(t, before, g.now(), "nothing applied")
	require.Equal(t, time.Hour, g.hooks[0].applied, "not even the live change beside it")

	res = reloadFile(t, g, file, "gateway: {id: gw-restart\n")
	require.Equal(t, ReloadRefused, res.Result)
	require.Contains(t, res.Error, file)
	require.NotContains(t, res.Error, "\n")

	res = reloadFile(t, g, file, body("64MiB", "2h"))
	require.Equal(t, ReloadOK, res.Result, res.Error)
	require.Equal(t, []string{"telemetry_interval: updated"}, res.Changed)
	require.Equal(t, 2*time.Hour, g.hooks[0].applied)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(reloadCollector{g})
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP weir_config_generation The configuration in force: 1 at start, one more for each reload that applied something.
# TYPE weir_config_generation gauge
weir_config_generation 2
# HELP weir_config_last_reload_successful 1 if the last reload applied everything asked (ok or unchanged), 0 if not; 1 before any.
# TYPE weir_config_last_reload_successful gauge
weir_config_last_reload_successful 1
# HELP weir_config_reloads_total Configuration reloads by result (ok, unchanged, partial, failed, refused).
# TYPE weir_config_reloads_total counter
weir_config_reloads_total{result="failed"} 0
weir_config_reloads_total{result="ok"} 1
weir_config_reloads_total{result="partial"} 0
weir_config_reloads_total{result="refused"} 2
weir_config_reloads_total{result="unchanged"} 0
`), "weir_config_generation", "weir_config_last_reload_successful", "weir_config_reloads_total"))
}

// freePort is a loopback TCP address nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestReloadSyslogPortInUse: syslog moved to a port something else
// holds cannot start there; it goes back to its previous port, which
// serves again, and the reload is partial.
func TestReloadSyslogPortInUse(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	old := freePort(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	body := func(addr, telemetry string) string {
		return fmt.Sprintf(`gateway: {id: gw-syslog}
data_dir: %s
telemetry_interval: %s
metrics: {listen: ""}
inputs:
  files: []
  syslog: {udp: {listen: ""}, tcp: {listen: "%s"}}
`, data, telemetry, addr)
	}
	file := writeConfig(t, body(old, "1h"))
	g, tg := reloadGateway(t, file, data)
	before := g.now().syslog

	res := reloadFile(t, g, file, body(taken.Addr().String(), "2h"))
	require.Equal(t, ReloadPartial, res.Result)
	require.Contains(t, res.Error, "inputs.syslog: inputs.syslog.tcp.listen "+taken.Addr().String())
	require.Contains(t, res.Error, "address already in use; it runs on its previous configuration")
	require.Equal(t, []string{"telemetry_interval: updated"}, res.Changed)
	require.Same(t, before, g.now().syslog, "the previous server, started again")
	require.Equal(t, old, g.now().syslog.Addr("tcp").String())

	c, err := net.Dial("tcp", old)
	require.NoError(t, err)
	msg := "<13>Nov 23 15:00:00 rtu-2 app[42]: after the rollback"
	_, err = fmt.Fprintf(c, "%d %s", len(msg), msg)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	tg.waitRecords(t, "the message to the previous port", func(r []spooled) bool { return len(find(r, "syslog", "after the rollback")) == 1 })

	// The next reload tries the part again: its running conf is the old.
	require.NoError(t, taken.Close())
	res = reloadFile(t, g, file, body(taken.Addr().String(), "2h"))
	require.Equal(t, ReloadOK, res.Result, res.Error)
	require.Equal(t, []string{"inputs.syslog: restarted"}, res.Changed)
	require.Equal(t, taken.Addr().String(), g.now().syslog.Addr("tcp").String())
	require.Equal(t, uint64(3), res.Generation)
}

// TestReloadModbusPerBus: a device's interval changed restarts its bus
// alone; the other bus polls on with its counters.
func TestReloadModbusPerBus(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		go func() { _ = modbustest.New(1, 10).ServeTCP(ctx, ln) }()
		addrs = append(addrs, ln.Addr().String())
	}
	data := filepath.Join(t.TempDir(), "data")
	body := func(interval string) string {
		return fmt.Sprintf(`gateway: {id: gw-modbus}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
inputs:
  files: []
  modbus:
    buses:
      - {name: p1, type: tcp, address: "%s"}
      - {name: p2, type: tcp, address: "%s"}
    devices:
      - {name: m1, bus: p1, unit: 1, interval: %s, registers: [{name: r, register: holding, address: 0}]}
      - {name: m2, bus: p2, unit: 1, interval: 50ms, registers: [{name: r, register: holding, address: 0}]}
`, data, addrs[0], addrs[1], interval)
	}
	file := writeConfig(t, body("200ms"))
	g, _ := reloadGateway(t, file, data)
	polls := func(bus string) uint64 {
		for _, b := range g.Sensors().Modbus.Buses {
			if b.Name == bus {
				return b.Counters.Polls
			}
		}
		return 0
	}
	require.Eventually(t, func() bool { return polls("p1") >= 2 && polls("p2") >= 5 }, 10*time.Second, 10*time.Millisecond)
	p2 := g.now().buses[1]
	before := polls("p2")

	res := reloadFile(t, g, file, body("50ms"))
	require.Equal(t, ReloadOK, res.Result, res.Error)
	require.Equal(t, []string{"inputs.modbus bus p1: restarted"}, res.Changed)
	require.Equal(t, []string{"inputs.modbus.devices[0].interval"}, res.Keys)
	require.Same(t, p2, g.now().buses[1], "the other bus runs on, untouched")
	require.GreaterOrEqual(t, polls("p2"), before, "its counters go on")
	st := g.Sensors().Modbus
	require.Len(t, st.Buses, 2)
	require.Equal(t, "50ms", st.Buses[0].Devices[0].Interval)
	require.Eventually(t, func() bool { return polls("p1") >= 10 }, 10*time.Second, 10*time.Millisecond, "the restarted bus polls")
	require.True(t, g.health.snapshot().OK || len(g.health.snapshot().Problems) == 0, "%v", g.health.snapshot().Problems)
}

// TestReloadRenewedCertificates: the uplink's files are compared by
// content. Renewed in place with their old times, the sender is
// restarted with them; a certificate without its key is refused.
func TestReloadRenewedCertificates(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, pki.InitCA(dir, "test", pki.Options{}))
	cert, key, err := pki.IssueGateway(dir, "gw-certs", pki.Options{})
	require.NoError(t, err)
	data := filepath.Join(t.TempDir(), "data")
	body := fmt.Sprintf(`gateway: {id: gw-certs}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
inputs: {files: []}
uplink:
  endpoints: [{address: "%s", server_name: localhost}]
  tls: {ca: %s, cert: %s, key: %s}
`, data, freePort(t), filepath.Join(dir, pki.CACertFile), cert, key)
	file := writeConfig(t, body)
	g, _ := reloadGateway(t, file, data)
	s1 := g.now().sender

	res := reloadFile(t, g, file, body)
	require.Equal(t, ReloadUnchanged, res.Result, res.Error)
	require.Same(t, s1, g.now().sender)

	times := func(p string) time.Time {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		return fi.ModTime()
	}
	ct, kt := times(cert), times(key)
	_, _, err = pki.IssueGateway(dir, "gw-certs", pki.Options{Force: true, Validity: 500 * 24 * time.Hour})
	require.NoError(t, err)
	require.NoError(t, os.Chtimes(cert, ct, ct))
	require.NoError(t, os.Chtimes(key, kt, kt))
	res = reloadFile(t, g, file, body)
	require.Equal(t, ReloadOK, res.Result, res.Error)
	require.Equal(t, []string{"uplink: restarted for its renewed certificate files"}, res.Changed)
	s2 := g.now().sender
	require.NotSame(t, s1, s2)
	require.WithinDuration(t, time.Now().Add(500*24*time.Hour), s2.Status().CertExpiry, time.Hour, "the new certificate is the one in use")

	// Half a renewal: another key beside the certificate.
	other := t.TempDir()
	require.NoError(t, pki.InitCA(other, "other", pki.Options{}))
	_, otherKey, err := pki.IssueGateway(other, "gw-certs", pki.Options{})
	require.NoError(t, err)
	b, err := os.ReadFile(otherKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(key, b, 0o600))
	res = reloadFile(t, g, file, body)
	require.Equal(t, ReloadRefused, res.Result)
	require.Contains(t, res.Error, "uplink.tls: ")
	require.Contains(t, res.Error, "private key does not match public key")
	require.Same(t, s2, g.now().sender)
}

// fakeReloader is a part that takes its section in place.
type fakeReloader struct {
	checkErr, applyErr error
	got                []console.Config
}

func (f *fakeReloader) CheckReload(console.Config) error { return f.checkErr }
func (f *fakeReloader) Reload(_ context.Context, c console.Config) error {
	if f.applyErr != nil {
		return f.applyErr
	}
	f.got = append(f.got, c)
	return nil
}

// TestReloadHook: a part that takes its section in place (Reloader) is
// checked before anything is applied and told after; its refusal refuses
// the reload, its failure makes it partial.
func TestReloadHook(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	logs := t.TempDir()
	body := func(idle string, files int) string {
		s := fmt.Sprintf(`gateway: {id: gw-hook}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
console: {idle_timeout: %s}
inputs:
  files:
`, data, idle)
		for i := range files {
			s += fmt.Sprintf("    - {name: f%d, paths: [%s/f%d.log]}\n", i, logs, i)
		}
		return s
	}
	file := writeConfig(t, body("5m", 1))
	g, _ := reloadGateway(t, file, data)
	f := &fakeReloader{checkErr: errors.New("windows: 0s is too short")}
	g.hooks = append(g.hooks, liveSection("console", func(c *Config) console.Config { return c.Console }, &g.now().cfg, f))

	res := reloadFile(t, g, file, body("1m", 2))
	require.Equal(t, ReloadRefused, res.Result)
	require.Equal(t, "console: windows: 0s is too short", res.Error)
	require.Len(t, g.now().tailers, 1, "nothing applied")

	f.checkErr, f.applyErr = nil, errors.New("engine busy")
	res = reloadFile(t, g, file, body("1m", 2))
	require.Equal(t, ReloadPartial, res.Result)
	require.Equal(t, "console: engine busy; it runs on its previous configuration", res.Error)
	require.Equal(t, []string{"inputs.files f1: started"}, res.Changed)
	require.Len(t, g.now().tailers, 2)

	f.applyErr = nil
	res = reloadFile(t, g, file, body("1m", 2))
	require.Equal(t, ReloadOK, res.Result, "tried again: its section differs from the one it runs on")
	require.Equal(t, []string{"console: updated"}, res.Changed)
	require.Len(t, f.got, 1)
	require.Equal(t, time.Minute, f.got[0].IdleTimeout)

	res = reloadFile(t, g, file, body("1m", 2))
	require.Equal(t, ReloadUnchanged, res.Result)
}

// TestReloadTelemetryInterval: the telemetry loop takes a new interval
// in place.
func TestReloadTelemetryInterval(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	body := func(every string) string {
		return fmt.Sprintf(`gateway: {id: gw-telemetry}
data_dir: %s
telemetry_interval: %s
metrics: {listen: ""}
inputs: {files: []}
`, data, every)
	}
	file := writeConfig(t, body("1h"))
	g, tg := reloadGateway(t, file, data)
	res := reloadFile(t, g, file, body("1s"))
	require.Equal(t, ReloadOK, res.Result, res.Error)
	tg.waitRecords(t, "a spool telemetry record", func(r []spooled) bool { return len(find(r, "weir:spool", "spool")) >= 2 })
}

func TestReloadBeforeAndAfterRun(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	file := writeConfig(t, fmt.Sprintf("gateway: {id: gw-early}\ndata_dir: %s\nmetrics: {listen: \"\"}\ninputs: {files: []}\n", data))
	g := newTestGateway(t, file)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := g.Reload(ctx, g.cfg, "early")
	require.Equal(t, ReloadRefused, res.Result)
	require.Contains(t, res.Error, "did not start in time")

	// A reload asked while the gateway starts waits for it.
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	got := make(chan ReloadResult, 1)
	go func() { got <- g.Reload(context.Background(), g.cfg, "while starting") }()
	go func() { done <- g.Run(rctx) }()
	select {
	case r := <-got:
		require.Equal(t, ReloadUnchanged, r.Result, r.Error)
	case <-time.After(20 * time.Second):
		t.Fatal("the reload did not wait for the start")
	}
	rcancel()
	require.NoError(t, <-done)
	res = g.Reload(context.Background(), g.cfg, "late")
	require.Equal(t, ReloadRefused, res.Result)
	require.Equal(t, "the gateway is not running", res.Error)
}

// TestReloadRules: a rules section changed on a reload is taken in place
// (the engine's Load, which keeps the windows of unchanged rules); a
// rule that does not compile refuses the whole reload.
func TestReloadRules(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	body := func(count, kind string) string {
		return fmt.Sprintf(`gateway: {id: gw-rules}
data_dir: %s
telemetry_interval: 1h
metrics: {listen: ""}
inputs: {files: []}
rules:
  rules:
    - {name: site_noise, match: {kind: [%s]}, count: %s, window: 1h}
`, data, kind, count)
	}
	file := writeConfig(t, body("3", "log"))
	g, _ := reloadGateway(t, file, data)
	count := func() string {
		for _, r := range g.rules.Status().Rules {
			if r.Name == "site_noise" {
				return r.Now
			}
		}
		return "absent"
	}
	require.Equal(t, "0/3 within 1h", count())

	res := reloadFile(t, g, file, body("7", "log"))
	require.Equal(t, ReloadOK, res.Result, res.Error)
	require.Equal(t, []string{"rules: updated"}, res.Changed)
	require.Equal(t, "0/7 within 1h", count())

	res = reloadFile(t, g, file, body("7", "nonsense"))
	require.Equal(t, ReloadRefused, res.Result)
	require.Contains(t, res.Error, "nonsense")
	require.Equal(t, "0/7 within 1h", count(), "the rules in force stay")
}
