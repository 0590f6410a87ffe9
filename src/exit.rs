//! Exit codes: stable, documented in README.md, in this order of precedence. An error carries
//! its code (`Failure`); `main` only maps an error to it, and an error that carries none exits
//! `NOTHING_RAN`, which is what every failure before the first change means.

use std::fmt;

/// Success: everything tested is compliant (or skipped), or the command did what it was asked.
pub const OK: i32 = 0;
/// `test` found noncompliant targets.
pub const NONCOMPLIANT: i32 = 1;
/// Nothing ran: a usage or playbook error, az missing, not signed in.
pub const NOTHING_RAN: i32 = 2;
/// Some targets could not be tested or changed (az errors, drift); the others were.
pub const INCOMPLETE: i32 = 3;
/// Interrupted (Ctrl-C, SIGTERM): what was done is recorded and printed (128 + SIGINT, as
/// shells report it).
pub const INTERRUPTED: i32 = 130;

/// An error that ends a run with a code other than `NOTHING_RAN`: once a change was attempted,
/// a later failure (the change log's run-end, say) must not claim that nothing ran.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub error: anyhow::Error,
}

impl Failure {
    /// Wraps an error that came after a change was attempted.
    pub fn after_changes(error: anyhow::Error) -> anyhow::Error {
        anyhow::Error::new(Failure {
            code: INCOMPLETE,
            error,
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Failure {}

/// The exit code an error ends the process with.
pub fn code_of(error: &anyhow::Error) -> i32 {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(NOTHING_RAN, |f| f.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_exits_2_unless_it_carries_another_code() {
        assert_eq!(code_of(&anyhow::anyhow!("not signed in")), NOTHING_RAN);
        let late = Failure::after_changes(anyhow::anyhow!("disk full"));
        assert_eq!(code_of(&late), INCOMPLETE);
        assert_eq!(code_of(&late.context("ending the change log")), INCOMPLETE);
    }
}
