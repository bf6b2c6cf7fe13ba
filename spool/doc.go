// Package spool is Weir's durable store-and-forward queue: a Badger
// database of opaque byte records waiting for the uplink.
//
// The spool owns bytes, sequence numbers and read positions, nothing more.
// It never decodes a record: the gateway encodes events before Append and
// the collector decodes them after delivery.
//
// # Contract
//
//   - Append stores a batch of records together with the read positions
//     (checkpoints) of the sources that produced them in one fsynced Badger
//     transaction, so a crash at any instant neither loses nor re-reads a
//     record. The records get contiguous sequence numbers.
//   - Read returns unacknowledged records from a cursor, in sequence order.
//   - Ack deletes every record up to a sequence, once the next hop holds them
//     durably. Records are only ever deleted by Ack.
//   - Checkpoint returns a source's last committed position.
//
// # Sequence numbers
//
// Sequence numbers never repeat. The next sequence is stored in the same
// transaction as the records that consume it, so it survives restarts even
// after every record was acknowledged and deleted.
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
// # Storage layout
//
// All keys live in one Badger database, under prefixes:
//
//	r/<seq: 8 bytes big-endian>   record: appended time (8 bytes big-endian unix ns) + data
//	c/<source>                    checkpoint: the source's position, opaque
//	m/next                        next sequence to assign (8 bytes big-endian)
//	m/acked                       highest acknowledged sequence (8 bytes big-endian)
//
// The figures Stats reports about the backlog (records, bytes, oldest) are
// kept in memory and rebuilt on Open from a key-only scan.
//
// This is the first version: it is unbounded, has one priority class and
// commits each Append on its own. Bounds with refusal by priority class,
// group commit and Badger tuning for small boards come later.
package spool
