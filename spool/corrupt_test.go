package spool

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
)

// numbered appends n normal records "rec-<i>-<padding>" (200 bytes) and
// returns the first sequence.
func numbered(t *testing.T, s *Spool, n int) uint64 {
	t.Helper()
	var first uint64
	for i := 0; i < n; {
		k := min(n-i, 500)
		entries := make([]Entry, k)
		for j := range entries {
			entries[j] = Entry{Class: ClassNormal, Data: numberedData(i + j)}
		}
		f, err := s.Append(context.Background(), entries, nil)
		require.NoError(t, err)
		if first == 0 {
			first = f
		}
		i += k
	}
	return first
}

func numberedData(i int) []byte { return fmt.Appendf(nil, "rec-%08d-%0187d", i, i) }

// largestTable is the biggest .sst file in dir.
func largestTable(t *testing.T, dir string) string {
	t.Helper()
	ssts, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	require.NoError(t, err)
	require.NotEmpty(t, ssts)
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		return fi.Size()
	}
	sort.Slice(ssts, func(i, j int) bool { return size(ssts[i]) > size(ssts[j]) })
	return ssts[0]
}

// overwrite puts 16 bytes of junk at off in path.
func overwrite(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("\xde\xad\xbe\xef junk junk \x00\xff"), off)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// readAll reads the whole backlog as the uplink does.
func readAll(t *testing.T, s *Spool) []Record {
	t.Helper()
	var all []Record
	var cursor uint64
	for {
		recs, err := s.Read(cursor, 1000, 0)
		require.NoError(t, err)
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
		cursor = recs[len(recs)-1].Seq + 1
	}
}

// TestDamagedTableIsQuarantined is the field fault: 16 bytes overwritten
// in the middle of a table. The old spool delivered the damaged record as
// data, or (with Badger's block checksums) silently skipped the rest of
// the table. Now no damaged record is returned, the few records of the
// damaged block are quarantined and named, and every other record of the
// table is still delivered.
func TestDamagedTableIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	const n = 20000
	first := numbered(t, s, n)
	require.NoError(t, s.Close())
	table := largestTable(t, dir)
	fi, err := os.Stat(table)
	require.NoError(t, err)
	overwrite(t, table, fi.Size()/2)

	s = openAt(t, dir)
	require.Empty(t, s.Stats().Recovered, "a damaged data block is not a reason to move the spool aside")
	// A compaction reads the damaged table. Badger ends the table at the
	// bad block and writes out only what came before it; Open wrote the
	// rest again, so nothing more is lost than the block.
	require.NoError(t, s.db.Flatten(2))
	recs := readAll(t, s)
	got := map[uint64]bool{}
	for _, r := range recs {
		i := int(r.Seq - first)
		require.Equal(t, string(numberedData(i)), string(r.Data), "record %d was returned damaged", r.Seq)
		got[r.Seq] = true
	}
	qs, next := s.QuarantinedSince(0)
	require.NotEmpty(t, qs, "the damage was not reported")
	var quarantined int
	for _, q := range qs {
		require.Equal(t, reasonUnreadable, q.Reason)
		for seq := q.First; seq <= q.Last; seq++ {
			require.False(t, got[seq], "sequence %d both returned and quarantined", seq)
			got[seq] = true
		}
		quarantined += q.Records
	}
	for seq := first; seq < first+n; seq++ {
		require.True(t, got[seq], "sequence %d neither returned nor quarantined", seq)
	}
	t.Logf("%d of %d records returned, %d quarantined: %+v", len(recs), n, quarantined, qs)
	require.Less(t, quarantined, 100, "only the damaged block's records may be lost, not the rest of the table")
	require.Equal(t, uint64(quarantined), s.Stats().Quarantined)

	// Read again: the same records, nothing reported twice.
	require.Len(t, readAll(t, s), len(recs))
	again, _ := s.QuarantinedSince(next)
	require.Empty(t, again)

	// The quarantine file names the run; a reopened spool skips it silently.
	lines := quarantineLines(t, dir)
	require.Len(t, lines, len(qs))
	require.Equal(t, qs[0].First, lines[0].First)
	require.NoError(t, s.Close())
	s = openAt(t, dir)
	require.Len(t, readAll(t, s), len(recs))
	require.Zero(t, s.Stats().Quarantined)
	require.NoError(t, s.Ack(first+n-1), "acknowledging past damage works")
}

// TestChecksumMismatchIsQuarantined: a record whose bytes changed where
// Badger's block checksum cannot see it (in memory, or a checksum
// collision) fails the record's own CRC-32C. It is kept aside with its key
// and value in the quarantine file, and the stream continues past it.
func TestChecksumMismatchIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	first, err := s.appendBytes(payloads("ok", 5), nil)
	require.NoError(t, err)
	// Damage record first+2's data in place.
	key := appendRecordKey(nil, s.segmentOf(first+2), first+2, ClassNormal)
	require.NoError(t, s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		v[len(v)-1] ^= 0x01
		return txn.Set(key, v)
	}))

	recs, err := s.Read(0, 100, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{first, first + 1, first + 3, first + 4}, seqs(recs))
	qs, _ := s.QuarantinedSince(0)
	require.Len(t, qs, 1)
	require.Equal(t, Quarantined{First: first + 2, Last: first + 2, Records: 1, Reason: reasonChecksum, At: qs[0].At, Key: key, Value: qs[0].Value}, qs[0])
	lines := quarantineLines(t, dir)
	require.Len(t, lines, 1)
	require.Equal(t, fmt.Sprintf("%x", key), lines[0].Key, "kept aside with its key")
	require.Contains(t, lines[0].Value, fmt.Sprintf("%x", "ok-2"[:3]), "and its value")
}

func quarantineLines(t *testing.T, dir string) []quarantineLine {
	t.Helper()
	f, err := os.Open(QuarantinePath(dir))
	require.NoError(t, err)
	defer f.Close()
	var out []quarantineLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l quarantineLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		out = append(out, l)
	}
	return out
}

// TestEvictionLeavesMarkers: records removed on purpose (evicted for a
// critical record, expired) leave a marker, so the reader that looks for
// every sequence does not take them for damage.
func TestEvictionLeavesMarkers(t *testing.T) {
	s := openWith(t, t.TempDir(), tinyConfig(), nil)
	fill(t, s, ClassBulk, 2000, 200)
	fill(t, s, ClassNormal, 1000, 200)
	fill(t, s, ClassCritical, 2000, 200) // evicts bulk, then normal
	st := s.Stats()
	require.Positive(t, st.Classes[ClassBulk].Evicted)
	recs := readAll(t, s)
	require.Equal(t, st.Records, int64(len(recs)))
	require.Zero(t, s.Stats().Quarantined)
	require.NoError(t, s.Ack(recs[len(recs)-1].Seq))
	require.Zero(t, s.Stats().Records)
}

// TestVersion2SpoolUpgrade: a spool written before records carried a
// checksum (layout version 2) opens; its records are read as written,
// gaps its evictions left are no damage, and new records are checked.
func TestVersion2SpoolUpgrade(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	// Make it a version 2 spool with three records and an eviction gap.
	seg := uint32(1)
	start := s.Stats().NextSeq
	require.NoError(t, s.db.Update(func(txn *badger.Txn) error {
		for _, kv := range [][2][]byte{
			{[]byte(keyFormat), encodeUint64(2)},
			{segmentKey(seg), encodeUint64(start)},
			{appendRecordKey(nil, seg, start, ClassNormal), append(encodeUint64(1), "old-0"...)},
			{appendRecordKey(nil, seg, start+2, ClassNormal), append(encodeUint64(1), "old-2"...)},
			{appendRecordKey(nil, seg, start+3, ClassNormal), append(encodeUint64(1), "old-3"...)},
			{[]byte(keyNext), encodeUint64(start + 4)},
		} {
			if err := txn.Set(kv[0], kv[1]); err != nil {
				return err
			}
		}
		c := counts{}
		c.add(ClassNormal, 3, 15)
		if err := txn.Set([]byte(keyCounts), c.encode()); err != nil {
			return err
		}
		return txn.Delete([]byte(keyCheckedFrom))
	}))
	require.NoError(t, s.Close())

	s = openAt(t, dir)
	require.Equal(t, start+4, s.checkedFrom)
	first, err := s.appendBytes(payloads("new", 2), nil)
	require.NoError(t, err)
	require.Equal(t, start+4, first)
	recs := readAll(t, s)
	var data []string
	for _, r := range recs {
		data = append(data, string(r.Data))
	}
	require.Equal(t, []string{"old-0", "old-2", "old-3", "new-0", "new-1"}, data)
	require.Zero(t, s.Stats().Quarantined)
	require.NoError(t, s.Close())
	s = openAt(t, dir)
	require.Equal(t, start+4, s.checkedFrom, "the upgrade is written once")
}

// TestLostLayoutKeys: a damaged table can hide s/format or s/checked,
// which are written once and so sit in old tables. A version 3 spool that
// lost either is still read as version 3: taken for version 2, every
// record would go out with its checksum as the first bytes of its data.
func TestLostLayoutKeys(t *testing.T) {
	for _, c := range []struct {
		name   string
		lost   []string
		marked bool // the newest record evicted: a marker, no evidence either way
		want   []string
	}{
		{"s/checked", []string{keyCheckedFrom}, false, []string{"rec-0", "rec-1", "rec-2"}},
		{"s/format", []string{keyFormat}, false, []string{"rec-0", "rec-1", "rec-2"}},
		{"both", []string{keyCheckedFrom, keyFormat}, false, []string{"rec-0", "rec-1", "rec-2"}},
		{"both, the newest record a marker", []string{keyCheckedFrom, keyFormat}, true, []string{"rec-0", "rec-1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openAt(t, dir)
			first, err := s.appendBytes(payloads("rec", 3), nil)
			require.NoError(t, err)
			require.NoError(t, s.db.Update(func(txn *badger.Txn) error {
				for _, k := range c.lost {
					if err := txn.Delete([]byte(k)); err != nil {
						return err
					}
				}
				if c.marked {
					return txn.Set(appendRecordKey(nil, s.lastSeg, first+2, ClassNormal), markerValue(1))
				}
				return nil
			}))
			require.NoError(t, s.Close())
			for _, when := range []string{"after the loss", "reopened"} {
				s = openAt(t, dir)
				var data []string
				for _, r := range readAll(t, s) {
					data = append(data, string(r.Data))
				}
				require.Equal(t, c.want, data, when)
				require.Zero(t, s.Stats().Quarantined, when)
				require.NoError(t, s.Close())
			}
		})
	}
}

// TestNextSurvivesAStaleMark: if a damaged table hides the newest s/next
// and an older one shows, numbering still continues after the newest
// record: a number given twice would make the collector drop a record as
// a duplicate.
func TestNextSurvivesAStaleMark(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir)
	first, err := s.appendBytes(payloads("a", 5), nil)
	require.NoError(t, err)
	require.NoError(t, s.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(keyNext), encodeUint64(first+1))
	}))
	require.NoError(t, s.Close())
	s = openAt(t, dir)
	require.Equal(t, first+5, s.Stats().NextSeq)
}

func TestSeqSpans(t *testing.T) {
	var r seqSpans
	r.add(10, 12)
	r.add(20, 20)
	r.add(13, 14) // touches 10..12
	require.Equal(t, seqSpans{{10, 14}, {20, 20}}, r)
	r.add(16, 19) // touches 20
	require.Equal(t, seqSpans{{10, 14}, {16, 20}}, r)
	r.add(15, 15)
	require.Equal(t, seqSpans{{10, 20}}, r)
	r.add(30, 40)
	for _, tc := range []struct {
		seq  uint64
		want bool
	}{{9, false}, {10, true}, {20, true}, {21, false}, {35, true}, {41, false}} {
		require.Equal(t, tc.want, r.has(tc.seq), "has(%d)", tc.seq)
	}
	require.Equal(t, []seqSpan{{5, 9}, {21, 29}, {41, 45}}, r.subtract(5, 45))
	require.Empty(t, r.subtract(11, 19))
	require.Equal(t, []seqSpan{{50, 60}}, r.subtract(50, 60))
	r.prune(20)
	require.Equal(t, seqSpans{{30, 40}}, r)
}

func TestQuarantinedSinceKeepsTheLatest(t *testing.T) {
	s := openAt(t, t.TempDir())
	s.log = slog.New(slog.DiscardHandler)
	for i := range uint64(quarantineKeep + 10) {
		s.quarantine([]Quarantined{{First: 100 + 2*i, Last: 100 + 2*i, Records: 1, Reason: reasonChecksum}})
	}
	qs, next := s.QuarantinedSince(0)
	require.Len(t, qs, quarantineKeep)
	require.Equal(t, uint64(quarantineKeep+10), next)
	require.Equal(t, uint64(100+2*10), qs[0].First)
	qs, _ = s.QuarantinedSince(next - 1)
	require.Len(t, qs, 1)
	// Reported once only.
	s.quarantine([]Quarantined{{First: 100, Last: 102, Records: 3, Reason: reasonUnreadable}})
	qs, _ = s.QuarantinedSince(next)
	require.Equal(t, []uint64{101, 101}, []uint64{qs[0].First, qs[0].Last})
}
