// Package syslog owns syslog intake: UDP, TCP and TLS listeners (mutual
// TLS optional) that turn what local devices and hosts send into records
// of kind log. It does not own the gateway wiring (inputs.syslog), the
// spool, or syslog output (uplink/siem).
//
// Parsing ([Parser], [Parse5424], [Parse3164]). A message whose PRI is
// followed by version "1 " is RFC 5424; anything else is RFC 3164 in the
// forms real senders use (rsyslog, util-linux logger, busybox, appliances
// with a year or milliseconds, RFC 3339 timestamps, no PRI at all).
// Severity comes from the PRI and the facility is a field; the message's
// own timestamp is the record's Observed time, while Time and clock
// quality are stamped by the sink. Structured data is kept as string
// fields "sd.<SD-ID>.<PARAM-NAME>", unescaped. A message that does not
// parse is never dropped: the record carries the raw bytes (any bytes,
// UTF-8 or not) as its Message, format raw and a parse_error field naming
// what was wrong. Records whose message names no host get the sender's
// IP as Host.
//
// Framing. A UDP datagram is one message. On TCP and TLS each frame is
// detected on its own (RFC 6587): one starting with digits and a space is
// octet-counted, anything else ends at LF or NUL. Messages longer than
// max_message_bytes are cut to it and flagged truncated (with
// original_bytes), never dropped silently; a frame cut by the end of the
// stream is kept and flagged partial.
//
// Flow. Readers parse in their own goroutines and queue records (bounded)
// for one batcher, which hands batches of at most 512 records or 64 KiB
// to the sink after at most 50 ms. When the sink is slow the queue fills
// and reading stops: TCP and TLS senders are held back by their socket
// windows, UDP datagrams wait in the socket buffer and, when it is full,
// are dropped by the kernel, which counts them (SO_RXQ_OVFL, Linux).
// Nothing is queued without bound.
//
// Rate limit. Each sender IP has a token bucket of rate_limit (default
// 1000 messages/s, burst 2000): far above what a device or host logs in
// normal work, so that it only bites on a fault (a debug loop, a storm
// after a reconnect) and one sender cannot take the spool's write
// throughput and disk budget from the others; the burst passes two
// seconds' worth at once, e.g. a relay's backlog after a link flap. What
// happens over the limit depends on whether the sender proved who it is:
//
//   - A TLS sender whose client certificate was verified (mutual TLS) is
//     paced: its reader waits for the next token before handing on the
//     message, reading nothing from the connection meanwhile, so TCP's
//     window holds the sender back and its excess waits in its own
//     buffers (rsyslog's queue) instead of being dropped. A 10,000-message
//     burst at the defaults is stored whole in about 8 s. Each message
//     waits at most for one token per connection of its sender (at most
//     max_connections_per_address), only the message in hand and the read
//     buffer are held, and the bucket is the sender's own: a flood slows
//     the flooder to rate_limit and no one else. Paced messages are
//     counted (paced, paced_seconds in [Server.Status]), not dropped.
//   - UDP, plain TCP and TLS without a verified certificate (client_auth
//     none, or request and the client sent none) have the excess dropped,
//     counted per sender and reported. UDP cannot be held back (the
//     socket is shared by every sender, and its source addresses can be
//     forged), and a sender that has not authenticated may be anyone:
//     the gateway keeps nothing on its behalf beyond the limit.
//
// The paced senders' buckets are apart from the dropping ones, so
// datagrams forged with an authenticated sender's address cannot spend
// its tokens. Independently of the rate limit, when the spool itself
// holds (full, or slow), reading stops for every sender as described
// under Flow.
//
// Protection. The TCP and TLS listeners each hold at most max_connections
// connections, and one IPv4 address (IPv6 /64) at most
// max_connections_per_address streams on each. TLS handshakes have their
// own budget (tls.max_handshakes, tls.handshake_timeout), so peers that
// have not authenticated never hold the slots of senders that have; a
// TLS connection takes a connection slot once its handshake is done.
// When a budget is full, the oldest stream (or handshake) whose peer has
// not sent a byte is closed for the newcomer, and the newcomer is refused
// only when every one has: a real sender writes as soon as it connects,
// so idle connections cannot lock senders out. A stream that sends
// nothing for first_byte_timeout is closed, one that falls silent after
// idle_timeout. Drops are never silent: rate-limited messages (per
// sender), socket drops, refused and evicted connections are counted in
// [Server.Status] and summarised in a record (format drop_report,
// severity warning) every drop_report_interval.
//
// docs/ARCHITECTURE.md places this package among the sensors; its
// listener's limits are in docs/SECURITY.md.
package syslog
