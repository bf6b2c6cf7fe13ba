// Package syslog owns syslog intake: UDP, TCP and TLS listeners (mutual
// TLS optional) that turn what local devices and hosts send into records
// of kind log.
//
// Parsing. A message whose PRI is followed by version "1 " is RFC 5424;
// anything else is RFC 3164 in the forms real senders use (rsyslog,
// util-linux logger, busybox, appliances with a year or milliseconds, no
// PRI at all). Severity comes from the PRI, the facility is a field, the
// message's own timestamp is the record's Observed time; the record's Time
// and clock quality are stamped by the sink. Structured data is kept as
// string fields "sd.<SD-ID>.<PARAM-NAME>", unescaped. A message that does
// not parse is never dropped: the record carries the raw bytes (any bytes,
// UTF-8 or not) as its Message, format raw and a parse_error field naming
// what was wrong.
//
// Framing. A UDP datagram is one message. On TCP and TLS each frame is
// detected on its own (RFC 6587): one starting with a digit is
// octet-counted, anything else ends at LF or NUL. Messages longer than
// max_message_bytes are cut to it and flagged truncated, never dropped
// silently.
//
// Every record carries the sender's address (peer) and transport; records
// whose message names no host get the sender's IP as Host.
package syslog
