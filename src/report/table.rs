//! Aligned text tables for people. Colour only when the caller says the terminal wants it.
//!
//! Every value is shown through `one_line` or `command_line` (control and bidirectional
//! characters escaped), and columns are aligned by the width a terminal gives each character
//! (two columns for a CJK one), not by bytes or chars.

use super::{
    ChangeRenderer, ChangeView, TestRenderer, command_line, grouped, one_line, printable,
    state_changes,
};
use crate::model::{
    Change, ChangeReport, ChangeStatus, PlannedStep, PlaybookInfo, ReportContext, RunCommand,
    Status, StepKind, TestReport, TestResult,
};
use std::io::{self, Write};
use unicode_width::UnicodeWidthStr;

pub(crate) fn colour(status: Status) -> &'static str {
    match status {
        Status::Compliant => "\x1b[32m",
        Status::Noncompliant => "\x1b[31m",
        Status::Error => "\x1b[1;33m",
        Status::Skipped | Status::Waived => "\x1b[2m",
    }
}

/// `/subscriptions/S/resourceGroups/RG/providers/P/T/N[/T2/N2]` shown as `RG/N[/N2]`; the
/// subscription prefix is added when a run covers more than one.
pub(crate) fn short_resource(id: &str, with_subscription: bool) -> String {
    let parts: Vec<&str> = id.split('/').collect();
    let find = |key: &str| {
        parts
            .iter()
            .position(|p| p.eq_ignore_ascii_case(key))
            .and_then(|i| parts.get(i + 1).copied())
    };
    let (Some(sub), Some(rg)) = (find("subscriptions"), find("resourceGroups")) else {
        return id.to_string();
    };
    let mut out = String::new();
    if with_subscription {
        out.push_str(sub);
        out.push(':');
    }
    out.push_str(rg);
    if let Some(p) = parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("providers"))
    {
        // After the provider namespace come type/name pairs.
        for name in parts[p + 2..].iter().skip(1).step_by(2) {
            out.push('/');
            out.push_str(name);
        }
    }
    out
}

fn subscription_of(id: &str) -> Option<String> {
    let mut it = id.split('/');
    while let Some(p) = it.next() {
        if p.eq_ignore_ascii_case("subscriptions") {
            return it.next().map(|s| s.to_lowercase());
        }
    }
    None
}

/// Rows as columns two spaces apart, each cell on one line with control and bidirectional
/// characters escaped, padded to the widest cell by display width. `colours[i]`, when given,
/// colours the first cell of row `i`: azbook's own escape codes, added after the escaping.
pub(crate) fn aligned(rows: &[Vec<String>], colours: &[Option<&str>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|cell| one_line(cell)).collect())
        .collect();
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].width()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let last = c + 1 == columns;
            let pad = if last {
                0
            } else {
                widths[c] - cell.width() + 2
            };
            match colours.get(i).copied().flatten().filter(|_| c == 0) {
                Some(code) => line.push_str(&format!("{code}{cell}{RESET}")),
                None => line.push_str(cell),
            }
            line.push_str(&" ".repeat(pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn render_test_table(report: &TestReport, colour_on: bool) -> String {
    let mut subscriptions: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| subscription_of(&r.resource))
        .collect();
    subscriptions.sort();
    subscriptions.dedup();
    let with_subscription = subscriptions.len() > 1;
    let mut rows = vec![vec![
        "STATUS".to_string(),
        "PLAYBOOK".to_string(),
        "RESOURCE".to_string(),
        "DETAIL".to_string(),
    ]];
    let mut colours = vec![None];
    for group in grouped(&report.results) {
        let child_name = |r: &TestResult| -> String {
            let name = r.resource.rsplit('/').next().unwrap_or_default();
            format!("  {name}")
        };
        if let Some((parent, kind)) = &group.parent {
            rows.push(vec![
                String::new(),
                group.results[0].playbook.clone(),
                short_resource(parent, with_subscription),
                group.tally(kind),
            ]);
            colours.push(None);
        }
        for r in &group.results {
            let resource = match group.parent {
                Some(_) => child_name(r),
                None => short_resource(&r.resource, with_subscription),
            };
            rows.push(vec![
                r.status.as_str().to_string(),
                r.playbook.clone(),
                resource,
                r.message.clone(),
            ]);
            colours.push(colour_on.then(|| colour(r.status)));
        }
    }
    aligned(&rows, &colours)
}

pub fn render_playbook_list(playbooks: &[PlaybookInfo]) -> String {
    let mut rows = vec![vec![
        "ID".to_string(),
        "RESOURCE TYPE".to_string(),
        "CONTROL".to_string(),
        "TITLE".to_string(),
    ]];
    for p in playbooks {
        rows.push(vec![
            p.id.clone(),
            p.resource_type.clone(),
            p.control.clone(),
            p.title.clone(),
        ]);
    }
    aligned(&rows, &[])
}

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const BOLD_RED: &str = "\x1b[1;31m";
const RESET: &str = "\x1b[0m";

fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("{code}{text}{RESET}")
    } else {
        text.to_string()
    }
}

/// Why a plan holds no change, without claiming more than is known: targets that could not be
/// read may need a change nobody has seen.
fn no_changes(report: &ChangeReport) -> String {
    match report.errors.len() {
        0 if report.waived.is_empty() => {
            "No changes: every target read is compliant (or was skipped).\n".into()
        }
        0 => "No changes: every target read is compliant, skipped or waived.\n".into(),
        n => format!(
            "No change derived, but {n} target(s) could not be read: whether they need one is not known (see below).\n"
        ),
    }
}

/// A plan, step by step: what runs, what it changes, what it warns about, how to undo it.
pub fn render_plan(report: &ChangeReport, colour: bool) -> String {
    let mut out = String::new();
    if report.changes.is_empty() {
        out.push_str(&no_changes(report));
    }
    let destructive: usize = report
        .changes
        .iter()
        .map(|c| c.destructive_steps().count())
        .sum();
    if destructive > 0 {
        out.push_str(&paint(
            colour,
            BOLD_RED,
            &format!(
                "!! DESTRUCTIVE: {destructive} step(s) below delete, purge, revoke, regenerate keys or grant access, and azbook cannot undo them; apply runs them only with --allow-destructive"
            ),
        ));
        out.push_str("\n\n");
    }
    for change in &report.changes {
        plan_change(&mut out, change, colour);
    }
    for e in report.errors.iter().chain(&report.waived) {
        out.push_str(&format!(
            "{}  {}  {}\n    {}\n",
            e.status.as_str(),
            one_line(&e.playbook),
            one_line(&short_resource(&e.resource, false)),
            one_line(&e.message)
        ));
    }
    out
}

/// One target's change: its steps, the fields they change, and how to undo them.
fn plan_change(out: &mut String, change: &Change, colour: bool) {
    out.push_str(&paint(
        colour,
        BOLD,
        &format!(
            "{}  {}  {}",
            change.status.as_str(),
            one_line(&change.playbook),
            one_line(&short_resource(&change.resource, false))
        ),
    ));
    out.push('\n');
    out.push_str(&format!("    resource: {}\n", one_line(&change.resource)));
    if !change.message.is_empty() {
        out.push_str(&format!("    {}\n", one_line(&change.message)));
    }
    for (i, step) in change.steps.iter().enumerate() {
        plan_step(out, i + 1, step, colour);
    }
    let diff = state_changes(&change.before, &change.after);
    if !diff.is_empty() {
        out.push_str("  changes:\n");
        for line in diff {
            out.push_str(&format!("       {}\n", one_line(&line)));
        }
    }
    if change.has_az_steps() {
        if change.backout.is_empty() {
            out.push_str(&paint(
                colour,
                RED,
                "  backout: none (azbook cannot undo this change)",
            ));
            out.push('\n');
        } else {
            out.push_str("  backout:\n");
            for argv in &change.backout {
                out.push_str(&format!("       $ {}\n", command_line(argv)));
            }
        }
    }
    out.push('\n');
}

/// Step `number` (counted from 1): its name, what a person should know about it, and the
/// command it runs or the instructions it gives.
fn plan_step(out: &mut String, number: usize, step: &PlannedStep, colour: bool) {
    let mut tags = Vec::new();
    if step.kind == StepKind::Manual {
        tags.push("manual: azbook never runs it");
    }
    if !step.reversible {
        tags.push("cannot be undone");
    }
    let tags = if tags.is_empty() {
        String::new()
    } else {
        format!(" ({})", tags.join(", "))
    };
    out.push_str(&format!("  {number}. {}{tags}\n", one_line(&step.name)));
    if step.kind == StepKind::Az {
        out.push_str(&format!("       $ {}\n", command_line(&step.argv)));
    }
    if let Some(text) = &step.instructions {
        for line in printable(text).lines() {
            out.push_str(&format!("       | {line}\n"));
        }
    }
    if let Some(what) = step.destructive() {
        let warning = step
            .warning
            .as_deref()
            .map(|w| format!(": {}", one_line(w)))
            .unwrap_or_default();
        out.push_str(&paint(
            colour,
            BOLD_RED,
            &format!("       !! DESTRUCTIVE: {what}, cannot be undone{warning}"),
        ));
        out.push('\n');
    } else if let Some(w) = &step.warning {
        out.push_str(&paint(colour, YELLOW, &format!("       ! {}", one_line(w))));
        out.push('\n');
    }
    if let Some(why) = &step.long_running {
        out.push_str(&format!(
            "       ~ long-running: {}; azbook waits for it up to --change-timeout\n",
            one_line(why)
        ));
    }
}

/// The result of apply or backout: one line per target.
pub fn render_change_table(report: &ChangeReport, colour: bool) -> String {
    let mut rows = vec![vec![
        "STATUS".to_string(),
        "PLAYBOOK".into(),
        "RESOURCE".into(),
        "DETAIL".into(),
    ]];
    let mut colours = vec![None];
    for c in &report.changes {
        rows.push(vec![
            c.status.as_str().to_string(),
            c.playbook.clone(),
            short_resource(&c.resource, false),
            c.warnings
                .iter()
                .fold(c.message.clone(), |text, w| format!("{text}; warning: {w}")),
        ]);
        let code = match c.status {
            ChangeStatus::Done | ChangeStatus::Restored => "\x1b[32m",
            ChangeStatus::Failed | ChangeStatus::Drifted => "\x1b[31m",
            _ => "\x1b[2m",
        };
        colours.push(colour.then_some(code));
    }
    for e in report.errors.iter().chain(&report.waived) {
        rows.push(vec![
            e.status.as_str().into(),
            e.playbook.clone(),
            short_resource(&e.resource, false),
            e.message.clone(),
        ]);
        colours.push(colour.then_some(self::colour(e.status)));
    }
    aligned(&rows, &colours)
}

/// Aligned text for people; `colour` when the terminal wants it.
pub struct Table {
    pub colour: bool,
}

impl TestRenderer for Table {
    fn render_test(
        &self,
        report: &TestReport,
        _: &ReportContext,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        out.write_all(render_test_table(report, self.colour).as_bytes())
    }
}

impl ChangeRenderer for Table {
    fn render_changes(
        &self,
        report: &ChangeReport,
        ctx: &ReportContext,
        view: ChangeView,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let text = match view {
            // A backout dry run with nothing in it is about the change log, not compliance.
            ChangeView::Plan
                if ctx.command == Some(RunCommand::Backout)
                    && report.changes.is_empty()
                    && report.errors.is_empty() =>
            {
                "Nothing to back out: the change log holds no change to restore.\n".to_string()
            }
            ChangeView::Plan => render_plan(report, self.colour),
            ChangeView::Results => render_change_table(report, self.colour),
        };
        out.write_all(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, TestResult};

    #[test]
    fn short_names_keep_group_and_names() {
        let id = "/subscriptions/s1/resourceGroups/-rg.ops(1)/providers/Microsoft.Sql/servers/sql1/databases/db1";
        assert_eq!(short_resource(id, false), "-rg.ops(1)/sql1/db1");
        assert_eq!(short_resource(id, true), "s1:-rg.ops(1)/sql1/db1");
        assert_eq!(
            short_resource("/subscriptions/s1", false),
            "/subscriptions/s1"
        );
    }

    #[test]
    fn table_is_aligned_and_plain_without_colour() {
        let report = TestReport::new(
            vec![TestResult {
                playbook: "p".into(),
                resource: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st".into(),
                status: Status::Noncompliant,
                evidence: Evidence::default(),
                message: "customer key".into(),
            }],
            &["p"],
        );
        let text = render_test_table(&report, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].find("PLAYBOOK"), lines[1].find("p "));
        assert_eq!(lines[0].find("RESOURCE"), lines[1].find("rg/st"));
        assert!(!text.contains('\x1b'));
        assert!(render_test_table(&report, true).contains("\x1b[31mnoncompliant\x1b[0m"));
    }

    #[test]
    fn columns_line_up_by_display_width() {
        let rows: Vec<Vec<String>> = [
            ["ID", "TITLE", "X"],
            ["データベース", "a", "x"],
            ["db", "密钥轮换", "y"],
            ["cafe\u{301}", "tab\there", "z"],
        ]
        .iter()
        .map(|r| r.map(str::to_string).to_vec())
        .collect();
        assert_eq!(
            aligned(&rows, &[]),
            concat!(
                "ID            TITLE      X\n",
                "データベース  a          x\n",
                "db            密钥轮换   y\n",
                "cafe\u{301}          tab\\there  z\n",
            ),
            "a CJK character takes two columns, a combining accent none"
        );
    }

    #[test]
    fn values_are_shown_escaped_and_only_azbook_colours() {
        let report = TestReport::new(
            vec![TestResult {
                playbook: "p".into(),
                resource: "/subscriptions/s/resourceGroups/rg-\u{1b}]8;;x\u{7}/providers/Microsoft.Storage/storageAccounts/st".into(),
                status: Status::Noncompliant,
                evidence: Evidence::default(),
                message: "key \u{1b}[2J\u{202e}yek\u{9b}0m\nnext".into(),
            }],
            &["p"],
        );
        let text = render_test_table(&report, true);
        assert!(text.contains(r"rg-\u{1b}]8;;x\u{7}/st"), "{text}");
        assert!(
            text.contains(r"key \u{1b}[2J\u{202e}yek\u{9b}0m next"),
            "{text}"
        );
        let own = text.replace("\x1b[31m", "").replace("\x1b[0m", "");
        assert!(text.contains("\x1b[31mnoncompliant\x1b[0m"));
        assert!(
            !own.contains(|c: char| c.is_control() && c != '\n' || c == '\u{202e}'),
            "{own:?}"
        );
    }

    #[test]
    fn a_plan_shows_values_and_commands_escaped() {
        use serde_json::json;
        let change = Change {
            playbook: "p".into(),
            resource: "/subscriptions/s/resourceGroups/rg\u{202e}/providers/Microsoft.Storage/storageAccounts/st".into(),
            subscription: "s".into(),
            steps: vec![PlannedStep {
                index: 0,
                name: "switch\u{1b}[8m".into(),
                kind: StepKind::Az,
                argv: vec!["az".into(), "--resource-group=rg\u{202e}".into()],
                instructions: None,
                reversible: true,
                warning: Some("careful\u{9b}".into()),
            long_running: None,
            }],
            before: json!({"tags": {"owner": "a\u{202e}"}}),
            after: json!({"tags": {"owner": "b"}}),
            backout: vec![vec!["az".into(), "--name=\u{1b}x".into()]],
            status: ChangeStatus::Pending,
            message: "m\u{1b}".into(),
            warnings: vec![],
            context: serde_json::Value::Null,
            differences: Vec::new(),
        };
        let text = render_plan(&ChangeReport::new(None, vec![change], vec![]), false);
        for shown in [
            r"pending  p  rg\u{202e}/st",
            r"resource: /subscriptions/s/resourceGroups/rg\u{202e}/providers",
            r"    m\u{1b}",
            r"1. switch\u{1b}[8m",
            r"$ az $'--resource-group=rg\u202e'",
            r"! careful\u{9b}",
            r#"tags.owner: "a\u{202e}" -> "b""#,
            r"$ az $'--name=\x1bx'",
        ] {
            assert!(text.contains(shown), "no {shown:?} in\n{text}");
        }
        assert!(
            !text.contains(|c: char| c.is_control() && c != '\n' || c == '\u{202e}'),
            "{text:?}"
        );
    }

    #[test]
    fn a_destructive_step_is_marked_with_its_warning() {
        use serde_json::json;
        let step = |name: &str, argv: &[&str], warning: &str| PlannedStep {
            index: 0,
            name: name.into(),
            kind: StepKind::Az,
            argv: argv.iter().map(|a| a.to_string()).collect(),
            instructions: None,
            reversible: false,
            warning: Some(warning.into()),
            long_running: None,
        };
        let change = Change {
            playbook: "p".into(),
            resource:
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st"
                    .into(),
            subscription: "s".into(),
            steps: vec![
                step(
                    "switch",
                    &["az", "storage", "account", "update", "--name=st"],
                    "key control goes",
                ),
                step(
                    "delete it",
                    &["az", "storage", "account", "delete", "--name=st", "--yes"],
                    "the data is gone\u{1b}",
                ),
            ],
            before: json!({}),
            after: json!({}),
            backout: vec![],
            status: ChangeStatus::Pending,
            message: String::new(),
            warnings: vec![],
            context: serde_json::Value::Null,
            differences: Vec::new(),
        };
        let text = render_plan(&ChangeReport::new(None, vec![change], vec![]), false);
        assert!(
            text.starts_with("!! DESTRUCTIVE: 1 step(s) below delete, purge, revoke, regenerate keys or grant access"),
            "{text}"
        );
        assert!(text.contains("--allow-destructive"), "{text}");
        assert!(
            text.contains(
                "\n       !! DESTRUCTIVE: deletes, cannot be undone: the data is gone\\u{1b}\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\n       ! key control goes\n"),
            "an ordinary warning stays: {text}"
        );
        assert_eq!(text.matches("!! DESTRUCTIVE").count(), 2, "{text}");
    }
}
