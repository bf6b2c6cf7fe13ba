// Package output runs SIEM outputs off a spool: each output reads with
// its own cursor, cuts batches (records, bytes, or whatever is there once
// the oldest has waited flush_interval), decodes them, hands them to its
// Target, retries a failed batch with back-off until the target holds it,
// and only then moves its mark. The Gate shares one spool between the
// uplink's sender and any number of outputs: the spool is acknowledged up
// to the lowest mark among them, so a record leaves the spool only once
// every consumer's target holds it. Outputs' marks are kept as spool
// checkpoints (at most once a second, never in an acknowledgement's path),
// so a restart resends at most what was delivered since.
//
// A record that does not decode is not dropped: it is delivered as an
// alert record carrying its bytes in base64.
//
// docs/ARCHITECTURE.md: "The life of one record", where outputs branch.
package output
