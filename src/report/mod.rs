//! Renderers, and nothing else: each output format in a file of its own turns the data of
//! `crate::model` into text. A renderer never decides anything about Azure and never writes a
//! file; which formats a command accepts is said by the format types here, so that clap refuses
//! a format that does not fit a command before anything runs.
//!
//! Text that came from Azure or from a file (names, ids, messages, evidence, tags, user names,
//! argvs, playbook titles) reaches a person only through [`printable`], [`one_line`] or
//! [`command_line`], so that no value can move the cursor, recolour the terminal or reorder what
//! is read. JSON is the exception: it is data for programs, written exactly.

mod csv;
mod json;
mod junit;
mod markdown;
mod runs;
mod table;

pub use runs::{render_run_log, render_runs_table};
pub use table::{render_plan, render_playbook_list};

use crate::az::display_command;
use crate::model::{Change, ChangeReport, ReportContext, Status, TestReport, TestResult};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;

/// Results of one playbook in report order, with the resource they lie under when they are
/// child resources (an account's encryption scopes, a server's databases): tables and
/// markdown list them under a line for that resource, so that one glance says which accounts
/// hold customer-key data.
pub(crate) struct Group<'r> {
    /// The parent's ARM id and the children's kind as the id spells it (`encryptionScopes`).
    pub parent: Option<(String, String)>,
    pub results: Vec<&'r TestResult>,
}

impl Group<'_> {
    /// `2 of 5 encryption scopes noncompliant` (and errors, when there are any), the kind as
    /// the ARM id spells it (`encryptionScopes`) put into words.
    pub fn tally(&self, kind: &str) -> String {
        let count = |status: Status| self.results.iter().filter(|r| r.status == status).count();
        let mut words = String::new();
        for c in kind.chars() {
            if c.is_ascii_uppercase() {
                words.push(' ');
            }
            words.push(c.to_ascii_lowercase());
        }
        let mut text = format!(
            "{} of {} {words} noncompliant",
            count(Status::Noncompliant),
            self.results.len()
        );
        match count(Status::Error) {
            0 => {}
            errors => text.push_str(&format!(", {errors} could not be read")),
        }
        text
    }
}

/// Consecutive results of the same playbook under the same parent form one group; a result
/// that is not a child resource (or whose listing failed) is a group of its own.
pub(crate) fn grouped<'r>(results: impl IntoIterator<Item = &'r TestResult>) -> Vec<Group<'r>> {
    let mut groups: Vec<Group<'r>> = Vec::new();
    for result in results {
        let parent = crate::armid::parent(&result.resource)
            .map(|(id, kind)| (id.to_string(), kind.to_string()));
        match groups.last_mut() {
            Some(last)
                if parent.is_some()
                    && last.parent == parent
                    && last.results[0].playbook == result.playbook =>
            {
                last.results.push(result)
            }
            _ => groups.push(Group {
                parent,
                results: vec![result],
            }),
        }
    }
    groups
}

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

/// The bidirectional controls (Unicode's Bidi_Control property): marks, embeddings,
/// overrides and isolates. Invisible, they make a terminal or an editor show text in another
/// order than it is stored: `"abc\u{202e}fdp.exe"` reads as `abcexe.pdf`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A character that must not reach a person's terminal or editor as it is: the C0 controls
/// (U+0000 to U+001F: escape, carriage return, backspace, tab ...), DEL, the C1 controls
/// (U+0080 to U+009F, among them the one-byte CSI) and the bidirectional controls.
fn unsafe_char(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// What a line break in the text becomes.
#[derive(Clone, Copy, PartialEq)]
enum Breaks {
    /// Kept, for a format that lays out lines of its own (a log field, a CSV or XML value).
    Keep,
    /// A space, for a table cell or anything else that must stay on one line.
    Space,
}

fn escape(text: &str, breaks: Breaks) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        // A line break is LF, or CR LF; a CR alone returns to the start of the line, where the
        // text after it would overwrite what was shown.
        let crlf = c == '\r' && chars.peek() == Some(&'\n');
        if c == '\n' || crlf {
            if breaks == Breaks::Keep {
                out.push(c);
            } else {
                if crlf {
                    chars.next();
                }
                out.push(' ');
            }
        } else if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Text from Azure or a file made safe to show: every control character and bidirectional
/// control is written visibly the way Rust's `escape_default` does (`\u{1b}`, `\u{202e}`, `\t`,
/// `\r`), except line breaks (LF, CR LF), which are kept. Every other character, whatever its
/// script, is left as it is.
pub(crate) fn printable(text: &str) -> String {
    escape(text, Breaks::Keep)
}

/// As [`printable`], on one line: each line break becomes a space.
pub(crate) fn one_line(text: &str) -> String {
    escape(text, Breaks::Space)
}

/// An argv as a POSIX shell reads it ([`display_command`], which already writes control
/// characters as `$'\x1b'`), with a word that holds a bidirectional control also written in
/// ANSI-C quotes (`$'\u202e'`): still pasteable, as bash, zsh and ksh read it back as the same
/// argument, and never shown raw.
pub(crate) fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            if word.chars().any(is_bidi_control) {
                ansi_c_quoted(word)
            } else {
                display_command(std::slice::from_ref(word))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `$'...'` with every character a person could not see or that would end the quotes escaped.
fn ansi_c_quoted(word: &str) -> String {
    let mut out = String::from("$'");
    for c in word.chars() {
        match c {
            '\n' => out.push_str(r"\n"),
            '\t' => out.push_str(r"\t"),
            '\r' => out.push_str(r"\r"),
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            c if unsafe_char(c) && c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(playbook: &str, resource: &str, status: Status) -> TestResult {
        TestResult {
            playbook: playbook.into(),
            resource: resource.into(),
            status,
            evidence: Default::default(),
            message: String::new(),
        }
    }

    #[test]
    fn child_resources_are_grouped_under_their_parent() {
        let account =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1";
        let scope = |name: &str, status| {
            result(
                "storage-encryption-scope-mmk",
                &format!("{account}/encryptionScopes/{name}"),
                status,
            )
        };
        let results = [
            result("storage-account-mmk", account, Status::Compliant),
            scope("a", Status::Noncompliant),
            scope("b", Status::Compliant),
            scope("c", Status::Error),
            result(
                "storage-encryption-scope-mmk",
                &format!("{}2/encryptionScopes/x", account),
                Status::Compliant,
            ),
        ];
        let groups = grouped(&results);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].parent, None, "an account lies under nothing");
        let (parent, kind) = groups[1].parent.clone().unwrap();
        assert_eq!(
            (parent.as_str(), kind.as_str()),
            (account, "encryptionScopes")
        );
        assert_eq!(groups[1].results.len(), 3);
        assert_eq!(
            groups[1].tally(&kind),
            "1 of 3 encryption scopes noncompliant, 1 could not be read"
        );
        assert_eq!(groups[2].results.len(), 1, "another account, another group");
    }

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

    #[test]
    fn c0_controls_and_del_are_shown_escaped() {
        assert_eq!(
            printable("a\u{0}b\u{7}c\u{8}d\u{1b}[2Je\tf\u{7f}g"),
            r"a\u{0}b\u{7}c\u{8}d\u{1b}[2Je\tf\u{7f}g"
        );
        assert_eq!(
            printable("ok\rnoncompliant"),
            r"ok\rnoncompliant",
            "a CR alone would let the text after it overwrite the line"
        );
        assert_eq!(
            (0..0x20u8)
                .map(char::from)
                .filter(|c| printable(&c.to_string()) == c.to_string())
                .collect::<Vec<_>>(),
            ['\n'],
            "every C0 control but LF"
        );
    }

    #[test]
    fn c1_controls_are_shown_escaped() {
        // U+009B is the one-character CSI: `\u{9b}2J` clears the screen on some terminals.
        assert_eq!(printable("a\u{9b}2Jb\u{85}c"), r"a\u{9b}2Jb\u{85}c");
        assert!(
            ('\u{80}'..='\u{9f}')
                .all(|c| printable(&c.to_string()) == c.escape_default().to_string())
        );
    }

    #[test]
    fn bidirectional_controls_are_shown_escaped() {
        assert_eq!(
            printable("invoice-\u{202e}fdp.exe"),
            r"invoice-\u{202e}fdp.exe"
        );
        for c in [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            assert_eq!(
                printable(&format!("a{c}b")),
                format!(r"a\u{{{:x}}}b", c as u32)
            );
        }
    }

    #[test]
    fn line_breaks_are_kept_or_joined_and_other_text_is_left_alone() {
        let text = "line 1\nline 2\r\nline 3";
        assert_eq!(printable(text), text);
        assert_eq!(one_line(text), "line 1 line 2 line 3");
        assert_eq!(one_line("a\r\u{1b}b"), r"a\r\u{1b}b");
        let unicode = "rg-données/ストレージ/密钥 ✓ \\u{1b} \u{a0}";
        assert_eq!(
            printable(unicode),
            unicode,
            "letters of any script, and backslashes"
        );
        assert_eq!(one_line(unicode), unicode);
    }

    #[test]
    fn commands_show_bidirectional_controls_in_ansi_c_quotes() {
        let argv: Vec<String> = [
            "az",
            "group",
            "show",
            "--name=rg-\u{202e}gpj.exe",
            "--x=a'b",
        ]
        .map(str::to_string)
        .to_vec();
        let line = command_line(&argv);
        assert_eq!(
            line,
            r"az group show $'--name=rg-\u202egpj.exe' '--x=a'\''b'"
        );
        let hostile = [
            "--name=\u{1b}[31m\u{202e}x\u{9b}'\\\n\t\u{2066}",
            "--tags=データ",
            "",
        ]
        .map(str::to_string);
        let line = command_line(&hostile);
        assert!(!line.chars().any(unsafe_char), "{line}");
        // What is shown reads back, in a shell, as the same arguments.
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s\\0' {line}"))
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("bash");
        let words: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .strip_suffix('\0')
            .unwrap()
            .split('\0')
            .collect();
        assert_eq!(words, hostile);
    }
}
