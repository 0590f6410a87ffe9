//! `azbook list` and `azbook test`.

use super::{Format, Global, Selection, start_session};
use crate::exit;
use crate::playbook;
use crate::progress::Bar;
use crate::report::{self, PlaybookInfo, TestReport};
use anyhow::{Context, Result};
use std::io::Write;
use std::time::Instant;

pub struct TestOptions {
    pub selection: Selection,
    pub output: Format,
}

/// `azbook list`: the playbooks available (built-in, plus any files named).
pub fn list(playbooks: &[String], output: Format, out: &mut dyn Write) -> Result<i32> {
    let selected = if playbooks.is_empty() {
        playbook::builtin()
    } else {
        playbook::select(playbooks)?
    };
    let infos: Vec<PlaybookInfo> = selected
        .iter()
        .map(|p| PlaybookInfo {
            id: p.id.clone(),
            title: p.title.clone(),
            resource_type: p.resource_type.clone(),
            control: match &p.control.benchmark {
                Some(b) => format!("{} {}", b, p.control.id),
                None => p.control.id.clone(),
            },
            origin: p.origin.clone(),
        })
        .collect();
    match output {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&infos)?)?,
        Format::Table => write!(out, "{}", report::render_playbook_list(&infos))?,
    }
    Ok(exit::OK)
}

/// `azbook test`: audit every target, print the results, exit by what was found.
pub fn test(
    global: &Global,
    options: &TestOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    let started = Instant::now();
    let bar = Bar::new(global.progress, global.verbose, "testing");
    let session = start_session(global, &options.selection, &bar, "test", err)?;
    let outcomes = session.assess(global, &options.selection, &bar)?;
    let playbooks = &session.playbooks;
    let az = &session.az;
    let order: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
    let report = TestReport::new(outcomes.iter().map(|o| o.to_result()).collect(), &order);
    match options.output {
        Format::Json => out.write_all(report.to_json().as_bytes())?,
        Format::Table => {
            out.write_all(report::render_test_table(&report, global.colour).as_bytes())?
        }
    }
    out.flush().context("writing the results")?;
    let s = &report.summary;
    if !global.quiet {
        writeln!(
            err,
            "{} results: {} compliant, {} noncompliant, {} error, {} skipped ({} az calls, {:.1}s)",
            report.results.len(),
            s.compliant,
            s.noncompliant,
            s.error,
            s.skipped,
            az.calls_made(),
            started.elapsed().as_secs_f64()
        )?;
    }
    super::report_usage(global, err)?;
    Ok(if s.error > 0 {
        exit::INCOMPLETE
    } else if s.noncompliant > 0 {
        exit::NONCOMPLIANT
    } else {
        exit::OK
    })
}
