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
//   - Ack acknowledges every record up to a sequence, once the next hop
//     holds them durably; their space comes back when their segment is
//     dropped (below).
//   - Checkpoint returns a source's last committed position. An Append
//     may also delete a checkpoint, in the same transaction.
//   - The backlog is bounded by max_bytes. Bulk records wait for room from
//     90 % of it, normal ones at 100 % (Append blocks: backpressure, never a
//     silent drop); critical records evict the oldest bulk, then normal,
//     records, and wait only when nothing else is left. Records older than
//     max_age (bulk and normal) are dropped. Every eviction, expiry and wait
//     is counted per class.
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
// # Corruption
//
// A spool Badger cannot open is renamed <dir>.corrupt-<time> and a fresh
// one started (its numbers seeded above the old ones, as above), so the
// gateway always boots; Stats.Recovered says what happened and the gateway
// sends it as a critical record. A spool locked by another process or not
// accessible is an error instead: moving it would not help.
//
// # Reclaiming space
//
// Badger used as a queue keeps the space of deleted records until
// compaction happens to reach their tombstones (dgraph-io/badger#1995):
// deleting each acknowledged record kept the disk at about 3.4 times the
// backlog in a churn run. So records are grouped in segments of about an
// eighth of max_bytes (256 KiB to 256 MiB of data) that share a key prefix;
// Ack only moves the mark, and once the mark passes a segment's last record
// the writer removes the segment with DropPrefix, which deletes its tables
// outright. The open segment is closed early and dropped once it is fully
// acknowledged and a quarter full, so a spool that keeps up gives its space
// back too. Records live in the LSM tree, never in the value log (one Append
// holds at most MaxAppendBytes, under the value threshold), so there is no
// value-log garbage to collect. TestChurn measures the result (about 1.6
// times the largest backlog).
//
// # Storage layout
//
//	r/<seg: 4><seq: 8 bytes BE><class: 1>  record: appended time (8 bytes BE unix ns) + data
//	s/seg/<seg: 4>                         segment: its first sequence
//	s/c/<source>                           checkpoint: the source's position, opaque
//	s/next                                 next sequence to assign
//	s/acked                                highest acknowledged sequence
//	s/counts                               records and bytes held, per class
//	s/format                               layout version (2)
//	x/<seg: 4><class: 1><seq: 8 bytes BE>  bulk and normal index, oldest first: time + data size
//
// Every key that is not a record sorts after the records, so a dropped
// segment's tables hold little else. The class rides in the record key so
// Ack can count what it acknowledges from a key-only scan; the index lets
// eviction and expiry find a class's oldest records without reading the
// others. Eviction and expiry delete records one by one; they are rare, and
// their tombstones go with the segment.
//
// docs/ARCHITECTURE.md places the spool in the life of a record (steps 4,
// 5 and 8) and in the failure model.
package spool
