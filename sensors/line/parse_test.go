package line

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"testing"
	"time"
)

// refCRC16 is a bit-at-a-time CRC-16 with polynomial 0x1021, MSB first, no
// reflection and no final XOR: written from the definition, independent of
// the table-driven code under test.
func refCRC16(init uint16, b []byte) uint16 {
	crc := init
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			bit := (x>>uint(i))&1 == 1
			top := crc&0x8000 != 0
			crc <<= 1
			if top != bit {
				crc ^= 0x1021
			}
		}
	}
	return crc
}

// refXOR computes the NMEA checksum of a whole sentence from its text.
func refXOR(sentence string) byte {
	body := sentence[1:strings.LastIndex(sentence, "*")]
	var x byte
	for i := 0; i < len(body); i++ {
		x ^= body[i]
	}
	return x
}

func readLines(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCheckValues(t *testing.T) {
	check := []byte("123456789")
	for _, c := range []struct {
		name      string
		got, want uint32
	}{
		{"CRC-16/CCITT-FALSE", uint32(crc16(0xFFFF, check)), 0x29B1},
		{"CRC-16/XMODEM", uint32(crc16(0, check)), 0x31C3},
		{"reference CCITT-FALSE", uint32(refCRC16(0xFFFF, check)), 0x29B1},
		{"reference XMODEM", uint32(refCRC16(0, check)), 0x31C3},
		{"CRC-32", crc32.ChecksumIEEE(check), 0xCBF43926},
	} {
		if c.got != c.want {
			t.Errorf("%s check value: got %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestParseNMEACaptured(t *testing.T) {
	p := Parser{Kind: ChecksumNMEA}
	for _, s := range readLines(t, "testdata/nmea.txt") {
		r := p.Parse([]byte(s))
		want := uint32(refXOR(s))
		if r.Verdict != VerdictOK || r.Got != want || r.Want != want {
			t.Errorf("%s: verdict %v got %02X want %02X, expected ok %02X", s, r.Verdict, r.Got, r.Want, want)
		}
		// Any one damaged body byte is a mismatch that names both sums.
		b := []byte(s)
		b[len(b)/2] ^= 0x04
		if r := p.Parse(b); r.Verdict != VerdictMismatch || r.Want == r.Got {
			t.Errorf("%s with a flipped bit: verdict %v (got %02X want %02X), expected mismatch", b, r.Verdict, r.Got, r.Want)
		}
	}
}

func TestParseTable(t *testing.T) {
	nmea := Parser{Kind: ChecksumNMEA}
	for _, c := range []struct {
		name      string
		p         Parser
		line      string
		verdict   Verdict
		payload   string
		got, want uint32
	}{
		{"nmea ok", nmea, "$GPGLL,4916.45,N,12311.12,W,225444,A,*1D", VerdictOK, "GPGLL,4916.45,N,12311.12,W,225444,A,", 0x1D, 0x1D},
		{"nmea lower-case hex", nmea, "$GPGLL,4916.45,N,12311.12,W,225444,A,*1d", VerdictOK, "GPGLL,4916.45,N,12311.12,W,225444,A,", 0x1D, 0x1D},
		{"nmea ais", nmea, "!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5C", VerdictOK, "AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0", 0x5C, 0x5C},
		{"nmea mismatch", nmea, "$WIMWV,214.8,R,0.1,K,A*29", VerdictMismatch, "WIMWV,214.8,R,0.1,K,A", 0x29, 0x28},
		{"nmea missing", nmea, "$WIMWV,214.8,R,0.1,K,A", VerdictMissing, "WIMWV,214.8,R,0.1,K,A", 0, 0},
		{"nmea no start", nmea, "WIMWV,214.8,R,0.1,K,A*28", VerdictMalformed, "WIMWV,214.8,R,0.1,K,A*28", 0, 0},
		{"nmea one digit", nmea, "$WIMWV,214.8,R,0.1,K,A*2", VerdictMalformed, "WIMWV,214.8,R,0.1,K,A", 0, 0},
		{"nmea three digits", nmea, "$WIMWV,214.8,R,0.1,K,A*280", VerdictMalformed, "WIMWV,214.8,R,0.1,K,A", 0, 0},
		{"nmea non-hex", nmea, "$WIMWV,214.8,R,0.1,K,A*2G", VerdictMalformed, "WIMWV,214.8,R,0.1,K,A", 0, 0},
		{"nmea empty", nmea, "", VerdictMalformed, "", 0, 0},
		{"nmea empty body", nmea, "$*00", VerdictOK, "", 0, 0},
		{"crc16 ok", Parser{Kind: ChecksumCRC16CCITT, Sep: '*'}, "123456789*29B1", VerdictOK, "123456789", 0x29B1, 0x29B1},
		{"crc16 comma", Parser{Kind: ChecksumCRC16CCITT, Sep: ','}, "123456789,29b1", VerdictOK, "123456789", 0x29B1, 0x29B1},
		{"crc16 mismatch", Parser{Kind: ChecksumCRC16CCITT, Sep: '*'}, "123456780*29B1", VerdictMismatch, "123456780", 0x29B1, uint32(refCRC16(0xFFFF, []byte("123456780")))},
		{"crc16 missing", Parser{Kind: ChecksumCRC16CCITT, Sep: '*'}, "123456789", VerdictMissing, "123456789", 0, 0},
		{"crc16 short", Parser{Kind: ChecksumCRC16CCITT, Sep: '*'}, "123456789*29B", VerdictMalformed, "123456789", 0, 0},
		{"xmodem ok", Parser{Kind: ChecksumCRC16XModem, Sep: '*'}, "123456789*31C3", VerdictOK, "123456789", 0x31C3, 0x31C3},
		{"crc32 ok", Parser{Kind: ChecksumCRC32, Sep: '*'}, "123456789*CBF43926", VerdictOK, "123456789", 0xCBF43926, 0xCBF43926},
		{"crc32 crc16 trailer", Parser{Kind: ChecksumCRC32, Sep: '*'}, "123456789*29B1", VerdictMalformed, "123456789", 0, 0},
		{"none", Parser{Kind: ChecksumNone}, "anything*at all", VerdictNone, "anything*at all", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.p.Parse([]byte(c.line))
			if r.Verdict != c.verdict || string(r.Payload) != c.payload {
				t.Fatalf("Parse(%q) = %v %q, want %v %q", c.line, r.Verdict, r.Payload, c.verdict, c.payload)
			}
			if (r.Verdict == VerdictOK || r.Verdict == VerdictMismatch) && (r.Got != c.got || r.Want != c.want) {
				t.Fatalf("Parse(%q): got %#x want %#x, expected got %#x want %#x", c.line, r.Got, r.Want, c.got, c.want)
			}
		})
	}
}

// TestParseCRCIndependent checks the captured payloads against trailers
// made by hash/crc32 and the bitwise reference, with both separators.
func TestParseCRCIndependent(t *testing.T) {
	for _, payload := range readLines(t, "testdata/payloads.txt") {
		for _, sep := range []byte{'*', ','} {
			b := []byte(payload)
			for _, c := range []struct {
				kind    ChecksumKind
				trailer string
			}{
				{ChecksumCRC16CCITT, fmt.Sprintf("%04X", refCRC16(0xFFFF, b))},
				{ChecksumCRC16XModem, fmt.Sprintf("%04x", refCRC16(0, b))},
				{ChecksumCRC32, fmt.Sprintf("%08X", crc32.ChecksumIEEE(b))},
			} {
				p := Parser{Kind: c.kind, Sep: sep}
				line := payload + string(sep) + c.trailer
				if r := p.Parse([]byte(line)); r.Verdict != VerdictOK || string(r.Payload) != payload {
					t.Errorf("%s %q: %v payload %q, want ok", c.kind, line, r.Verdict, r.Payload)
				}
				if got := string(p.Append(nil, b)); !strings.EqualFold(got, line) {
					t.Errorf("%s Append(%q) = %q, want %q", c.kind, payload, got, line)
				}
				bad := []byte(line)
				bad[0] ^= 0x01
				if r := p.Parse(bad); r.Verdict != VerdictMismatch {
					t.Errorf("%s %q: %v, want mismatch", c.kind, bad, r.Verdict)
				}
			}
		}
	}
}

func TestSplitNMEA(t *testing.T) {
	for _, c := range []struct {
		payload, talker, typ string
		fields               []string
	}{
		{"GPGGA,123519,4807.038,N,,M", "GP", "GGA", []string{"123519", "4807.038", "N", "", "M"}},
		{"PGRME,15.0,M", "P", "GRME", []string{"15.0", "M"}},
		{"GPGLL,4916.45,", "GP", "GLL", []string{"4916.45", ""}},
		{"GPTXT", "GP", "TXT", nil},
		{"G", "G", "", nil},
		{"", "", "", nil},
	} {
		talker, typ, fs := SplitNMEA([]byte(c.payload), nil)
		var got []string
		for _, f := range fs {
			got = append(got, string(f))
		}
		if string(talker) != c.talker || string(typ) != c.typ || fmt.Sprint(got) != fmt.Sprint(c.fields) || len(got) != len(c.fields) {
			t.Errorf("SplitNMEA(%q) = %q %q %q, want %q %q %q", c.payload, talker, typ, got, c.talker, c.typ, c.fields)
		}
	}
}

func TestValidate(t *testing.T) {
	base := DefaultConfig()
	base.Name = "gps"
	base.Port.Device = "/dev/ttyS1"
	if err := base.Validate(); err != nil {
		t.Fatalf("default config with name and device: %v", err)
	}
	for _, c := range []struct {
		key string
		mod func(*Config)
	}{
		{"name", func(c *Config) { c.Name = "" }},
		{"checksum", func(c *Config) { c.Checksum = "crc8" }},
		{"separator", func(c *Config) { c.Checksum, c.Separator = ChecksumCRC32, "A" }},
		{"separator", func(c *Config) { c.Checksum, c.Separator = ChecksumCRC16CCITT, "" }},
		{"terminator", func(c *Config) { c.Terminator = "\n" }},
		{"max_line_length", func(c *Config) { c.MaxLineLength = 0 }},
		{"priority", func(c *Config) { c.Priority = "urgent" }},
		{"batch_size", func(c *Config) { c.BatchSize = 0 }},
		{"flush_interval", func(c *Config) { c.FlushInterval = 0 }},
		{"reopen_backoff_max", func(c *Config) { c.ReopenBackoffMax = time.Millisecond }},
		{"port.device", func(c *Config) { c.Port.Device = "" }},
	} {
		cfg := base
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.key+":") {
			t.Errorf("%s: Validate() = %v, want an error naming %q", c.key, err, c.key)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	sentences := [][]byte{
		[]byte("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"),
		[]byte("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"),
	}
	for _, kind := range []ChecksumKind{ChecksumNMEA, ChecksumCRC16CCITT, ChecksumCRC32} {
		p := Parser{Kind: kind, Sep: '*'}
		lines := sentences
		if kind != ChecksumNMEA {
			lines = nil
			for _, s := range sentences {
				lines = append(lines, p.Append(nil, s[1:bytes.LastIndexByte(s, '*')]))
			}
		}
		b.Run(string(kind), func(b *testing.B) {
			b.SetBytes(int64(len(lines[0])+len(lines[1])) / 2)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if r := p.Parse(lines[i&1]); r.Verdict != VerdictOK {
					b.Fatalf("%s: %v", lines[i&1], r.Verdict)
				}
			}
		})
	}
}
