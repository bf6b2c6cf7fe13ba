package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// The positions file keeps, outside the spool, every source's position as
// of the records the collector holds: the checkpoint committed with a
// source's newest acknowledged record. When a spool has to be moved aside,
// the fresh one starts from these positions, so tailed files are read
// again from the first record the collector does not hold: what was
// acknowledged is not read twice, and what was spooled but not yet
// acknowledged is read again instead of being lost with the old spool.
//
// The file is a log: a header, then entries, each its length (uvarint), its
// CRC-32C and a body (op byte, source and position, each uvarint-length
// prefixed). Entries are appended and fsynced as acknowledgements move
// positions; Open reads the log up to the first entry that does not check
// (a torn write) and rewrites it compacted, atomically (write, fsync,
// rename, fsync the directory).

// positionsMagic starts the positions file.
const positionsMagic = "weir-positions 1\n"

const (
	posSet    byte = 1
	posDelete byte = 2
)

// maxPending bounds the positions a source has committed but not yet seen
// acknowledged. Past it, every other one is forgotten: the position kept
// for the collector then lags the acknowledgements by up to one forgotten
// step, and a spool moved aside in that state has those records read again.
const maxPending = 1024

// PositionsPath is the positions file of the spool in dir. It is beside
// the spool directory, so that it outlives a spool moved aside.
func PositionsPath(dir string) string { return filepath.Clean(dir) + ".positions" }

// pendingPos is a checkpoint committed with records up to upTo, held by the
// collector once the ack mark reaches upTo.
type pendingPos struct {
	upTo uint64
	pos  []byte
	del  bool
}

// positions tracks what the positions file must say. The writer alone
// uses it.
type positions struct {
	path    string
	held    map[string][]byte       // what the file says
	pending map[string][]pendingPos // committed, not yet held; ascending upTo
	dirty   map[string]bool         // held changed, not yet in the file
	size    int64                   // bytes in the file
	live    int64                   // bytes a rewrite would take
}

func newPositions(path string) *positions {
	return &positions{path: path, held: map[string][]byte{}, pending: map[string][]pendingPos{}, dirty: map[string]bool{}}
}

// committed notes checkpoints a transaction committed. upTo is the last
// sequence of the records committed with them, or 0 for checkpoints alone,
// which are held as soon as the source's earlier positions are.
func (p *positions) committed(cps []Checkpoint, upTo, acked uint64) {
	for _, cp := range cps {
		q := p.pending[cp.Source]
		w := upTo
		if w == 0 && len(q) > 0 {
			w = q[len(q)-1].upTo
		}
		e := pendingPos{upTo: w, pos: slices.Clone(cp.Position), del: cp.Delete}
		if e.pos == nil {
			e.pos = []byte{}
		}
		switch {
		case len(q) > 0 && q[len(q)-1].upTo == w:
			q[len(q)-1] = e
		default:
			q = append(q, e)
		}
		if len(q) > maxPending {
			// Keep every other one, and always the newest.
			k := q[:0]
			for i := range q {
				if i%2 == 1 || i == len(q)-1 {
					k = append(k, q[i])
				}
			}
			q = k
		}
		p.pending[cp.Source] = q
	}
	p.acked(acked)
}

// acked moves to held every pending position whose records are all
// acknowledged.
func (p *positions) acked(upTo uint64) {
	for src, q := range p.pending {
		i := sort.Search(len(q), func(i int) bool { return q[i].upTo > upTo })
		if i == 0 {
			continue
		}
		last := q[i-1]
		if last.del {
			if _, ok := p.held[src]; ok {
				delete(p.held, src)
				p.dirty[src] = true
			}
		} else {
			p.held[src] = last.pos
			p.dirty[src] = true
		}
		if i == len(q) {
			delete(p.pending, src)
		} else {
			p.pending[src] = slices.Delete(q, 0, i)
		}
	}
}

// flush appends the changed positions to the file and fsyncs it; the file
// is rewritten instead once it holds more than twice what it must.
func (p *positions) flush() error {
	if len(p.dirty) == 0 {
		return nil
	}
	if p.size > 2*p.live+64<<10 {
		if p.live = p.liveSize(); p.size > 2*p.live+64<<10 {
			return p.rewrite()
		}
	}
	f, err := os.OpenFile(p.path, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, os.ErrNotExist) {
		return p.rewrite()
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var buf []byte
	for _, src := range sortedKeys(p.dirty) {
		pos, ok := p.held[src]
		if ok {
			buf = appendPosEntry(buf, posSet, src, pos)
		} else {
			buf = appendPosEntry(buf, posDelete, src, nil)
		}
	}
	if _, err := f.Write(buf); err != nil {
		return fmt.Errorf("append to %s: %w", p.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", p.path, err)
	}
	p.size += int64(len(buf))
	clear(p.dirty)
	return nil
}

// rewrite writes the held positions to a new file and renames it over the
// old one.
func (p *positions) rewrite() error {
	buf := []byte(positionsMagic)
	for _, src := range sortedKeys(p.held) {
		buf = appendPosEntry(buf, posSet, src, p.held[src])
	}
	if err := writeFileAtomic(p.path, buf); err != nil {
		return err
	}
	p.size, p.live = int64(len(buf)), int64(len(buf))
	clear(p.dirty)
	return nil
}

func (p *positions) liveSize() int64 {
	n := int64(len(positionsMagic))
	for src, pos := range p.held {
		n += int64(len(appendPosEntry(nil, posSet, src, pos)))
	}
	return n
}

// loadPositions reads a positions file up to its first entry that does not
// check. A missing file is an empty one.
func loadPositions(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return map[string][]byte{}, err
	}
	defer f.Close()
	held, err := readPositions(bufio.NewReader(f))
	if err != nil {
		return held, fmt.Errorf("%s: %w", path, err)
	}
	return held, nil
}

// readPositions reads a positions log up to its first entry that does not
// check.
func readPositions(r *bufio.Reader) (map[string][]byte, error) {
	held := map[string][]byte{}
	magic := make([]byte, len(positionsMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != positionsMagic {
		return held, errors.New("not a positions file")
	}
	for {
		op, src, pos, err := readPosEntry(r)
		if err != nil {
			return held, nil // end of file, or a torn or damaged entry: what came before stands
		}
		switch op {
		case posSet:
			held[src] = pos
		case posDelete:
			delete(held, src)
		}
	}
}

// maxPosEntry bounds one entry, so a damaged length allocates nothing big.
const maxPosEntry = 1 << 20

func appendPosEntry(dst []byte, op byte, src string, pos []byte) []byte {
	body := []byte{op}
	body = binary.AppendUvarint(body, uint64(len(src)))
	body = append(body, src...)
	body = binary.AppendUvarint(body, uint64(len(pos)))
	body = append(body, pos...)
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(body, castagnoli))
	return append(dst, body...)
}

func readPosEntry(r *bufio.Reader) (op byte, src string, pos []byte, err error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, "", nil, err
	}
	if n < 3 || n > maxPosEntry {
		return 0, "", nil, fmt.Errorf("entry of %d bytes", n)
	}
	b := make([]byte, 4+n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, "", nil, err
	}
	body := b[4:]
	if binary.BigEndian.Uint32(b) != crc32.Checksum(body, castagnoli) {
		return 0, "", nil, errors.New("checksum mismatch")
	}
	op, body = body[0], body[1:]
	l, k := binary.Uvarint(body)
	if k <= 0 || l > uint64(len(body)-k) {
		return 0, "", nil, errors.New("bad source length")
	}
	src, body = string(body[k:k+int(l)]), body[k+int(l):]
	l, k = binary.Uvarint(body)
	if k <= 0 || l != uint64(len(body)-k) {
		return 0, "", nil, errors.New("bad position length")
	}
	return op, src, slices.Clone(body[k:]), nil
}

// writeFileAtomic writes b to path so that a crash leaves the old file or
// the new one, never a mix: a temporary file, fsync, rename, fsync of the
// directory.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
