// Package uplink owns the reliable batch protocol between a gateway and
// its head-end collector: the message set (Hello, Welcome, Data, Ack,
// Error), its framing, the gateway-side sender that reads the spool, and
// the mutual-TLS transport settings.
//
// A record leaves the gateway's spool only once the collector has acked it,
// and the collector acks only once its sink holds the record durably, so
// delivery is end to end. The package moves records as opaque bytes and
// never decodes them.
package uplink
