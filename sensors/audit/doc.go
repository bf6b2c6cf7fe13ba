// Package audit owns the Linux audit input: it follows the log auditd
// writes (/var/log/audit/audit.log), or reads the kernel's audit stream
// over netlink without auditd, and emits one record of kind audit per
// audit event.
//
// ParseLine reads one line (raw or enriched format, node= prefixed or
// not) into typed key=value fields, decoding the values the kernel
// hex-encodes. A Grouper joins the records of one event (same timestamp
// and serial): SYSCALL, EXECVE, CWD, PATH, PROCTITLE... A Reader follows
// the file across auditd's rename rotation, builds each event's record
// (syscall by name, exe, uids, key, paths, execve arguments, a one-line
// summary) and hands records to a Sink together with its position: the
// file's identity (device, inode and a hash of its first bytes) and the
// offset where the oldest event not yet emitted begins. The gateway
// commits both in one spool transaction, so a crash neither loses nor
// repeats an event. Lines that do not parse are emitted as they are,
// flagged parse_error, never dropped.
//
// With source netlink the Reader reads the kernel's audit stream over
// netlink instead (go-libaudit for the protocol, a socket the Go runtime
// polls): in unicast Weir is the audit daemon, loading the configured
// rules and backlog settings and releasing the socket when it stops; in
// multicast it reads the read-only group beside auditd; auto picks
// multicast when a live audit daemon holds the socket. Each message (its
// type number and its "audit(ts:serial): ..." text) becomes the line
// auditd's raw format writes for it and goes through the same ParseLine,
// Grouper and builder, so the records are those of the file source but
// for a field netlink (the mode) in place of path and offset; the
// kernel's EOE record ends an event and is not kept, as auditd 3 does.
// A goroutine reads the socket into a bounded queue: a burst waits there
// or, for up to a second, in the kernel's backlog; when the sink holds
// back longer (a full spool) what the queue cannot hold is dropped and
// counted, so the kernel never waits on Weir for long.
//
// A kernel stream cannot be rewound, so the netlink checkpoint holds no
// read position, only the kernel's lost counter (and the boot it counts
// from) as last reported. Lost across a restart: what the kernel emits
// while Weir is not reading (it goes to the kernel log; a kernel booted
// with audit=1 holds up to backlog_limit records for the next reader),
// events read but refused by the sink at shutdown (Status.Lost), and on
// a crash what was read and not yet in the spool.
// When the lost counter grows, between two looks or across a restart on
// the same boot, or when Weir dropped messages, a warning record says
// how many.
//
// File tailing in general belongs to sensors/hostlog; this package reads
// the one file auditd writes, whose records must be grouped across lines
// before anything is emitted, so its position is per event, not per line.
//
// docs/ARCHITECTURE.md places this package among the sensors.
package audit
