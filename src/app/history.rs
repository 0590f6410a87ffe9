//! `azbook runs` and `azbook log`: the change-log history, for people and machines.

use super::output;
use crate::exit;
use crate::journal::StateDir;
use crate::report;
use crate::report::ListFormat;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

pub fn runs(state_dir: &Path, output: ListFormat, out: &mut dyn Write) -> Result<i32> {
    let runs = StateDir::new(state_dir).runs()?;
    match output {
        ListFormat::Json => output::print(out, &(serde_json::to_string_pretty(&runs)? + "\n"))?,
        ListFormat::Table => output::print(out, &report::render_runs_table(&runs))?,
    }
    Ok(exit::OK)
}

pub fn log(state_dir: &Path, run: &str, output: ListFormat, out: &mut dyn Write) -> Result<i32> {
    let log = StateDir::new(state_dir).read_run(run)?;
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
