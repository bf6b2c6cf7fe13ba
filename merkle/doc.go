// Package merkle is the hash tree of RFC 9162 (Certificate Transparency
// version 2) over a gateway's records: leaf and node hashes with their
// one-byte prefixes, SHA-256; the frontier that grows the tree one leaf at
// a time in O(log n) space; and inclusion proofs.
//
// A leaf is one spooled record: its sequence number (8 bytes, big endian)
// followed by its encoded bytes (RecordLeaf), so a leaf hash names the
// record and where it stands. The spool keeps the frontier in the same
// transaction as the records; the gateway signs tree heads (package
// seal); the collector and the verify commands recompute the tree from the
// records they hold. docs/ARCHITECTURE.md ("The tamper-evident log") gives
// the log's layout and what it proves.
package merkle
