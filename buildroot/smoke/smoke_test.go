package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// The count must see a gap and a repeat: the checks the power-cut loop
// rests on.
func TestHeldCountsLostAndDuplicated(t *testing.T) {
	rec := func(seq uint64, ts int64) sinkRecord {
		return sinkRecord{Seq: seq, Gateway: "gw", TimeNs: ts, Source: "modbus:flow-1", Message: "reading"}
	}
	for _, c := range []struct {
		name          string
		recs          []sinkRecord
		missing       []uint64
		duplicated    int
		distinct, max int
	}{
		{"every record once", []sinkRecord{rec(10, 1), rec(11, 2), rec(12, 3)}, nil, 0, 3, 12},
		{"a gap", []sinkRecord{rec(10, 1), rec(12, 3)}, []uint64{11}, 0, 2, 12},
		{"a sequence twice", []sinkRecord{rec(10, 1), rec(11, 2), rec(11, 2), rec(12, 3)}, nil, 1, 3, 12},
		{"a reading under two sequences", []sinkRecord{rec(10, 1), rec(11, 2), rec(12, 2)}, nil, 1, 3, 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var buf bytes.Buffer
			for _, r := range c.recs {
				buf.WriteString(`{"seq":` + strconv.FormatUint(r.Seq, 10) + `,"gateway":"gw","time_ns":` + strconv.FormatInt(r.TimeNs, 10) +
					`,"source":"modbus:flow-1","kind":"reading","message":"reading"}` + "\n")
			}
			// Another gateway's records and a torn last line are not counted.
			buf.WriteString(`{"seq":11,"gateway":"other","time_ns":5,"source":"x","message":"y"}` + "\n" + `{"seq":13,"gatew`)
			path := filepath.Join(dir, "sink.jsonl")
			require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
			h, err := readSink(path, "gw")
			require.NoError(t, err)
			require.Equal(t, c.missing, h.missing(10, 12))
			require.Equal(t, c.duplicated, h.duplicated())
			require.Equal(t, c.distinct, h.distinct())
			require.EqualValues(t, c.max, h.max)
			require.EqualValues(t, 10, h.min)
		})
	}
}

func TestParseConsoleOutput(t *testing.T) {
	// As the console folds them at 80 columns.
	logs := "time=2026-12-06T23:11:52Z level=INFO msg=\"spool opened\" dir=/var/lib/weir/spool\n" +
		"  profile=small max_bytes=100663296 next_seq=1796598710716038\n" +
		"  acked_up_to=1796598710716036 records=1 bytes=227 disk_free=202375168\n" +
		"time=2026-12-06T23:11:53Z level=INFO msg=\"spool opened\" next_seq=5 acked_up_to=4 records=0\n"
	o, ok := parseOpened(logs)
	require.True(t, ok)
	require.Equal(t, opened{next: 1796598710716038, acked: 1796598710716036, records: 1}, o, "the first line: this boot's open")
	_, ok = parseOpened("level=INFO msg=\"gateway running\"\n")
	require.False(t, ok)

	status := "spool    backlog 2 records (414 B, 0% of max), oldest 129ms; acked up to\n" +
		"  1796598532419207, next 1796598532419210; 8.0 KiB on disk\n" +
		"uplink   connected tls://10.0.2.2:46481 for 3s; sent 1, acked 1; last ack\n"
	sp, ok := parseStatusSpool(status)
	require.True(t, ok)
	require.Equal(t, spoolStatus{backlog: 2, acked: 1796598532419207, next: 1796598532419210}, sp)
	up := statusUplink.FindStringSubmatch(collapse(status))
	require.Equal(t, []string{"connected", "1", "1"}, up[1:])

	sensors := "bus rs485-1 (rtu /dev/ttyS0): open\n  DEVICE  UNIT  STATE  LAST POLL  RTT     POLLS\n  flow-1  7     ok     39ms ago   70.4ms  14\n"
	require.True(t, polled.MatchString(collapse(sensors)))
	require.False(t, polled.MatchString(collapse("bus rs485-1 (rtu /dev/ttyS0): down\n  flow-1  7     waiting  never      -    0\n")))
}

// The site archive is a newc cpio archive the system's cpio reads, with
// the modes and owners the board needs.
func TestSiteArchive(t *testing.T) {
	gz, err := siteArchive("gateway: {id: x}\n", map[string][]byte{"ca.pem": []byte("CA"), "gateway-x-key.pem": []byte("KEY!!")})
	require.NoError(t, err)
	raw := gunzip(t, gz)
	// Every header starts on a 4-byte boundary with the newc magic.
	require.Equal(t, "070701", string(raw[:6]))
	require.Zero(t, len(raw)%4)
	require.Contains(t, string(raw), "TRAILER!!!")
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio is not installed (scripts/deps.sh image installs it): the archive is not listed by it")
	}
	cmd := exec.Command("cpio", "-itv", "--quiet", "--numeric-uid-gid")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, want := range []string{
		"drwxr-x---   2 0        999             0 ",
		"-rw-r-----   1 0        999            17 ",
		"-rw-r-----   1 0        999             5 ",
		"etc/weir/pki/gateway-x-key.pem",
	} {
		require.Contains(t, string(out), want)
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	cmd := exec.Command("gzip", "-dc")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	require.NoError(t, err)
	return out
}
