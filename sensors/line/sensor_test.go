package line

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/sensors/serialport/serialtest"
)

// collector is an emit that keeps every batch.
type collector struct {
	mu      sync.Mutex
	evs     []event.Event
	batches []int
	more    chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) emit(_ context.Context, evs []event.Event) error {
	c.mu.Lock()
	c.evs = append(c.evs, evs...)
	c.batches = append(c.batches, len(evs))
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) wait(t *testing.T, n int) []event.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		c.mu.Lock()
		if len(c.evs) >= n {
			evs := append([]event.Event(nil), c.evs...)
			c.mu.Unlock()
			return evs
		}
		got := len(c.evs)
		c.mu.Unlock()
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("%d records after 5s, want %d", got, n)
		}
	}
}

func field(ev event.Event, key string) (event.Value, bool) {
	for _, f := range ev.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return event.Value{}, false
}

func str(ev event.Event, key string) string {
	v, _ := field(ev, key)
	return v.Str
}

func testConfig() Config {
	c := DefaultConfig()
	c.Name = "gps1"
	c.FlushInterval = 20 * time.Millisecond
	c.ReopenBackoff = 10 * time.Millisecond
	return c
}

// TestSerialPTY runs a sensor on one end of a socat pty pair and an
// instrument on the other, sending good, damaged, trailer-less and
// malformed sentences.
func TestSerialPTY(t *testing.T) {
	a, b := serialtest.PTYPair(t)
	cfg := testConfig()
	cfg.Port.Device = b
	s, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := os.OpenFile(a, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()

	good := readLines(t, "testdata/nmea.txt")
	bad := "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*46"
	sent := append(append([]string(nil), good...), bad, "$GPTXT,01,01,02,no checksum", "garbage line")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col := newCollector()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, col.emit) }()

	// The sensor may not have the port open yet: bytes written before it
	// opens are still queued in the pty.
	wire := strings.Join(sent, "\r\n") + "\r\n" + "$GPRMC,cut"
	if _, err := io.WriteString(inst, wire); err != nil {
		t.Fatal(err)
	}
	col.wait(t, len(sent))
	time.Sleep(50 * time.Millisecond) // let a wrong extra record show
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	evs := col.wait(t, len(sent)+1)
	if len(evs) != len(sent)+1 {
		t.Fatalf("%d records, want %d", len(evs), len(sent)+1)
	}
	for i, ev := range evs[:len(good)] {
		if ev.Message != good[i] || ev.Checksum != event.ChecksumOK || str(ev, "verdict") != "ok" ||
			ev.Source != "gps1" || ev.Kind != event.KindReading || ev.Severity != event.SevInfo {
			t.Errorf("record %d: %+v, want ok %q", i, ev, good[i])
		}
		if _, ok := field(ev, "f1"); !ok || str(ev, "talker") == "" {
			t.Errorf("record %d: no NMEA fields: %+v", i, ev.Fields)
		}
	}
	mm := evs[len(good)]
	if mm.Message != bad || mm.Checksum != event.ChecksumBad || str(mm, "verdict") != "mismatch" ||
		str(mm, "checksum_got") != "46" || str(mm, "checksum_want") != "47" ||
		mm.Priority != event.PriorityNormal || mm.Severity != event.SevWarning {
		t.Errorf("damaged sentence: %+v", mm)
	}
	if ev := evs[len(good)+1]; str(ev, "verdict") != "missing" || ev.Checksum != event.ChecksumBad ||
		str(ev, "sentence") != "TXT" || str(ev, "f4") != "no checksum" {
		t.Errorf("sentence without checksum: %+v", ev)
	}
	if ev := evs[len(good)+2]; str(ev, "verdict") != "malformed" || ev.Checksum != event.ChecksumBad {
		t.Errorf("garbage: %+v", ev)
	}
	if ev := evs[len(good)+3]; ev.Message != "$GPRMC,cut" || str(ev, "verdict") != "missing" {
		t.Errorf("partial line at shutdown: %+v", ev)
	} else if v, _ := field(ev, "partial"); !v.Bool() {
		t.Errorf("partial line at shutdown not flagged: %+v", ev.Fields)
	}
	got := s.Stats()
	want := Stats{Lines: uint64(len(sent) + 1), OK: uint64(len(good)), Mismatches: 1, Missing: 2, Malformed: 1, Partial: 1,
		Bytes: uint64(len(wire)), LastLine: got.LastLine}
	if got != want || got.LastLine < evs[0].Time {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

// TestSerialReopen: the port is missing at first, then appears; the sensor
// keeps trying and reads once it can.
func TestSerialReopen(t *testing.T) {
	a, b := serialtest.PTYPair(t)
	cfg := testConfig()
	cfg.Port.Device = b + ".later"
	s, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col := newCollector()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, col.emit) }()
	time.Sleep(50 * time.Millisecond)
	if err := os.Symlink(b, b+".later"); err != nil {
		t.Fatal(err)
	}
	inst, err := os.OpenFile(a, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if _, err := io.WriteString(inst, "$WIMWV,214.8,R,0.1,K,A*28\r\n"); err != nil {
		t.Fatal(err)
	}
	evs := col.wait(t, 1)
	if st := s.Stats(); st.OpenErrors == 0 || !st.Open || st.Reopens != 0 {
		t.Errorf("Stats() = %+v, want open errors before the first open, and open", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if str(evs[0], "verdict") != "ok" {
		t.Errorf("record after the port appeared: %+v", evs[0])
	}
}

// TestReader covers terminators split across reads, overlong lines, batch
// sizes, and the end of a reader.
func TestReader(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    func(*Config)
		chunks []string
		want   []string // message|verdict|flags
	}{
		{"crlf split", func(c *Config) { c.Checksum, c.Terminator = ChecksumCRC16CCITT, TermCRLF },
			[]string{"123456789*29B1\r", "\n12\r3*0000\r\n", "tail"},
			[]string{"123456789*29B1|ok|", "12\r3*0000|mismatch|", "tail|missing|partial"}},
		{"cr with lf after", func(c *Config) { c.Checksum, c.Terminator = ChecksumCRC32, TermCR },
			[]string{"123456789,CBF43926\r\n", "123456789,cbf43926\r"},
			[]string{"123456789,CBF43926|ok|", "123456789,cbf43926|ok|"}},
		{"lf blank lines", func(c *Config) { c.Checksum = ChecksumNone },
			[]string{"\n\na\r\n", "b\n"},
			[]string{"a|none|", "b|none|"}},
		{"overlong", func(c *Config) { c.Checksum, c.MaxLineLength = ChecksumNone, 8 },
			[]string{"0123456789abcdefXY\nshort\n"},
			[]string{"01234567|malformed|overlong1", "89abcdef|malformed|overlong2", "XY|malformed|overlong3", "short|none|"}},
		// A line of exactly max_line_length ended by "\r\n" in lf mode is
		// one line, not an overlong piece and an empty one (FuzzSplit).
		{"lf line of max length with crlf", func(c *Config) { c.Checksum, c.MaxLineLength = ChecksumNone, 8 },
			[]string{"01234567\r", "\n0123456\r\r\nab\rc\n"},
			[]string{"01234567|none|", "0123456\r|none|", "ab\rc|none|"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Separator = ","
			if c.name == "crlf split" {
				cfg.Separator = "*"
			}
			c.cfg(&cfg)
			pr, pw := io.Pipe()
			s, err := NewFromReader(cfg, pr, nil)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for _, ch := range c.chunks {
					pw.Write([]byte(ch))
				}
				pw.Close()
			}()
			col := newCollector()
			if err := s.Run(context.Background(), col.emit); err != nil {
				t.Fatalf("Run: %v", err)
			}
			var got []string
			for _, ev := range col.evs {
				flags := ""
				if v, ok := field(ev, "overlong"); ok && v.Bool() {
					p, _ := field(ev, "part")
					flags = "overlong" + string(rune('0'+p.Num))
				}
				if v, ok := field(ev, "partial"); ok && v.Bool() {
					flags += "partial"
				}
				got = append(got, ev.Message+"|"+str(ev, "verdict")+"|"+flags)
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestBatchSize(t *testing.T) {
	cfg := testConfig()
	cfg.Checksum, cfg.BatchSize = ChecksumNone, 3
	s, err := NewFromReader(cfg, io.NopCloser(strings.NewReader(strings.Repeat("x\n", 10))), nil)
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	if err := s.Run(context.Background(), col.emit); err != nil {
		t.Fatal(err)
	}
	if len(col.evs) != 10 {
		t.Fatalf("%d records, want 10", len(col.evs))
	}
	for _, n := range col.batches {
		if n > 3 {
			t.Fatalf("batches %v: one larger than batch_size 3", col.batches)
		}
	}
	if st := s.Stats(); st.Lines != 10 || st.None != 10 {
		t.Errorf("Stats() = %+v", st)
	}
}

// fixedClock is a PTP clock that always reads the same, locked.
type fixedClock struct {
	t time.Time
	q event.Quality
}

func (c fixedClock) Now() (time.Time, event.Quality) { return c.t, c.q }

func TestRecordsCarryClockQuality(t *testing.T) {
	cfg := testConfig()
	cfg.Checksum = ChecksumNone
	s, err := NewFromReader(cfg, io.NopCloser(strings.NewReader("a\nb\npartial")), nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := fixedClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		q: event.Quality{Source: event.TimePTP, State: event.ClockLocked, ErrorBound: 1234}}
	s.UseClock(clk)
	col := newCollector()
	if err := s.Run(context.Background(), col.emit); err != nil {
		t.Fatal(err)
	}
	if len(col.evs) != 3 {
		t.Fatalf("%d records, want 3", len(col.evs))
	}
	for _, ev := range col.evs {
		if ev.Time != clk.t.UnixNano() || ev.Quality != clk.q {
			t.Errorf("record %q stamped %d %+v, want the clock's %d %+v", ev.Message, ev.Time, ev.Quality, clk.t.UnixNano(), clk.q)
		}
	}
}

// BenchmarkRecords measures the splitter and record building per line:
// what a sensor costs besides the port.
func BenchmarkRecords(b *testing.B) {
	cfg := testConfig()
	s := newSensor(cfg, nil, nil)
	in := []byte(strings.Repeat("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n", 16))
	st := &lineState{}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var evs []event.Event
	for b.Loop() {
		evs = s.take(st, in, evs[:0], stamp{})
	}
	if len(evs) != 16 || str(evs[0], "verdict") != "ok" {
		b.Fatalf("%d records", len(evs))
	}
}

// TestReopenAfterReadError: a port that fails mid-line is closed and
// reopened; the cut line is recorded as partial, not glued to the bytes
// after the reopen.
func TestReopenAfterReadError(t *testing.T) {
	cfg := testConfig()
	cfg.Checksum = ChecksumNone
	inputs := []string{"one\ntw", "o\nthree\n"}
	opens := 0
	s := newSensor(cfg, func() (io.ReadCloser, error) {
		if opens == len(inputs) {
			return nil, errNoReopen
		}
		pr, pw := io.Pipe()
		in := inputs[opens]
		opens++
		go func() {
			pw.Write([]byte(in))
			pw.CloseWithError(io.ErrUnexpectedEOF)
		}()
		return pr, nil
	}, nil)
	col := newCollector()
	if err := s.Run(context.Background(), col.emit); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range col.evs {
		got = append(got, ev.Message)
	}
	if strings.Join(got, "|") != "one|tw|o|three" {
		t.Errorf("records %q, want one, tw (partial), o, three", got)
	}
	if v, _ := field(col.evs[1], "partial"); !v.Bool() {
		t.Errorf("cut line not flagged partial: %+v", col.evs[1].Fields)
	}
	if st := s.Stats(); st.Reopens != 1 || st.Partial != 1 || st.Lines != 4 {
		t.Errorf("Stats() = %+v", st)
	}
}
