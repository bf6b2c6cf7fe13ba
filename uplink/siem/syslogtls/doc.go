// Package syslogtls delivers records to a syslog receiver over TLS
// (RFC 5425) with mutual authentication, octet-counted, in any of the
// four formats: RFC 5424 itself, or CEF, LEEF or ECS JSON as the MSG of
// an RFC 5424 header.
//
// What it guarantees: a batch counts as delivered once its bytes are
// written, the receiver's TCP has acknowledged every one of them (the
// socket's send queue, SIOCOUTQ on Linux, drained to zero within the
// timeout) and the connection has not failed. Plain syslog over TLS has
// no application acknowledgement (RELP has; RFC 5425 does not), so this
// is at-least-once up to the receiver's own durability: what the
// receiver's kernel took but the daemon had not yet written when it died
// is lost, and a batch interrupted by a failure is sent again whole, so
// its first records may arrive twice (each carries its id
// gateway:sequence). Elsewhere than Linux the send queue cannot be read,
// and what sat in the kernel's send buffer when the peer vanished can be
// lost too.
//
// docs/ARCHITECTURE.md: "The life of one record", where outputs branch.
package syslogtls
