package console

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Outbox keeps audit records the gateway could not take (not running,
// restarting, its spool full), beside the login state, until a later
// Flush hands them over. It is bounded: past MaxOutboxBytes new records
// are counted, not kept, and the count is sent as one record of action
// lost.
type Outbox struct {
	dir string
	max int64
}

const (
	outboxFile = "audit-outbox.jsonl"
	lostFile   = "audit-outbox.lost"
	// MaxOutboxBytes bounds the outbox: about 3000 records.
	MaxOutboxBytes = 1 << 20
	// MaxBatch is the most records one request to the gateway carries.
	MaxBatch = 64
)

// OpenOutbox keeps records in dir (the Guard's).
func OpenOutbox(dir string) *Outbox { return &Outbox{dir: dir, max: MaxOutboxBytes} }

// Add keeps recs for a later Flush.
func (o *Outbox) Add(recs ...Record) error {
	g := &Guard{dir: o.dir}
	unlock, err := g.lock()
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(o.dir, outboxFile)
	var size int64
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	}
	var buf bytes.Buffer
	lost := 0
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if size+int64(buf.Len()+len(b)+1) > o.max {
			lost++
			continue
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if lost > 0 {
		if err := o.addLost(lost); err != nil {
			return err
		}
	}
	if buf.Len() == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("console: outbox %s: %w", path, err)
	}
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("console: outbox %s: %w", path, err)
	}
	return nil
}

func (o *Outbox) lost() int {
	b, err := os.ReadFile(filepath.Join(o.dir, lostFile))
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 1 // the count itself was damaged: at least one was lost
	}
	return n
}

func (o *Outbox) addLost(n int) error {
	path := filepath.Join(o.dir, lostFile)
	if err := os.WriteFile(path, []byte(strconv.Itoa(o.lost()+n)+"\n"), 0o600); err != nil {
		return fmt.Errorf("console: outbox %s: %w", path, err)
	}
	return nil
}

// Flush hands the kept records to send, oldest first, at most MaxBatch a
// call, and forgets each batch send took. A line that does not parse (a
// write cut by a power loss) is counted as lost; the count goes last, as
// a record of action lost from tty. It returns how many records send
// took; on send's first error it keeps the rest and returns that error.
func (o *Outbox) Flush(now time.Time, tty string, send func([]Record) error) (int, error) {
	g := &Guard{dir: o.dir}
	unlock, err := g.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	path := filepath.Join(o.dir, outboxFile)
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("console: outbox %s: %w", path, err)
	}
	var recs []Record
	lost := o.lost()
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), MaxOutboxBytes)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Check() != nil {
			lost++
			continue
		}
		recs = append(recs, r)
	}
	if lost > 0 {
		r := NewRecord(now, ActionLost, tty, "")
		r.Count = lost
		recs = append(recs, r)
	}
	sent := 0
	for sent < len(recs) {
		n := min(MaxBatch, len(recs)-sent)
		if err := send(recs[sent : sent+n]); err != nil {
			if kerr := o.keep(recs[sent:], lost > 0); kerr != nil {
				return sent, errors.Join(err, kerr)
			}
			return sent, err
		}
		sent += n
	}
	if err := os.Remove(filepath.Join(o.dir, lostFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return sent, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return sent, err
	}
	return sent, nil
}

// keep rewrites the outbox with the records not yet sent; the lost
// record, if among them, is kept as a record and its count cleared.
func (o *Outbox) keep(recs []Record, hadLost bool) error {
	var buf bytes.Buffer
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	path := filepath.Join(o.dir, outboxFile)
	tmp := path + ".new"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("console: outbox %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("console: outbox %s: %w", path, err)
	}
	if hadLost {
		if err := os.Remove(filepath.Join(o.dir, lostFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Len says how many records wait (lines, whole or not).
func (o *Outbox) Len() int {
	b, err := os.ReadFile(filepath.Join(o.dir, outboxFile))
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}
