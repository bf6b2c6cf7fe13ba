package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/seal"
	"github.com/weirgw/weir/uplink/collector"
	"github.com/weirgw/weir/uplink/sender"
)

// sinkLine is what the tamper cases need of a sink line.
type sinkLine struct {
	raw     []byte
	Seq     uint64 `json:"seq"`
	Source  string `json:"source"`
	Message string `json:"message"`
	Gateway string `json:"gateway"`
	Record  []byte `json:"record_base64"`
}

func readSealSink(t *testing.T, path string) []sinkLine {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []sinkLine
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var s sinkLine
		require.NoError(t, json.Unmarshal(l, &s))
		s.raw = l
		out = append(out, s)
	}
	return out
}

func writeSink(t *testing.T, path string, lines []sinkLine) {
	t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l.raw)
		b.WriteByte('\n')
	}
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
}

type verifyOut struct {
	Gateway string        `json:"gateway"`
	Records uint64        `json:"records"`
	Proven  uint64        `json:"proven"`
	Seals   uint64        `json:"seals_checked"`
	Failure *seal.Failure `json:"failure"`
}

func (e *e2e) verify(sink string, extra ...string) (verifyOut, bool) {
	e.t.Helper()
	args := append([]string{"verify", "--sink", sink, "--seal-keys", filepath.Join(e.pki, "seal-keys"), "--json"}, extra...)
	out, err := exec.Command(e.coll, args...).Output()
	var rs []verifyOut
	require.NoError(e.t, json.Unmarshal(out, &rs), "verify said: %s", out)
	require.Len(e.t, rs, 1)
	return rs[0], err == nil
}

// TestSealsEndToEnd: a gateway sealing every 2 s through an outage and a
// reconnect; weir-collector verify proves every record; a proof of one
// record checks with weir verify-proof and nothing but the gateway's key;
// and each way of tampering with the sink fails at its first sequence.
func TestSealsEndToEnd(t *testing.T) {
	e := setup(t)
	cfg, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg = append(cfg, fmt.Sprintf("seal_interval: 2s\nseal_key_dir: %s/gw-e2e.seal\n", e.pki)...)
	require.NoError(t, os.WriteFile(e.config, cfg, 0o600))

	stopColl := e.startCollector()
	e.appendLines(0, 200)
	stopGw := e.startGateway()
	e.waitDelivered(200)
	time.Sleep(2500 * time.Millisecond) // a seal before the outage
	stopColl()                          // the outage: seals go on in the spool
	for i := range 3 {
		e.appendLines(200+100*i, 100)
		time.Sleep(2500 * time.Millisecond)
	}
	stopColl = e.startCollector()
	e.waitDelivered(500)
	time.Sleep(4500 * time.Millisecond) // a seal over the last records, delivered
	var st struct {
		Seal struct {
			Epoch uint64 `json:"epoch"`
		} `json:"seal"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.run(e.weir, "status", "--json", "--config", e.config)), &st))
	stopGw()
	stopColl()
	clog, err := os.ReadFile(filepath.Join(e.dir, "collector.log"))
	require.NoError(t, err)
	require.NotContains(t, string(clog), "tamper-evident log fails", "the live check raised a false alarm")

	// Verify: every record proven, no failure.
	got, ok := e.verify(e.sink)
	require.True(t, ok, "verify failed on the untouched sink: %+v", got)
	require.Nil(t, got.Failure)
	t.Logf("verify: %+v", got)
	require.GreaterOrEqual(t, got.Seals, uint64(4), "seals every 2s through the outage")
	require.Equal(t, got.Records-1, got.Proven, "every record but the last seal's own is proven")
	t.Logf("untouched sink: %+v, the gateway's next epoch %d", got, st.Seal.Epoch)

	lines := readSealSink(t, e.sink)
	var logs, seals []int // indexes of log lines and seal lines
	for i, l := range lines {
		switch l.Source {
		case "app":
			logs = append(logs, i)
		case seal.Source:
			seals = append(seals, i)
		}
	}
	require.Len(t, logs, 500)

	// A proof of line 250, checked on a "machine" holding only the proof
	// and the key.
	target := lines[logs[250]]
	proof, err := exec.Command(e.coll, "prove", "--sink", e.sink, "--seal-keys", filepath.Join(e.pki, "seal-keys"),
		"--gateway", "gw-e2e", "--seq", fmt.Sprint(target.Seq)).Output()
	require.NoError(t, err)
	bare := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bare, "proof.json"), proof, 0o600))
	pub, err := os.ReadFile(filepath.Join(e.pki, "seal-keys", "gw-e2e.pub"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(bare, "gw-e2e.pub"), pub, 0o600))
	vp := exec.Command(e.weir, "verify-proof", "proof.json", "--key-file", "gw-e2e.pub")
	vp.Dir, vp.Env = bare, []string{}
	out, err := vp.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), fmt.Sprintf("proven: record %d of gateway gw-e2e", target.Seq))
	require.Contains(t, string(out), "line=250")
	var p seal.Proof
	require.NoError(t, json.Unmarshal(proof, &p))
	p.Record = bytes.Replace(p.Record, []byte("line=250"), []byte("line=251"), 1)
	forgedProof, _ := json.Marshal(p)
	require.NoError(t, os.WriteFile(filepath.Join(bare, "forged.json"), forgedProof, 0o600))
	vp = exec.Command(e.weir, "verify-proof", "forged.json", "--key-file", "gw-e2e.pub")
	vp.Dir = bare
	out, err = vp.CombinedOutput()
	require.Error(t, err, "a changed record passed: %s", out)
	require.Contains(t, string(out), "NOT PROVEN")

	// The thief of the gateway holds its current seal key.
	thiefKeys, err := seal.OpenKeys(filepath.Join(e.pki, "gw-e2e.seal"), 0, nil, false)
	require.NoError(t, err)

	type tamper struct {
		name  string
		do    func([]sinkLine) []sinkLine
		seq   uint64
		extra []string
	}
	at := func(i int) uint64 { return lines[i].Seq }
	clone := func(ls []sinkLine) []sinkLine { return append([]sinkLine(nil), ls...) }
	edit := func(l sinkLine, from, to string) sinkLine {
		l.raw = bytes.Replace(l.raw, []byte(from), []byte(to), 1)
		return l
	}
	cases := []tamper{
		{"a byte changed in a record", func(ls []sinkLine) []sinkLine {
			i := logs[120]
			ls[i] = edit(ls[i], "line=120", "line=920")
			return ls
		}, at(logs[120]), nil},
		{"a record deleted", func(ls []sinkLine) []sinkLine {
			i := logs[300]
			return append(ls[:i:i], ls[i+1:]...)
		}, at(logs[300]), nil},
		{"a record inserted", func(ls []sinkLine) []sinkLine {
			i := logs[77]
			ins := edit(ls[i], "line=77", "line=77 valve opened")
			return append(ls[:i+1:i+1], append([]sinkLine{ins}, ls[i+1:]...)...)
		}, at(logs[77]), nil},
		{"two records swapped", func(ls []sinkLine) []sinkLine {
			i, j := logs[40], logs[41]
			a, b := ls[i], ls[j]
			ls[i] = edit(a, fmt.Sprintf(`"seq":%d`, a.Seq), fmt.Sprintf(`"seq":%d`, b.Seq))
			ls[j] = edit(b, fmt.Sprintf(`"seq":%d`, b.Seq), fmt.Sprintf(`"seq":%d`, a.Seq))
			return ls
		}, at(logs[40]), nil},
		{"the tail truncated", func(ls []sinkLine) []sinkLine {
			return ls[:logs[450]]
		}, at(logs[450]), []string{"--gateway", "gw-e2e", "--expect-epoch", fmt.Sprint(st.Seal.Epoch)}},
		{"a seal replayed from an earlier epoch", func(ls []sinkLine) []sinkLine {
			late, early := ls[seals[3]], ls[seals[1]]
			line, err := collector.SinkLine("gw-e2e", late.Seq, early.Record)
			require.NoError(t, err)
			ls[seals[3]].raw = line
			return ls
		}, at(seals[3]), nil},
		{"a seal of an earlier epoch forged with the current key", func(ls []sinkLine) []sinkLine {
			victim := ls[seals[2]]
			var ev event.Event
			require.NoError(t, ev.UnmarshalBinary(victim.Record))
			sb, ok := seal.FromEvent(&ev)
			require.True(t, ok)
			h, _, _, err := seal.Parse(sb)
			require.NoError(t, err)
			// Hide a record: declare it evicted, drop it.
			hidden := lines[logs[30]]
			h.Evicted = append(h.Evicted, seal.Declared{Seq: hidden.Seq})
			forged, err := signAs(&h, thiefKeys)
			require.NoError(t, err)
			fe := seal.Event(&h, forged)
			fe.Gateway, fe.Host, fe.Time = ev.Gateway, ev.Host, ev.Time
			rec, err := fe.MarshalBinary()
			require.NoError(t, err)
			line, err := collector.SinkLine("gw-e2e", victim.Seq, rec)
			require.NoError(t, err)
			ls[seals[2]].raw = line
			i := logs[30]
			return append(ls[:i:i], ls[i+1:]...)
		}, at(seals[2]), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sink.jsonl")
			writeSink(t, path, c.do(clone(lines)))
			got, ok := e.verify(path, c.extra...)
			require.False(t, ok, "tampering not detected: %+v", got)
			require.NotNil(t, got.Failure)
			t.Logf("%s: %v", c.name, got.Failure)
			require.Equal(t, c.seq, got.Failure.Seq, "first failing sequence: %v", got.Failure)
			require.Equal(t, "gw-e2e", got.Failure.Gateway)
		})
	}
	// The control: the untouched sink, written out the same way.
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	writeSink(t, path, lines)
	_, ok = e.verify(path, "--gateway", "gw-e2e", "--expect-epoch", fmt.Sprint(st.Seal.Epoch))
	require.True(t, ok, "false alarm on the control")
}

// signAs is the thief's forgery: the head, of whatever epoch it claims,
// signed with the key the thief holds.
func signAs(h *seal.Head, k *seal.Keys) ([]byte, error) {
	st, err := h.Statement()
	if err != nil {
		return nil, err
	}
	return append(st, k.Sign(st)...), nil
}

func TestStatusShowsTheSeal(t *testing.T) {
	var b bytes.Buffer
	st := &gateway.Status{Gateway: "gw", Uplink: sender.Status{State: "disabled"},
		Seal: &gateway.SealStatus{Epoch: 8, LastSeq: 1042, LogFirst: 1000, Size: 42, Root: "61551189a51085d0ffff", Made: 3}}
	printStatus(&b, st, time.Now())
	require.Contains(t, b.String(), "seal     epoch 8 next; last seal record 1042 over 42 records from 1000, root 61551189a51085d0; 3 made since start")
}
