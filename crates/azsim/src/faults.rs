//! Fault injection: the `faults` list of a world makes matching CLI calls fail, slow down, hang,
//! print garbage or crash after changing the world, so that azbook's error handling can be
//! tested against every way a real `az` call goes wrong.
//!
//! The ARM face (`azsim serve`) fires the same faults on the requests that serve a command:
//! `command` matches the az command a request belongs to (a PATCH of a storage account is
//! `storage account update`) and `argvContains` matches the method or the decoded request
//! path. There an error is an ARM error response, latency and hangs delay the response,
//! `malformed` tears the response body and `crashAfterChange` closes the connection unanswered
//! after the change was made.

use crate::errors::CommandError;
use crate::store::Db;
use crate::world::Fault;
use anyhow::Result;
use std::time::Duration;

impl Fault {
    /// Whether the fault applies to a call of `command` with these arguments.
    fn matches(&self, command: &[&str], argv: &[String]) -> bool {
        let command_ok = self.command.as_deref().is_none_or(|wanted| {
            let words: Vec<&str> = wanted.split_whitespace().collect();
            words.len() <= command.len()
                && words
                    .iter()
                    .zip(command)
                    .all(|(w, c)| w.eq_ignore_ascii_case(c))
        });
        let argv_ok = self
            .argv_contains
            .as_deref()
            .is_none_or(|needle| argv.iter().any(|a| a.contains(needle)));
        command_ok && argv_ok
    }
}

/// What the fired faults ask the CLI face to do.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Extra time to wait before answering (latency and hangs add up).
    pub delay: Duration,
    /// Fail with this error instead of running the command.
    pub error: Option<CommandError>,
    /// The HTTP status the fault asked for (ARM face only).
    pub error_status: Option<u16>,
    /// Run the command, then print a torn JSON document.
    pub malformed: bool,
    /// Run the command (committing any change), then die by SIGKILL before printing.
    pub crash: bool,
}

/// Fires every matching fault that still has budget, in list order. Delays add up; the first
/// error, malformed or crash fault ends the search, so later faults are neither fired nor counted.
pub fn fire(store: &Db, command: &[&str], argv: &[String]) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    for (idx, fault) in store.faults()? {
        if !fault.matches(command, argv) || (fault.times.is_some() && !store.consume_fault(idx)?) {
            continue;
        }
        if let Some(ms) = fault.latency_ms {
            outcome.delay += Duration::from_millis(ms);
        } else if let Some(secs) = fault.hang_seconds {
            outcome.delay += Duration::from_secs_f64(secs);
        } else if let Some(e) = &fault.error {
            outcome.error = Some(CommandError::Service {
                code: e.code.clone(),
                message: e.message.clone(),
                exit: e.exit_code,
            });
            outcome.error_status = e.status;
            break;
        } else if fault.malformed == Some(true) {
            outcome.malformed = true;
            break;
        } else if fault.crash_after_change == Some(true) {
            outcome.crash = true;
            break;
        }
    }
    Ok(outcome)
}

/// Cuts a JSON document in half so that no parser accepts it, like a reply torn mid-write.
pub fn tear(output: &str) -> String {
    let cut = output
        .char_indices()
        .map(|(i, _)| i)
        .nth(output.chars().count() / 2)
        .unwrap_or(0);
    if cut == 0 {
        "{".to_string()
    } else {
        output[..cut].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(command: Option<&str>, needle: Option<&str>) -> Fault {
        Fault {
            command: command.map(str::to_string),
            argv_contains: needle.map(str::to_string),
            latency_ms: Some(1),
            ..Fault::default()
        }
    }

    #[test]
    fn matching_by_command_prefix_and_argv() {
        let argv: Vec<String> = ["sql", "db", "tde", "show", "--database=db2"]
            .map(String::from)
            .to_vec();
        let cmd = ["sql", "db", "tde", "show"];
        assert!(fault(None, None).matches(&cmd, &argv));
        assert!(fault(Some("sql"), None).matches(&cmd, &argv));
        assert!(fault(Some("SQL db tde show"), Some("db2")).matches(&cmd, &argv));
        assert!(!fault(Some("sql db tde set"), None).matches(&cmd, &argv));
        assert!(!fault(Some("sql db tde show extra"), None).matches(&cmd, &argv));
        assert!(!fault(None, Some("db3")).matches(&cmd, &argv));
    }

    #[test]
    fn torn_output_never_parses() {
        for doc in ["[]\n", "{\n  \"a\": 1\n}\n", "", "\"é\"\n"] {
            assert!(
                serde_json::from_str::<serde_json::Value>(&tear(doc)).is_err(),
                "{doc:?}"
            );
        }
    }
}
