// Package uplink owns the reliable batch protocol between a gateway and
// its head-end collector: the message set (Hello, Welcome, Data, Ack,
// Error, Ping, Pong), its framing, payload compression (zstd, with a bound
// on what a payload may expand to), the configuration of endpoints,
// transports (tls, dtls) and modes (failover, balance), the mutual-TLS
// identity that re-reads renewed files at the next handshake, and the
// classification of why a session could not start.
//
// A record leaves the gateway's spool only once the collector has acked it,
// and the collector acks only once its sink holds the record durably, so
// delivery is end to end. The package moves records as opaque bytes and
// never decodes them.
//
// Sub-packages: sender (gateway side), collector (head-end side), rudp (a
// reliable stream over DTLS datagrams), pki (provisioning).
//
// docs/ARCHITECTURE.md, "The wire protocol", is this package's map; steps
// 5 to 8 of a record's life cross it.
package uplink
