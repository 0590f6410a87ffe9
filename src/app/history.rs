//! `azbook runs` and `azbook log`: the change-log history, for people and machines.
//!
//! Both only read: a state directory that others can write is a warning here (apply and backout
//! refuse it), and there must be a state directory to read.

use super::output;
use crate::exit;
use crate::journal::{StateDir, StateLocation};
use crate::report;
use crate::report::ListFormat;
use anyhow::Result;
use std::io::Write;

pub fn runs(state_dir: &StateLocation, output: ListFormat, out: &mut dyn Write) -> Result<i32> {
    list_runs(state_dir, output, out, &mut std::io::stderr())
}

/// `runs`, its warnings written to `err`.
fn list_runs(
    state_dir: &StateLocation,
    output: ListFormat,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    let state = StateDir::new(state_dir);
    state.available()?;
    if let Some(warning) = state.open_to_others_summary(&state.open_to_others(None)) {
        writeln!(err, "warning: {warning}")?;
    }
    let runs = state.runs()?;
    match output {
        ListFormat::Json => output::print(out, &(serde_json::to_string_pretty(&runs)? + "\n"))?,
        ListFormat::Table => output::print(out, &report::render_runs_table(&runs))?,
    }
    Ok(exit::OK)
}

/// One run's log; a state directory that others can write is among its warnings.
pub fn log(
    state_dir: &StateLocation,
    run: &str,
    output: ListFormat,
    out: &mut dyn Write,
) -> Result<i32> {
    let state = StateDir::new(state_dir);
    state.available()?;
    let mut log = state.read_run(run)?;
    if let Some(warning) = state.open_to_others_summary(&state.open_to_others(Some(run))) {
        log.warnings.push(warning);
    }
    match output {
        ListFormat::Json => {
            output::print(out, &(serde_json::to_string_pretty(&log.to_json())? + "\n"))?
        }
        ListFormat::Table => output::print(out, &report::render_run_log(&log))?,
    }
    Ok(if log.tampered.is_some() {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reading_a_state_directory_others_can_write_warns_instead_of_refusing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let location = StateLocation::Named(dir.path().to_path_buf());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = list_runs(&location, ListFormat::Table, &mut out, &mut err).unwrap();
        assert_eq!(code, exit::OK);
        assert_eq!(String::from_utf8(out).unwrap(), "no runs recorded\n");
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.starts_with("warning: the state directory") && err.contains("world-writable"),
            "{err}"
        );
        assert!(err.contains("chmod -R o-w"), "{err}");
    }

    #[test]
    fn reading_without_a_state_directory_says_how_to_name_one() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let message = list_runs(
            &StateLocation::Unknown,
            ListFormat::Json,
            &mut out,
            &mut err,
        )
        .unwrap_err()
        .to_string();
        assert!(message.contains("--state-dir"), "{message}");
        let message = log(
            &StateLocation::Unknown,
            "20261129T080102Z-apply-3f2a",
            ListFormat::Json,
            &mut out,
        )
        .unwrap_err()
        .to_string();
        assert!(message.contains("HOME"), "{message}");
        assert!(out.is_empty());
    }
}
