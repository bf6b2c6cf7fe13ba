// Package sender owns the gateway side of the uplink: it reads the spool,
// cuts batches (batch_max_records / batch_max_bytes, or whatever is there
// once its oldest record is flush_interval old), compresses them, and sends
// them with a window in flight over each endpoint's transport (tls, or dtls
// through uplink/rudp), acking the spool only below the oldest batch no
// collector has acknowledged yet. Each session sizes its window to its
// path (windowSizer) and, after its endpoint's first Welcome, sends its
// first batch behind Hello without waiting for the next.
//
// In failover mode one session runs, on the first endpoint that works;
// endpoints before it are probed every probe_interval and the sender fails
// back as soon as one answers. In balance mode every endpoint runs a
// session and each takes disjoint batches from one dispatcher; a batch
// unacked when its session fails is sent again, first, on another.
//
// Critical records go ahead of the backlog: the dispatcher reads the
// spool's critical records beyond its cursor first (spool.Spool.ReadCritical)
// and sends each run as a batch of its own, keeps their spans so the
// reading in order skips them, and keeps acking the spool with one
// cumulative mark below the oldest record not acknowledged (the
// dispatcher's comment says why this never acks a record the collector
// does not hold, nor sends one twice). A spool that cannot read its
// critical records apart (a view shared with SIEM outputs) is sent in
// order.
//
// It also keeps each endpoint's link telemetry: RTT (the transport's
// estimate — TCP_INFO for tls, rudp's for dtls — or Ping/Pong), loss
// (retransmitted over sent segments, 1 and 15 minutes), goodput and acked
// rates, handshakes and failures by reason, reconnects and outage time.
//
// Steps 5, 6 and 8 of a record's life in docs/ARCHITECTURE.md.
package sender
