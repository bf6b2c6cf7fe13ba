// Package process owns the processors that run on records at the source,
// after they are stamped and before they are spooled: drop and keep (by
// the shared matcher, package match), sample, redact (a mask or a keyed
// HMAC token), parse (dissect, key=value, JSON, RFC 5424 structured
// data), rename, add_fields, drop_fields, truncate, and deadband
// reporting of sensor readings with a heartbeat.
//
// A configuration is an ordered list of Steps, compiled once into a
// Chain (regular expressions are RE2, compiled at load; errors name the
// step by its index and key). Chain.Apply runs a batch through the steps
// in place and returns the records kept; each step counts the records in,
// out, dropped and changed. A critical record (priority critical, an
// alert, an integrity record, severity crit or worse) is never dropped,
// sampled or suppressed unless the step says allow_critical: true.
//
// It imports only packages event and match; the gateway decides which
// chains a record passes (docs/ARCHITECTURE.md, step 2¾).
package process
