// Package hostlog owns the gateway's host-log inputs: what the board's own
// operating system and applications write, as opposed to field sensors.
//
// Today it tails files: one or more globs, each line a record of kind log
// carrying its path, offset and file fingerprint. A file's read position
// is handed to the Sink with the records it produced, so the gateway
// commits both in one spool transaction and a crash neither loses nor
// repeats a line.
//
// Files are told apart by device and inode plus a crc64 of their first KiB
// (fewer bytes while the file is shorter; taken again as it grows). A file
// renamed within the globs keeps its position, while the tailer runs or
// while it is down (at start every checkpoint of a path the globs match is
// read, and a file is resumed from the one naming it under whatever path).
// A new file at a followed path, or the same inode rewritten from its start
// (copytruncate, an inode reused), is read from the beginning. A file
// renamed or deleted while open is finished from its descriptor.
//
// What it cannot promise: lines that copytruncate writes between its copy
// and its truncation, or that the tailer had not read when the file was
// truncated, are gone with the truncation (the copy is a new file, read
// only if the globs match it, and then from its start). A file rotated to
// a name outside the globs while the gateway is down loses its unread
// tail, and so does a file deleted while closed for close_inactive.
//
// Changes are noticed through inotify (github.com/fsnotify/fsnotify) on
// the globs' directories, with a safety scan every rescan_interval; where
// inotify is unavailable or its limits are reached the files are polled
// every poll_interval, which is logged once. Descriptors: the Go runtime
// raises the soft RLIMIT_NOFILE to the hard limit at start; files beyond
// it fail to open, are logged and tried again, and close_inactive releases
// idle ones.
//
// Lines longer than max_line_bytes go in numbered pieces, none dropped,
// without the whole line ever being held. Multiline joining (a start
// pattern) makes an event of a line and those after it that do not match;
// the checkpoint never passes the first byte of an event not yet emitted.
// Bytes are kept exactly; a message that is not valid UTF-8 is flagged.
//
// Symbolic links are not followed unless follow_symlinks is set: a link
// matching a glob, or a linked directory a wildcard matched, is skipped
// (logged once), since whoever can write a log directory could otherwise
// have the gateway ship any file it can read. The scan looks with Lstat
// and files are opened with openat and O_NOFOLLOW from the glob's fixed
// directory down, so a link swapped in between the two is refused too.
//
// Syslog intake, the kernel audit log and file integrity monitoring are
// their own packages (sensors/syslog, sensors/audit, sensors/integrity).
//
// Step 1 of a tailed line's life in docs/ARCHITECTURE.md.
package hostlog
