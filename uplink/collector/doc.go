// Package collector owns the head-end side of the uplink: a server that
// accepts gateways over TLS (Serve) and over already-authenticated
// transports such as uplink/rudp's DTLS listener (ServeSecure), takes the
// gateway id from the client certificate (refusing a Hello naming another,
// and saying why in its log), decompresses batches within a bound, dedupes
// records by (gateway, sequence), writes them to a sink and acks only once
// the sink holds them durably. The JSONL sink keeps the per-gateway dedupe
// state (a floor and ranges above it) and recovers it at open, so it
// survives restarts; several servers may share one sink.
package collector
