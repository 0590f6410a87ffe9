//! Renderers, and nothing else: each output format in a file of its own turns the data of
//! `crate::model` into text. A renderer never decides anything about Azure and never writes a
//! file; which formats a command accepts is said by the format types here, so that clap refuses
//! a format that does not fit a command before anything runs.

mod csv;
mod json;
mod junit;
mod markdown;
mod runs;
mod table;

pub use runs::{render_run_log, render_runs_table};
pub use table::{render_plan, render_playbook_list};

use crate::model::{Change, ChangeReport, ReportContext, TestReport};
use serde_json::Value;
use std::io::{self, Write};
use std::path::PathBuf;

/// A format that renders test results (`azbook test`, `azbook report merge`).
pub trait TestRenderer {
    fn render_test(
        &self,
        report: &TestReport,
        ctx: &ReportContext,
        out: &mut dyn Write,
    ) -> io::Result<()>;
}

/// A format that renders changes (`azbook plan`, `apply`, `backout`).
pub trait ChangeRenderer {
    fn render_changes(
        &self,
        report: &ChangeReport,
        ctx: &ReportContext,
        view: ChangeView,
        out: &mut dyn Write,
    ) -> io::Result<()>;
}

/// How changes are shown: step by step before they are made (a plan, a backout dry run), or as
/// results after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeView {
    Plan,
    Results,
}

/// The formats of `azbook test`: JUnit for CI gates, CSV for spreadsheets, Markdown for auditors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestFormat {
    Table,
    Json,
    Csv,
    Junit,
    Markdown,
}

/// The formats of plan, apply and backout: Markdown is the change record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeFormat {
    Table,
    Json,
    Markdown,
}

/// The formats of `azbook list`, `runs` and `log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

impl TestFormat {
    /// `colour`: whether a table may colour its statuses (never in a `--report` file).
    pub fn renderer(self, colour: bool) -> Box<dyn TestRenderer> {
        match self {
            TestFormat::Table => Box::new(table::Table { colour }),
            TestFormat::Json => Box::new(json::Json),
            TestFormat::Csv => Box::new(csv::Csv),
            TestFormat::Junit => Box::new(junit::Junit),
            TestFormat::Markdown => Box::new(markdown::Markdown),
        }
    }
}

impl ChangeFormat {
    pub fn renderer(self, colour: bool) -> Box<dyn ChangeRenderer> {
        match self {
            ChangeFormat::Table => Box::new(table::Table { colour }),
            ChangeFormat::Json => Box::new(json::Json),
            ChangeFormat::Markdown => Box::new(markdown::Markdown),
        }
    }
}

/// A format as `--report [FORMAT=]FILE` names it or as the file's extension implies it.
pub trait FileFormat: Copy + Sized + 'static {
    /// Every format, with the names and extensions that choose it.
    const NAMES: &'static [(Self, &'static str)];
    const EXTENSIONS: &'static [(Self, &'static str)];
    /// What the command that takes these formats is, for a message.
    const WHAT: &'static str;
}

impl FileFormat for TestFormat {
    const NAMES: &'static [(Self, &'static str)] = &[
        (TestFormat::Table, "table"),
        (TestFormat::Json, "json"),
        (TestFormat::Csv, "csv"),
        (TestFormat::Junit, "junit"),
        (TestFormat::Junit, "xml"),
        (TestFormat::Markdown, "markdown"),
        (TestFormat::Markdown, "md"),
    ];
    const EXTENSIONS: &'static [(Self, &'static str)] = &[
        (TestFormat::Json, "json"),
        (TestFormat::Csv, "csv"),
        (TestFormat::Junit, "xml"),
        (TestFormat::Markdown, "md"),
        (TestFormat::Markdown, "markdown"),
        (TestFormat::Table, "txt"),
    ];
    const WHAT: &'static str =
        "table, json, csv, junit, markdown; or a .json, .csv, .xml, .md or .txt file";
}

impl FileFormat for ChangeFormat {
    const NAMES: &'static [(Self, &'static str)] = &[
        (ChangeFormat::Table, "table"),
        (ChangeFormat::Json, "json"),
        (ChangeFormat::Markdown, "markdown"),
        (ChangeFormat::Markdown, "md"),
    ];
    const EXTENSIONS: &'static [(Self, &'static str)] = &[
        (ChangeFormat::Json, "json"),
        (ChangeFormat::Markdown, "md"),
        (ChangeFormat::Markdown, "markdown"),
        (ChangeFormat::Table, "txt"),
    ];
    const WHAT: &'static str = "table, json, markdown; or a .json, .md or .txt file (csv and junit reports are for `azbook test`)";
}

/// `--report [FORMAT=]FILE`: the format named, or implied by the file's extension.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportFile<F> {
    pub format: F,
    pub path: PathBuf,
}

impl<F: FileFormat> ReportFile<F> {
    pub fn parse(text: &str) -> Result<ReportFile<F>, String> {
        let named = |name: &str| F::NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f);
        if let Some((format, path)) = text.split_once('=')
            && let Some(format) = named(format)
        {
            return Ok(ReportFile {
                format,
                path: PathBuf::from(path),
            });
        }
        let path = PathBuf::from(text);
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match F::EXTENSIONS.iter().find(|(_, e)| *e == extension) {
            Some((format, _)) => Ok(ReportFile {
                format: *format,
                path,
            }),
            None => Err(format!(
                "cannot tell the format of `{text}` here: write FORMAT=FILE ({})",
                F::WHAT
            )),
        }
    }
}

/// Leaf fields of a JSON object as (dotted path, value), in order.
fn leaves(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(v, &path, out);
            }
        }
        _ if !prefix.is_empty() => out.push((prefix.to_string(), value.clone())),
        _ => {}
    }
}

/// The recorded fields that differ between two states, as `path: before -> after` lines.
pub fn state_changes(before: &Value, after: &Value) -> Vec<String> {
    let mut a = Vec::new();
    leaves(before, "", &mut a);
    let mut b = Vec::new();
    leaves(after, "", &mut b);
    let mut out = Vec::new();
    for (path, old) in &a {
        let new = b
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        if *old != new {
            out.push(format!("{path}: {old} -> {new}"));
        }
    }
    out
}

/// One line a person reads before saying yes.
pub fn summary_line(changes: &[Change]) -> String {
    let azbook = changes.iter().filter(|c| c.has_az_steps()).count();
    let manual = changes.len() - azbook;
    let key_control = changes
        .iter()
        .filter(|c| {
            c.steps.iter().any(|s| {
                s.warning
                    .as_deref()
                    .is_some_and(|w| w.contains("control of the key"))
            })
        })
        .count();
    let mut line = format!("{azbook} change(s) azbook will make");
    if manual > 0 {
        line.push_str(&format!(", {manual} needing a manual step"));
    }
    if key_control > 0 {
        line.push_str(&format!(
            "; {key_control} remove(s) the customer's control of a key"
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn state_changes_lists_only_differing_leaves() {
        let before = json!({"encryption": {"keySource": "Microsoft.Keyvault", "keyVaultProperties": {"keyName": "k"}}});
        let after = json!({"encryption": {"keySource": "Microsoft.Storage", "keyVaultProperties": {"keyName": "k"}}});
        assert_eq!(
            state_changes(&before, &after),
            ["encryption.keySource: \"Microsoft.Keyvault\" -> \"Microsoft.Storage\""]
        );
    }

    #[test]
    fn report_files_name_or_imply_their_format() {
        assert_eq!(
            ReportFile::<TestFormat>::parse("junit=out/results").unwrap(),
            ReportFile {
                format: TestFormat::Junit,
                path: "out/results".into()
            }
        );
        assert_eq!(
            ReportFile::<TestFormat>::parse("audit.md").unwrap().format,
            TestFormat::Markdown
        );
        assert_eq!(
            ReportFile::<TestFormat>::parse("results.xml")
                .unwrap()
                .format,
            TestFormat::Junit
        );
        assert_eq!(
            ReportFile::<TestFormat>::parse("a=b.csv").unwrap().format,
            TestFormat::Csv,
            "an unknown prefix is part of the path"
        );
        assert!(
            ReportFile::<TestFormat>::parse("report")
                .unwrap_err()
                .contains("FORMAT=FILE")
        );
    }

    #[test]
    fn change_reports_refuse_the_formats_of_test() {
        let refused = ReportFile::<ChangeFormat>::parse("results.csv").unwrap_err();
        assert!(
            refused.contains("csv and junit reports are for `azbook test`"),
            "{refused}"
        );
        assert!(ReportFile::<ChangeFormat>::parse("junit=out.xml").is_err());
        assert_eq!(
            ReportFile::<ChangeFormat>::parse("change.md")
                .unwrap()
                .format,
            ChangeFormat::Markdown
        );
    }
}
