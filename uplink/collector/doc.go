// Package collector owns the head-end side of the uplink: a server that
// accepts gateways over TLS (Serve) and over already-authenticated
// transports such as uplink/rudp's DTLS listener (ServeSecure), takes the
// gateway id from the client certificate's URI SAN (refusing a Hello
// naming another, a revoked id or serial, an expired certificate), agrees
// batch limits in Welcome, decompresses batches within them and a shared
// memory budget, dedupes records by (gateway, sequence), writes them to a
// sink and acks only once the sink holds them durably.
//
// Every connection is bounded before authentication (handshake slots, per
// source address, a timeout) and after (session slots taken only then,
// per gateway, batch limits, the budget, the certificate's NotAfter and a
// maximum session age); a batch breaking a bound is refused with an Error
// frame, counted and logged within a rate, never written. A panic in a
// session closes that session only; its frame is kept in a capped
// quarantine directory. Refusals and dedupe drops are Prometheus metrics.
//
// The JSONL sink keeps the per-gateway dedupe state (a floor and capped
// ranges above it) and recovers it at open, so it survives restarts;
// several servers may share one sink. A gateway's declared resume floor
// is applied only over sequences the sink holds; a jump beyond is refused
// and written as a critical record under the @collector stream.
//
// Step 7 of a record's life in docs/ARCHITECTURE.md; its bounds and threat
// model in docs/SECURITY.md.
package collector
