//! Where a run's results go: stdout in the `--output` format, and any `--report FILE`s, each
//! written atomically (a CI job never reads half a JUnit file).

use super::Selection;
use crate::fsutil::write_atomic;
use crate::plan::ChangeReport;
use crate::playbook::Playbook;
use crate::report::{self, PlaybookDoc, ReportContext, TestReport};
use crate::session::Account;
use crate::timefmt;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
    Junit,
    Markdown,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Junit => "junit",
            Format::Markdown => "markdown",
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        [
            Format::Table,
            Format::Json,
            Format::Csv,
            Format::Junit,
            Format::Markdown,
        ]
        .into_iter()
        .find(|f| {
            f.name() == name
                || (name == "md" && *f == Format::Markdown)
                || (name == "xml" && *f == Format::Junit)
        })
    }
}

/// `--report [FORMAT=]FILE`: the format named, or inferred from the file's extension.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportFile {
    pub format: Format,
    pub path: PathBuf,
}

impl ReportFile {
    pub fn parse(text: &str) -> Result<ReportFile, String> {
        if let Some((format, path)) = text.split_once('=')
            && let Some(format) = Format::parse(format)
        {
            return Ok(ReportFile {
                format,
                path: PathBuf::from(path),
            });
        }
        let path = PathBuf::from(text);
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let format = match extension {
            "json" => Format::Json,
            "csv" => Format::Csv,
            "xml" => Format::Junit,
            "md" | "markdown" => Format::Markdown,
            "txt" => Format::Table,
            _ => {
                return Err(format!(
                    "cannot tell the format of `{text}`: write FORMAT=FILE (table, json, csv, junit, markdown), or use a .json, .csv, .xml, .md or .txt file"
                ));
            }
        };
        Ok(ReportFile { format, path })
    }
}

/// What every report says about the run besides its results.
pub(crate) fn context(
    command: &str,
    account: &Account,
    subscriptions: &[String],
    playbooks: &[Playbook],
    selection: &Selection,
    run: Option<String>,
) -> ReportContext {
    ReportContext {
        command: command.to_string(),
        generated_at: timefmt::now_rfc3339(),
        azbook_version: env!("CARGO_PKG_VERSION").to_string(),
        tenant_id: account.tenant_id.clone(),
        user: account.user.clone(),
        subscriptions: subscriptions.to_vec(),
        scope: super::scope_items(selection),
        playbooks: playbooks.iter().map(PlaybookDoc::from_playbook).collect(),
        run,
    }
}

/// Writes a test report in `format`; JSON goes out as it is serialized, never whole in memory.
pub(crate) fn write_test(
    out: &mut dyn Write,
    report: &TestReport,
    ctx: &ReportContext,
    format: Format,
    colour: bool,
) -> Result<()> {
    let text = match format {
        Format::Table => report::render_test_table(report, colour),
        Format::Json => return write_json(out, report),
        Format::Csv => report::render_test_csv(report, ctx),
        Format::Junit => report::render_test_junit(report, ctx),
        Format::Markdown => report::render_test_markdown(report, ctx),
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// Writes a change report in `format`; `plan_view`: a plan (or a backout dry run) is shown step
/// by step, results as a table.
pub(crate) fn write_change(
    out: &mut dyn Write,
    report: &ChangeReport,
    ctx: &ReportContext,
    format: Format,
    plan_view: bool,
    colour: bool,
) -> Result<()> {
    let text = match format {
        Format::Table if plan_view => report::render_plan(report, colour),
        Format::Table => report::render_change_table(report, colour),
        Format::Json => return write_json(out, report),
        Format::Markdown => report::render_change_markdown(report, ctx),
        Format::Csv | Format::Junit => bail!(
            "`{}` reports are for `azbook test`; plan, apply and backout write table, json or markdown",
            format.name()
        ),
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// A plan of thousands of changes is tens of megabytes of JSON: it is written as it is made.
fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// How a report is written in a format (the sink, the format, whether to colour it).
pub(crate) type Writer<'a> = dyn Fn(&mut dyn Write, Format, bool) -> Result<()> + 'a;

/// Writes the report to every `--report` file (atomically, never coloured), then to stdout in
/// `format`.
pub(crate) fn emit(
    out: &mut dyn Write,
    format: Format,
    colour: bool,
    files: &[ReportFile],
    write: &Writer,
) -> Result<()> {
    for file in files {
        let mut bytes = Vec::new();
        write(&mut bytes, file.format, false)?;
        write_atomic(&file.path, &bytes)
            .with_context(|| format!("cannot write the report {}", file.path.display()))?;
    }
    let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, out);
    write(&mut buffered, format, colour)?;
    buffered.flush().context("writing the results")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_files_name_or_imply_their_format() {
        assert_eq!(
            ReportFile::parse("junit=out/results").unwrap(),
            ReportFile {
                format: Format::Junit,
                path: "out/results".into()
            }
        );
        assert_eq!(
            ReportFile::parse("audit.md").unwrap().format,
            Format::Markdown
        );
        assert_eq!(
            ReportFile::parse("results.xml").unwrap().format,
            Format::Junit
        );
        assert_eq!(
            ReportFile::parse("a=b.csv").unwrap().format,
            Format::Csv,
            "an unknown prefix is part of the path"
        );
        assert!(
            ReportFile::parse("report")
                .unwrap_err()
                .contains("FORMAT=FILE")
        );
    }
}
