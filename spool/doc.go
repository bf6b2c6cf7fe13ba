// Package spool is Weir's durable, bounded store-and-forward queue: a
// Badger database of opaque byte records waiting for the uplink.
//
// The spool owns bytes, sequence numbers, priority classes and read
// positions, nothing more. It never decodes a record: the gateway encodes
// events before Append and the collector decodes them after delivery.
//
// # Contract
//
//   - Append stores a batch of records together with the read positions
//     (checkpoints) of the sources that produced them in one fsynced Badger
//     transaction, so a crash at any instant neither loses nor re-reads a
//     record. The records get contiguous sequence numbers.
//   - Read returns unacknowledged records from a cursor, in sequence order.
//     ReadCritical returns the unacknowledged critical records from a
//     cursor, in sequence order, from the critical index (below), so the
//     uplink can send them ahead of the backlog.
//   - Ack acknowledges every record up to a sequence, once the next hop
//     holds them durably; their space comes back when their segment is
//     dropped (below). The mark is cumulative: a reader that sends records
//     out of sequence order (critical ones ahead of the backlog) keeps the
//     mark below everything the next hop has not acknowledged, and the
//     records acknowledged ahead of the mark stay until it passes them.
//   - Checkpoint returns a source's last committed position. An Append
//     may also delete a checkpoint, in the same transaction.
//   - The backlog is bounded by max_bytes. Bulk records wait for room from
//     90 % of it, normal ones at 100 % (Append blocks: backpressure, never a
//     silent drop); critical records evict the oldest bulk, then normal,
//     records, and wait only when nothing else is left. Records older than
//     max_age (bulk and normal) are dropped. Every eviction, expiry and wait
//     is counted per class.
//   - The backlog is bounded by the disk too (below).
//   - Read never returns a damaged record (below).
//
// # One writer
//
// A single goroutine makes every change: it gathers the Appends waiting at
// that moment into one transaction (group commit: one fsync for many
// callers), assigns sequence numbers in order, runs Acks, evictions and
// expiry, and persists the per-class counts in each transaction so Open
// needs no scan. Reads go straight to Badger's snapshots.
//
// # Sequence numbers
//
// Sequence numbers never repeat. The next sequence is stored in the same
// transaction as the records that consume it, so it survives restarts even
// after every record was acknowledged and deleted. Eviction and expiry
// leave gaps; the uplink sends around them.
//
// A brand-new spool starts at the wall clock in microseconds since the Unix
// epoch, not at 1. The head-end collector deduplicates by (gateway,
// sequence) and remembers the numbers of a spool that was wiped or
// replaced; restarting at 1 would make every new record look like a
// duplicate there and be dropped. No spool assigns more than a million
// records per second on average over its life, so its numbers never run
// ahead of the clock in microseconds, and a spool seeded later from the
// clock starts above all of them. That holds only if the clock is not
// behind where it was when the old spool ran: a board without a real-time
// clock that boots at 1970 or at its image's build date must not create a
// spool before its clock is set. Open logs a warning when it seeds from a
// clock that reads earlier than 2025.
//
// # A full disk
//
// Badger writes its tables and logs through memory maps of sparse files;
// on a file system with no block left that is a SIGBUS, which kills the
// process and, at the next start, kills Badger's Open again. So the spool
// checks the free space (statfs) before every group commit and keeps a
// reserve free for Badger's own growth: 8 memtables, 16 MiB (small) or
// 512 MiB (large), twice the most the disk use was measured to grow after
// the last commit (flushes, compactions, segment drops). Critical records
// are admitted down to the reserve; normal ones wait below reserve + a
// slice of 2 memtables (4 MiB, 128 MiB), bulk ones below reserve + 2
// slices. While intake waits, Stats.Disk.Held says why; it resumes by
// itself, one slice above the line, when acknowledgements or anyone else
// free space, and not before, even when every appender that waited has
// given up. Stats.Disk.Budget is the backlog the disk can hold, which may
// be less than max_bytes.
//
// A ballast file (weir-ballast, the reserve plus a full set of write-ahead
// logs: 20 MiB small, 832 MiB large, of real blocks) is kept in the
// directory. When something else fills the disk below half the reserve,
// the ballast is deleted, and the spool writes nothing at all, keeping
// acknowledgements in memory (Stats.Disk.AcksInMemory), until there is
// room again; the ballast comes back when there is room for it. Open needs
// the reserve and the logs it must replay free; on a fuller disk it deletes
// the ballast, and without one it waits for space (OpenContext) rather than
// open Badger into a crash. What is left: another process that takes the
// last free block after the ballast is gone, while Badger still compacts.
//
// # Damage
//
// Every record's value carries a CRC-32C of its key, appended time and
// data, checked by Read (the spool checks its own bytes without knowing
// what they encode; the gateway's encoding carries a CRC of its own,
// checked by the collector). Badger checks each table block's checksum on
// every read (options.OnBlockRead), so damage inside a table is found
// before its bytes are parsed. Every sequence between the ack mark and the
// next has a key: evicted and expired records leave a marker, not a gap.
// So Read knows a missing sequence for damage: it looks each one up on its
// own (Badger's iterators end a table silently at a bad block), returns
// what it finds, and quarantines the rest and every record whose checksum
// fails: skipped, never returned, counted (Stats.Quarantined), listed by
// QuarantinedSince for the gateway's critical record, and written with its
// key and value to the quarantine file beside the spool (QuarantinePath).
// A version 2 spool is upgraded in place; its older records, written
// before the checksum, are read as they are. The layout keys (s/format,
// s/checked) are written once, so they sit in old tables; a version 3
// spool that lost either to a damaged table is still read as version 3,
// never taken for version 2 (which would hand out every record with its
// checksum in front of its data): with s/checked lost, every record is
// checked.
//
// Before Badger opens the spool, every table the manifest lists is read
// block by block. A table Badger could not open (cut short, zeroed, a
// damaged index), and a manifest that lost all its entries, make the spool
// one that cannot be opened (below); Badger would otherwise panic in a
// goroutine of its own, or delete every table. A table with a damaged
// block has its readable records written again before any compaction
// runs: a compaction reading it would keep only what precedes the block.
// A spool whose value log is damaged has it set aside: it holds no records.
//
// A spool Badger cannot open is renamed <dir>.corrupt-<time> and a fresh
// one started (its numbers seeded above the old ones, as above), so the
// gateway always boots; Stats.Recovered says what happened and the gateway
// sends it as a critical record, then calls RecoveryReported (a marker in
// the old spool makes the next start report it again if the gateway died
// first). A spool locked by another process or not accessible is an error
// instead: moving it would not help.
//
// # Positions outlive the spool
//
// The positions file beside the spool (PositionsPath) holds each source's
// checkpoint as of the newest of its records the collector acknowledged:
// a log of entries with CRCs, appended and fsynced as acknowledgements
// move, rewritten atomically at Open. A fresh spool, after a move aside,
// starts from it. The guarantee: a source that resumes from checkpoints
// (tailed files, the audit log, file integrity) reads again exactly the
// records the collector did not acknowledge, if its input still has them;
// none that it did. That is exact while a source has at most 1,024
// appends unacknowledged (past that, the position lags the
// acknowledgements by up to one forgotten step and those records come
// twice), and while the positions file was written (a failure to write it
// is logged and retried, and costs only duplicates). Records of sources
// without positions (syslog, Modbus, line sensors, telemetry) that were
// not acknowledged stay in the spool moved aside.
//
// # Reclaiming space
//
// Badger used as a queue keeps the space of deleted records until
// compaction happens to reach their tombstones (dgraph-io/badger#1995):
// deleting each acknowledged record kept the disk at about 3.4 times the
// backlog in a churn run. So records are grouped in segments that share a
// key prefix; Ack only moves the mark, and once the mark passes a
// segment's last record the writer removes the segment with DropPrefix,
// which deletes its tables outright. The open segment is closed early and
// dropped once it is fully acknowledged and a quarter full, so a spool
// that keeps up gives its space back too. A segment holds an eighth of
// the backlog when it opens, at least a memtable's worth and at most an
// eighth of max_bytes: DropPrefix flushes the memtables without the
// dropped records, so a spool that keeps up never writes its acknowledged
// records to a table (half the gateway's CPU end to end), and a backlog
// is held in under 60 segments. Records live in the LSM tree, never in the value log (one Append
// holds at most MaxAppendBytes, under the value threshold), so there is no
// value-log garbage to collect. TestChurn measures the result (about 1.6
// times the largest backlog).
//
// # Storage layout
//
//	r/<seg: 4><seq: 8 bytes BE><class: 1>  record: appended time (8 bytes BE unix ns) + CRC-32C (4 BE) + data;
//	                                       an evicted or expired record: its appended time alone
//	s/seg/<seg: 4>                         segment: its first sequence
//	s/c/<source>                           checkpoint: the source's position, opaque
//	s/next                                 next sequence to assign
//	s/acked                                highest acknowledged sequence
//	s/counts                               records and bytes held, per class
//	s/format                               layout version (3)
//	s/checked                              first sequence written with a CRC (records below: time + data)
//	x/<seg: 4><class: 1><seq: 8 bytes BE>  index of each class, oldest first: time + data size
//
// Every key that is not a record sorts after the records, so a dropped
// segment's tables hold little else. The class rides in the record key so
// Ack can count what it acknowledges from a key-only scan; the index lets
// eviction and expiry find a class's oldest records without reading the
// others, and ReadCritical find the critical records (a seek per segment)
// without reading the backlog around them. Eviction and expiry replace
// records by markers one by one; they are rare, and the markers go with
// the segment. Critical records were not indexed before the uplink sent
// them ahead: a spool written then holds critical records without an
// index key, which ReadCritical does not see and Read returns in order;
// the layout is otherwise the same, and older firmware reading a spool
// with critical index keys ignores them (they go with their segment).
//
// # Critical records ahead of the backlog
//
// The uplink reads critical records beyond its cursor with ReadCritical
// and sends them before the backlog, then reads on in order, skipping
// them. Each class keeps its own sequence order. The collector dedupes by
// (gateway, sequence) and keeps the ranges it holds above a floor, so it
// takes records out of order; but the spool's Ack stays one cumulative
// mark, moved only below the oldest record the collector has not
// acknowledged. A critical record acknowledged ahead is therefore neither
// dropped before the records under it are held, nor counted held by the
// mark while it is not; after a restart it is sent again in order and the
// collector acknowledges it without writing it twice.
//
// docs/ARCHITECTURE.md places the spool in the life of a record (steps 4,
// 5 and 8) and in the failure model.
package spool
