// Package integrity owns file integrity monitoring: a baseline of the
// configured paths (by default /etc, the gateway's own binary and its
// configuration file) and a record for every change to it.
//
// # Baseline
//
// For each path under the configured files and directories the baseline
// holds its type, SHA-256 (regular files up to max_file_bytes; larger ones
// are flagged hash_skipped), size, mode, owner, mtime, inode and, for a
// symlink, its target. It lives in the spool's Badger database as one
// checkpoint per path, source "fim:<path>", so the gateway commits a
// change record and the new baseline entry in ONE transaction (Sink.Emit):
// a crash never loses a change nor reports it twice, and no second database
// takes memory. A deleted path's entry is deleted in the transaction of
// its "deleted" record. Only a root keeps an entry while it is absent
// (type absent): a root's own entry says its baseline was made, so a root
// that appears later is reported as created, not baselined silently.
// Versions before kept such a tombstone for every deleted path; the first
// scan deletes those whose path is still gone, and one whose path is back
// is taken as no entry (the path is reported as created).
//
// The first scan of a path makes its baseline silently: one summary record
// "baseline created: N files under ...", none per file. It is committed in
// several transactions (a spool append is bounded), the path's own entry
// last, with the summary: a scan cut short is made again from scratch.
//
// # Changes
//
// Directories are watched with inotify (fsnotify), new ones as they
// appear. A path with events is looked at once it has been quiet for
// settle (300ms), so an editor's write-and-rename or a burst of writes
// makes one record, and only if it differs from the baseline. A full
// rescan every rescan_interval (1h) catches what the watches missed, as
// does one soon after a watch queue overflow, more than 4096 paths
// changing at once (their events are dropped, bounding memory) or a failed
// commit; at start it reports what changed while the gateway was stopped.
//
// Each change is one record of kind integrity, priority critical, severity
// warning (critical for the gateway's own binary and configuration), with
// a message such as "modified /etc/passwd: sha256 ab12cd34…→ef56ab78…,
// size 1200→1234" and fields path, change (created, modified, deleted,
// mode, owner, type), changes (the attributes that differ) and old_* and
// new_* for every attribute of each side present. A directory's size and
// mtime are not compared (they change with its entries, which are reported
// themselves), nor a symlink's mode and inode.
//
// The package does not own the gateway wiring nor the spool.
//
// docs/ARCHITECTURE.md places this package among the sensors.
package integrity
