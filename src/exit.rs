//! Exit codes: stable, documented in README.md, in this order of precedence.

/// Success: everything tested is compliant (or skipped), or the command did what it was asked.
pub const OK: i32 = 0;
/// `test` found noncompliant targets.
pub const NONCOMPLIANT: i32 = 1;
/// Nothing ran: a usage or playbook error, az missing, not signed in.
pub const NOTHING_RAN: i32 = 2;
/// Some targets could not be tested (az errors); the others were.
pub const INCOMPLETE: i32 = 3;
