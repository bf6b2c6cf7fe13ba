// Package rules owns Weir's edge detection: rules that watch the records
// on their way to the spool and raise alerts, and correlation patterns
// across the records the rules match.
//
// A rule has a matcher (package match: which records it looks at, its
// event type), an optional group_by (each group its own window) and a
// type:
//
//   - count: the records (or a numeric field's sum) within a sliding
//     window, over (newest − window, newest] by record time; an alert
//     at count, then none for the cooldown. An alert that follows another
//     within the window after the cooldown needs count × escalation^n
//     records counted since the last alert and is raised n levels.
//   - rate: the increase of some counter fields over others' within the
//     window (a bus's damaged frames over its attempts).
//   - sustained: a condition true on every matching record for a
//     duration (the state a record reports holds until one says
//     otherwise, so a clock's state change is enough).
//   - absent: no matching record for a duration (a device that stopped
//     answering).
//
// Levels, in order: NONE (an event type only), LOG, NOTIFY, PAGE,
// ESCALATE, CRITICAL.
//
// # Correlation
//
// The records rules match are events; three patterns look across them,
// each in groups anchored at a group's first event and lasting the
// correlation window: several high or critical events from one source
// (source_attack:<source>:<unix-ts>); one rule's events from several
// devices, buses or hosts (distributed:<rule>:<unix-ts>); rising
// severities among a source's events (escalating:<source>:<unix-ts>),
// the timestamp being the group's first event's. The spool never
// rewrites a record, and a group is known to be a correlation only once
// it is complete, so every event gets the id of each group it joins as it
// passes (the field correlation_id; correlation_ids lists them all when
// there are several): the alert naming that id makes it a correlation,
// and a group that never completes leaves an id no alert names.
//
// # The path of a record
//
// Observe runs on every batch before it is encoded (gateway.Gateway.Emit),
// holding no lock until a rule matches: a record that matches nothing
// costs each rule's kind test and matcher and allocates nothing. State is
// kept under one lock; Commit, after the spool assigned the batch's
// sequences, turns what fired into alert records (kind alert, source
// weir:rules, priority critical) naming the first and last event's
// sequence. Tick judges the rules that fire on time passing (sustained,
// absent) and forgets idle groups.
//
// Load takes a new rule set: a rule whose definition did not change keeps
// its windows, a changed or new one starts empty, and the correlation
// groups stay unless the correlation section changed. Windows live in
// memory only: a restart starts them empty.
//
// docs/ARCHITECTURE.md places the rules in a record's life (step 2½).
package rules
