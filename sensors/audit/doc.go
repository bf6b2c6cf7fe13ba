// Package audit owns the Linux audit log input: it follows the log auditd
// writes (/var/log/audit/audit.log) and emits one record of kind audit per
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
// File tailing in general belongs to sensors/hostlog; this package reads
// the one file auditd writes, whose records must be grouped across lines
// before anything is emitted, so its position is per event, not per line.
package audit
