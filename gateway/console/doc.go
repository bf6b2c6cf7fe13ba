// Package console owns what keeps the technician's serial console
// (`weir console`) honest: its configuration (the console: section), the
// password hash it checks logins against (argon2id in PHC string format,
// or bcrypt), the login guard (a growing delay after each failed login and
// a lockout after too many, kept in a state file so that restarting the
// console process lifts neither), and the audit record every login,
// failed login and command becomes (Record), with the outbox that keeps
// those records while the gateway cannot take them.
//
// The shell itself (reading lines, running the diagnostics, printing) is
// cmd/weir's; the gateway spools the records the console hands it over
// the admin socket. docs/ARCHITECTURE.md places the console beside the
// daemon; docs/SECURITY.md says what it allows.
package console
