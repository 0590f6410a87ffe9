//! Aligned text tables for people. Colour only when the caller says the terminal wants it.

use super::{ChangeRenderer, ChangeView, TestRenderer, state_changes};
use crate::az::display_command;
use crate::model::{
    Change, ChangeReport, ChangeStatus, PlannedStep, PlaybookInfo, ReportContext, Status, StepKind,
    TestReport,
};
use std::io::{self, Write};

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

pub(crate) fn aligned(rows: &[Vec<String>], colours: &[Option<&str>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let last = c + 1 == columns;
            let pad = if last {
                0
            } else {
                widths[c] - cell.chars().count() + 2
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
    for r in &report.results {
        rows.push(vec![
            r.status.as_str().to_string(),
            r.playbook.clone(),
            short_resource(&r.resource, with_subscription),
            r.message.replace('\n', " "),
        ]);
        colours.push(colour_on.then(|| colour(r.status)));
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
const RESET: &str = "\x1b[0m";

fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("{code}{text}{RESET}")
    } else {
        text.to_string()
    }
}

/// A plan, step by step: what runs, what it changes, what it warns about, how to undo it.
pub fn render_plan(report: &ChangeReport, colour: bool) -> String {
    let mut out = String::new();
    if report.changes.is_empty() {
        out.push_str("No changes: every target is compliant (or was skipped).\n");
    }
    for change in &report.changes {
        plan_change(&mut out, change, colour);
    }
    for e in report.errors.iter().chain(&report.waived) {
        out.push_str(&format!(
            "{}  {}  {}\n    {}\n",
            e.status.as_str(),
            e.playbook,
            short_resource(&e.resource, false),
            e.message
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
            change.playbook,
            short_resource(&change.resource, false)
        ),
    ));
    out.push('\n');
    out.push_str(&format!("    resource: {}\n", change.resource));
    if !change.message.is_empty() {
        out.push_str(&format!("    {}\n", change.message));
    }
    for (i, step) in change.steps.iter().enumerate() {
        plan_step(out, i + 1, step, colour);
    }
    let diff = state_changes(&change.before, &change.after);
    if !diff.is_empty() {
        out.push_str("  changes:\n");
        for line in diff {
            out.push_str(&format!("       {line}\n"));
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
                out.push_str(&format!("       $ {}\n", display_command(argv)));
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
    out.push_str(&format!("  {number}. {}{tags}\n", step.name));
    if step.kind == StepKind::Az {
        out.push_str(&format!("       $ {}\n", display_command(&step.argv)));
    }
    if let Some(text) = &step.instructions {
        for line in text.lines() {
            out.push_str(&format!("       | {line}\n"));
        }
    }
    if let Some(w) = &step.warning {
        out.push_str(&paint(colour, YELLOW, &format!("       ! {w}")));
        out.push('\n');
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
                .fold(c.message.replace('\n', " "), |text, w| {
                    format!("{text}; warning: {w}")
                }),
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
        _: &ReportContext,
        view: ChangeView,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let text = match view {
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
}
