package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway"
)

// wireTap relays TCP from its address to target and keeps every byte
// that crossed, both ways.
type wireTap struct {
	ln  net.Listener
	mu  sync.Mutex
	buf bytes.Buffer
}

func newWireTap(t *testing.T, target string) *wireTap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	w := &wireTap{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				cp := func(dst, src net.Conn) {
					_, _ = io.Copy(io.MultiWriter(dst, w), src)
					if tc, ok := dst.(*net.TCPConn); ok {
						_ = tc.CloseWrite()
					}
					done <- struct{}{}
				}
				go cp(u, c)
				go cp(c, u)
				<-done
				<-done
			}()
		}
	}()
	return w
}

func (w *wireTap) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *wireTap) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

// procSinkRecord is a record as the collector's sink holds it.
type procSinkRecord struct {
	Seq     uint64         `json:"seq"`
	Source  string         `json:"source"`
	Kind    string         `json:"kind"`
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields"`
}

func readSink(t *testing.T, path string) []procSinkRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []procSinkRecord
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r procSinkRecord
		require.NoError(t, json.Unmarshal(line, &r))
		if r.Kind == "log" {
			out = append(out, r)
		}
	}
	return out
}

func processorStatus(t *testing.T, weir, cfg string) map[string][]uint64 {
	t.Helper()
	out, err := exec.Command(weir, "status", "--json", "--config", cfg).Output()
	require.NoError(t, err)
	var st gateway.Status
	require.NoError(t, json.Unmarshal(out, &st))
	m := map[string][]uint64{}
	for _, c := range st.Processors {
		for _, s := range c.Steps {
			m[fmt.Sprintf("%s[%d].%s", c.Chain, s.Index, s.Type)] = []uint64{s.In, s.Out, s.Dropped, s.Changed}
		}
	}
	return m
}

// TestProcessorsEndToEnd: a noisy file and a noisy syslog sender, each
// input with a drop rule, a global redact rule. The collector receives
// exactly the records expected; the passwords appear in neither the sink,
// the spool's files nor the bytes on the wire (the uplink is TLS: that
// grep proves nothing leaked beside it, the sink and the spool prove
// the redaction); a gateway killed with SIGKILL after a run of dropped
// lines resumes after them: they are not read again.
func TestProcessorsEndToEnd(t *testing.T) {
	e := setup(t)
	stopColl := e.startCollector()
	tap := newWireTap(t, e.addr)
	syslogAddr := freeAddr(t)
	b, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.Replace(string(b), "    - address: "+e.addr, "    - address: "+tap.ln.Addr().String(), 1)
	cfg = strings.Replace(cfg, "uplink:\n", fmt.Sprintf(`  syslog:
    udp: {listen: ""}
    tcp: {listen: "%s"}
processors:
  inputs:
    files.app:
      - drop: {match: {message: {contains: [DEBUG]}}}
    syslog:
      - drop: {match: {message: {contains: ["heartbeat ok"]}}}
  global:
    - redact: {regex: 'password=(\S+)'}
uplink:
`, syslogAddr), 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o600))

	var want []string
	line, fileKept := 0, uint64(0)
	writeFile := func(n int, debugTail int) {
		f, err := os.OpenFile(e.logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		for i := 0; i < n; i++ {
			if i%3 == 0 || i >= n-debugTail {
				fmt.Fprintf(f, "DEBUG poll loop line=%d\n", line)
			} else {
				fmt.Fprintf(f, "login user=op%d password=S3cr3t-%d line=%d\n", line, line, line)
				want = append(want, fmt.Sprintf("login user=op%d password=*** line=%d", line, line))
				fileKept++
			}
			line++
		}
		require.NoError(t, f.Close())
	}
	sendSyslog := func(from, n int) {
		// The admin socket answers before the inputs' ports are bound.
		var c net.Conn
		require.Eventually(t, func() bool {
			var err error
			c, err = net.Dial("tcp", syslogAddr)
			return err == nil
		}, 10*time.Second, 20*time.Millisecond)
		defer c.Close()
		for i := from; i < from+n; i++ {
			msg := fmt.Sprintf("heartbeat ok %d", i)
			if i%2 == 0 {
				msg = fmt.Sprintf("vpn session for admin password=Sys-%d id=%d", i, i)
				want = append(want, fmt.Sprintf("vpn session for admin password=*** id=%d", i))
			}
			fmt.Fprintf(c, "<38>1 2026-12-07T00:00:00Z plc-7 vpnd - - - %s\n", msg)
		}
	}

	// First run: lines and syslog; then, once they are delivered, a run
	// of lines every one of which is dropped (a batch with nothing to
	// spool but its position).
	writeFile(260, 0)
	// Started by hand, to be killed with SIGKILL.
	gw := exec.Command(e.weir, "run", "--config", e.config)
	gwLog, err := os.Create(filepath.Join(e.dir, "gateway.log"))
	require.NoError(t, err)
	defer gwLog.Close()
	gw.Stdout, gw.Stderr = gwLog, gwLog
	require.NoError(t, gw.Start())
	t.Cleanup(func() { _ = gw.Process.Kill(); _ = gw.Wait() })
	sock := filepath.Join(e.dir, "data", "weir.sock")
	require.Eventually(t, func() bool { _, err := os.Stat(sock); return err == nil }, 10*time.Second, 20*time.Millisecond)
	sendSyslog(0, 100)
	sort.Strings(want)
	waitSink := func() []string {
		var got []string
		require.Eventually(t, func() bool {
			got = got[:0]
			for _, r := range readSink(t, e.sink) {
				got = append(got, r.Message)
			}
			return len(got) >= len(want)
		}, 30*time.Second, 50*time.Millisecond, "want %d records in the sink", len(want))
		sort.Strings(got)
		return got
	}
	require.Equal(t, want, waitSink())
	writeFile(40, 40)
	// Every line was read (the 40 dropped at the end too) before the kill.
	require.Eventually(t, func() bool {
		st := processorStatus(t, e.weir, e.config)
		return st["files.app[0].drop"] != nil && st["files.app[0].drop"][0] == 300
	}, 20*time.Second, 50*time.Millisecond)
	st := processorStatus(t, e.weir, e.config)
	require.Equal(t, uint64(173), fileKept)
	require.Equal(t, []uint64{300, 173, 127, 0}, st["files.app[0].drop"], "in, out, dropped, changed: a DEBUG line every third, and 40 at the end")
	require.Equal(t, []uint64{100, 50, 50, 0}, st["syslog[0].drop"])
	require.Equal(t, []uint64{224, 224, 0, 223}, st["global[0].redact"], "every record kept had a password; the clock's record at start passed too")

	// SIGKILL: no shutdown, nothing flushed beyond what was committed.
	require.NoError(t, gw.Process.Signal(syscall.SIGKILL))
	require.Error(t, gw.Wait())

	// Second run, the collector down: what is kept waits in the spool,
	// where the grep below looks for it.
	stopColl()
	writeFile(30, 0)
	e.start("gateway2", e.weir, "run", "--config", e.config)
	// The killed gateway left its socket: wait for the new one to answer.
	require.Eventually(t, func() bool {
		return exec.Command(e.weir, "status", "--config", e.config).Run() == nil
	}, 10*time.Second, 50*time.Millisecond)
	sendSyslog(100, 10)
	require.Eventually(t, func() bool {
		st := processorStatus(t, e.weir, e.config)
		return st["files.app[0].drop"] != nil && st["files.app[0].drop"][0] >= 30 && st["syslog[0].drop"] != nil && st["syslog[0].drop"][0] >= 10
	}, 20*time.Second, 50*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // a line read again would be counted now
	st = processorStatus(t, e.weir, e.config)
	require.Equal(t, []uint64{30, 20, 10, 0}, st["files.app[0].drop"], "after the kill, only the 30 new lines: none of the 40 dropped before it again")
	var spool []byte
	require.NoError(t, filepath.Walk(filepath.Join(e.dir, "data", "spool"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		spool = append(spool, b...)
		return err
	}))
	require.True(t, bytes.Contains(spool, []byte("login user=op301 ")), "the spool's files hold the records waiting, in clear")
	stopColl = e.startCollector()
	sort.Strings(want)
	require.Equal(t, want, waitSink(), "everything kept, nothing twice")

	// The passwords are nowhere: not in the sink, not in the spool's
	// files, not on the wire.
	sink, err := os.ReadFile(e.sink)
	require.NoError(t, err)
	require.True(t, bytes.Contains(sink, []byte("login user=op301 ")))
	wire := tap.bytes()
	require.NotEmpty(t, wire)
	for _, secret := range []string{"S3cr3t-", "Sys-"} {
		require.False(t, bytes.Contains(sink, []byte(secret)), "%s in the sink", secret)
		require.False(t, bytes.Contains(spool, []byte(secret)), "%s in the spool", secret)
		require.False(t, bytes.Contains(wire, []byte(secret)), "%s on the wire", secret)
	}
	t.Logf("sink %d bytes, spool files %d bytes, wire %d bytes", len(sink), len(spool), len(wire))
	stopColl()
}
