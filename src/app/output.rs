//! Where a run's results go: stdout in the `--output` format, and any `--report FILE`s, each
//! written atomically (a CI job never reads half a JUnit file).

use super::Selection;
use crate::account::Account;
use crate::fsutil::{check_writable, write_atomic};
use crate::model::{ChangeReport, PlaybookDoc, ReportContext, RunCommand, TestReport};
use crate::playbook::Playbook;
use crate::report::{ChangeFormat, ChangeView, ReportFile, TestFormat};
use crate::timefmt;
use anyhow::{Context, Result};
use std::io::Write;

/// What every report says about the run besides its results.
pub(crate) fn context(
    command: RunCommand,
    account: &Account,
    subscriptions: &[String],
    playbooks: &[Playbook],
    selection: &Selection,
    run: Option<String>,
) -> ReportContext {
    ReportContext {
        command: Some(command),
        generated_at: timefmt::now_rfc3339(),
        azbook_version: env!("CARGO_PKG_VERSION").to_string(),
        tenant_id: account.tenant_id.clone(),
        user: account.user.clone(),
        subscriptions: subscriptions.to_vec(),
        scope: super::scope_items(selection),
        playbooks: playbooks.iter().map(PlaybookDoc::from_playbook).collect(),
        run,
        plan_sha256: None,
    }
}

/// Writes a test report to every `--report` file, then to `out` in `format`.
pub(crate) fn emit_test(
    out: &mut dyn Write,
    format: TestFormat,
    colour: bool,
    files: &[ReportFile<TestFormat>],
    report: &TestReport,
    ctx: &ReportContext,
) -> Result<()> {
    emit(out, format, colour, files, &|format, colour, w| {
        format.renderer(colour).render_test(report, ctx, w)
    })
}

/// Writes a change report to every `--report` file, then to `out` in `format`.
pub(crate) fn emit_changes(
    out: &mut dyn Write,
    (format, view): (ChangeFormat, ChangeView),
    colour: bool,
    files: &[ReportFile<ChangeFormat>],
    report: &ChangeReport,
    ctx: &ReportContext,
) -> Result<()> {
    emit(out, format, colour, files, &|format, colour, w| {
        format.renderer(colour).render_changes(report, ctx, view, w)
    })
}

/// How a report is written in a format: the format, whether to colour it, the sink.
type Render<'a, F> = dyn Fn(F, bool, &mut dyn Write) -> std::io::Result<()> + 'a;

/// Prints text for `list`, `runs` and `log`; a closed stdout is no failure (see `emit`).
pub fn print(out: &mut dyn Write, text: &str) -> Result<()> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        printed => printed.context("writing the results"),
    }
}

/// Fails before anything runs if a `--report` file could not be written after it.
pub(crate) fn check_report_files<F>(files: &[ReportFile<F>]) -> Result<()> {
    for file in files {
        check_writable(&file.path).with_context(|| {
            format!(
                "cannot write the report {}; nothing was changed",
                file.path.display()
            )
        })?;
    }
    Ok(())
}

/// Writes the report to every `--report` file (atomically, never coloured), then to stdout in
/// `format`. Every destination is tried even when one fails, so that the results reach all the
/// others; the first failure is returned. A closed stdout (`azbook test | head`) is no failure:
/// the reader has what it wanted, and the run keeps its own exit code.
fn emit<F: Copy>(
    out: &mut dyn Write,
    format: F,
    colour: bool,
    files: &[ReportFile<F>],
    render: &Render<F>,
) -> Result<()> {
    let mut first_failure = None;
    for file in files {
        let mut bytes = Vec::new();
        let written = render(file.format, false, &mut bytes)
            .and_then(|()| write_atomic(&file.path, &bytes))
            .with_context(|| format!("cannot write the report {}", file.path.display()));
        if let Err(e) = written {
            first_failure.get_or_insert(e);
        }
    }
    let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, out);
    let printed = render(format, colour, &mut buffered).and_then(|()| buffered.flush());
    match printed {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            first_failure.get_or_insert(anyhow::Error::new(e).context("writing the results"));
        }
        Ok(()) => {}
    }
    first_failure.map_or(Ok(()), Err)
}
