//! Markdown for the people who sign things off: the audit report of `test`, for auditors, and
//! the change record of `plan`, `apply` and `backout`, for a change-advisory board.
//!
//! Every value comes from Azure, a playbook or the command line, so none may turn into markup:
//! values in prose and table cells are escaped ([`esc`]), values that must be read exactly
//! (expressions, field values, ids) are code spans, and commands are fenced code blocks, each
//! argv quoted for a POSIX shell so that it can be pasted as it stands. In all of them control
//! and bidirectional characters are shown escaped (`\u{1b}`, `\u{202e}`), as in every format
//! for people, so that neither a terminal showing the file nor an editor obeys them.

use super::csv::ArmParts;
use super::table::short_resource;
use super::{
    ChangeRenderer, ChangeView, TestRenderer, command_line, grouped, one_line, printable,
    state_changes, summary_line,
};
use crate::model::{
    Change, ChangeReport, Evidence, PlaybookDoc, ReportContext, RunCommand, Status, StepKind,
    Summary, TestReport, TestResult, playbook_ids,
};
use std::fmt::Write as _;
use std::io::{self, Write};

// ---------------------------------------------------------------------------------------------
// The audit report

const STATUSES: [Status; 5] = [
    Status::Compliant,
    Status::Noncompliant,
    Status::Error,
    Status::Skipped,
    Status::Waived,
];

/// An audit report: what was audited, by whom and where; the counts; then, per control, what
/// each playbook tests, its verdict per resource and the evidence behind each verdict.
pub fn render_test_markdown(report: &TestReport, ctx: &ReportContext) -> String {
    let mut out = String::from("# Audit report\n\n");
    let _ = writeln!(
        out,
        "Results of `azbook {}`: {} resource(s) tested with {} playbook(s).\n",
        command(ctx, RunCommand::Test),
        report.results.len(),
        playbook_ids(ctx, &report.results).len()
    );
    out.push_str("## About this audit\n\n");
    out.push_str(&about(ctx));
    out.push_str("\n## Summary\n\n");
    out.push_str(&summary_tables(report, ctx));
    out.push_str("\n## Results by control\n");
    let multi = spans_subscriptions(report.results.iter().map(|r| r.resource.as_str()), ctx);
    for (heading, ids) in controls(ctx, &report.results) {
        let _ = writeln!(out, "\n### {heading}");
        for id in ids {
            out.push_str(&playbook_results(report, ctx, id, multi));
        }
    }
    out
}

fn summary_tables(report: &TestReport, ctx: &ReportContext) -> String {
    let s = &report.summary;
    let mut rows: Vec<Vec<String>> = STATUSES
        .iter()
        .map(|st| vec![st.as_str().to_string(), count(s, *st).to_string()])
        .collect();
    rows.push(vec!["**total**".into(), report.results.len().to_string()]);
    let mut out = table(&["Status", "Resources"], &rows);
    out.push('\n');
    let per_playbook: Vec<Vec<String>> = playbook_ids(ctx, &report.results)
        .into_iter()
        .map(|id| {
            let results: Vec<TestResult> = of_playbook(report, id).cloned().collect();
            let s = Summary::of(&results);
            let control = ctx.playbook(id).map_or(String::new(), control_label);
            let mut row = vec![esc(id), esc(&control)];
            row.extend(STATUSES.iter().map(|st| count(&s, *st).to_string()));
            row
        })
        .collect();
    let mut header = vec!["Playbook", "Control"];
    header.extend(STATUSES.iter().map(|s| s.as_str()));
    out.push_str(&table(&header, &per_playbook));
    out
}

fn count(s: &Summary, status: Status) -> usize {
    match status {
        Status::Compliant => s.compliant,
        Status::Noncompliant => s.noncompliant,
        Status::Error => s.error,
        Status::Skipped => s.skipped,
        Status::Waived => s.waived,
    }
}

fn of_playbook<'a>(report: &'a TestReport, id: &'a str) -> impl Iterator<Item = &'a TestResult> {
    report.results.iter().filter(move |r| r.playbook == id)
}

/// `CIS ... v4.0.0 2.1.1.1.1: Ensure ...`, as far as the playbook says.
fn control_label(p: &PlaybookDoc) -> String {
    let benchmark = p.benchmark.as_deref().unwrap_or_default();
    let id = [benchmark, p.control_id.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    match (id.is_empty(), p.control_title.is_empty()) {
        (_, true) => id,
        (true, false) => p.control_title.clone(),
        (false, false) => format!("{id}: {}", p.control_title),
    }
}

/// Playbooks grouped by the control they implement (as escaped headings), in report order; a
/// playbook the context does not describe is grouped apart.
fn controls<'a>(ctx: &'a ReportContext, results: &'a [TestResult]) -> Vec<(String, Vec<&'a str>)> {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for id in playbook_ids(ctx, results) {
        let heading = match ctx.playbook(id).map(control_label) {
            Some(label) if !label.is_empty() => format!("Control: {}", esc(&label)),
            _ => "Control not recorded".to_string(),
        };
        match groups.iter_mut().find(|(h, _)| *h == heading) {
            Some((_, ids)) => ids.push(id),
            None => groups.push((heading, vec![id])),
        }
    }
    groups
}

fn playbook_results(report: &TestReport, ctx: &ReportContext, id: &str, multi: bool) -> String {
    let mut out = String::new();
    let doc = ctx.playbook(id);
    let title = doc.map_or("", |p| p.title.as_str());
    let _ = writeln!(out, "\n#### Playbook {}{}\n", esc(id), titled(title));
    match doc {
        Some(p) => out.push_str(&playbook_facts(p)),
        None => out.push_str("This report does not describe the playbook.\n"),
    }
    let results: Vec<&TestResult> = of_playbook(report, id).collect();
    if results.is_empty() {
        out.push_str("\nNo resource in scope.\n");
        return out;
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for group in grouped(results.iter().copied()) {
        if let Some((parent, kind)) = &group.parent {
            rows.push(vec![
                String::new(),
                format!("**{}**", esc(&short_resource(parent, multi))),
                format!("**{}**", esc(&group.tally(kind))),
            ]);
        }
        rows.extend(group.results.iter().map(|r| {
            vec![
                r.status.as_str().to_string(),
                esc(&short_resource(&r.resource, multi)),
                esc(&r.message),
            ]
        }));
    }
    out.push('\n');
    out.push_str(&table(&["Status", "Resource", "Message"], &rows));
    out.push_str("\n##### Evidence\n");
    for r in results {
        let _ = write!(
            out,
            "\n{} ({})\n\n{}",
            code(&r.resource),
            r.status.as_str(),
            evidence_list(&r.evidence)
        );
    }
    out
}

fn titled(title: &str) -> String {
    if title.is_empty() {
        String::new()
    } else {
        format!(": {}", esc(title))
    }
}

/// What a playbook targets and tests: the test plan, in the playbook's own words.
fn playbook_facts(p: &PlaybookDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "- **Targets:** {}", or_none(&p.resource_type, code));
    let _ = writeln!(out, "- **Control:** {}", or_none(&control_label(p), esc));
    let _ = writeln!(out, "- **Playbook sha256:** {}", or_none(&p.sha256, code));
    out.push_str(
        "\nA resource is compliant when this expression (JMESPath, over the fields az printed) is true:\n\n",
    );
    out.push_str(&fence(&p.compliant_when, "text"));
    out
}

/// `- field: value` per field, the value as az printed it (JSON: `null` and `""` differ).
fn evidence_list(evidence: &Evidence) -> String {
    if evidence.0.is_empty() {
        return "- no fields recorded\n".into();
    }
    evidence
        .0
        .iter()
        .map(|(k, v)| format!("- {}: {}\n", code(k), code(&v.to_string())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The change record

/// A change record for a change-advisory board: what will change (or did), where and as whom,
/// how compliance is tested, the exact commands to make and to undo each change, what cannot be
/// undone, and how to verify.
pub fn render_change_markdown(report: &ChangeReport, ctx: &ReportContext) -> String {
    let cmd = command(ctx, RunCommand::Plan);
    let run = ctx.run.as_ref().or(report.run.as_ref());
    let multi = spans_subscriptions(report.changes.iter().map(|c| c.resource.as_str()), ctx);
    let name = |c: &Change| esc(&short_resource(&c.resource, multi));
    let mut out = match run {
        Some(id) => format!("# Change record: {} (run {})\n\n", esc(cmd), esc(id)),
        None => format!("# Change record: {}\n\n", esc(cmd)),
    };
    out.push_str(intro(cmd));
    out.push_str("\n\n## Summary\n\n");
    out.push_str(&change_summary(report, cmd, &name));
    out.push_str("\n## Scope and identity\n\n");
    out.push_str(&about(ctx));
    out.push_str("\n## Test plan\n");
    out.push_str(&test_plan(ctx));
    out.push_str("\n## Implementation\n");
    out.push_str(&implementation(report, &name));
    out.push_str("\n## Backout\n\n");
    out.push_str(&backout(report, cmd, run, &name));
    out.push_str("\n## Cannot be undone and manual steps\n\n");
    out.push_str(&irreversible(report, &name));
    out.push_str("\n## Warnings\n\n");
    out.push_str(&warnings(report, &name));
    out.push_str("\n## Waived\n\n");
    out.push_str(&unchanged_targets(
        &report.waived,
        multi,
        "An active waiver exempts these targets, so azbook does not change them:",
        "None.",
    ));
    out.push_str("\n## Errors\n\n");
    out.push_str(&unchanged_targets(
        &report.errors,
        multi,
        "These targets could not be read, so no change was derived for them:",
        "None: every target in scope was read.",
    ));
    out.push_str("\n## Verification\n\n");
    out.push_str(&verification(report, ctx, cmd, &name));
    if cmd != "plan" {
        out.push_str("\n## Change log\n\n");
        out.push_str(&change_log(cmd, run));
    }
    out
}

fn intro(cmd: &str) -> &'static str {
    match cmd {
        "apply" => {
            "The changes `azbook apply` made. Each step was written to the change log before az ran, and each target was read back after it."
        }
        "backout" => {
            "The changes `azbook backout` made to restore the state an apply run recorded before its changes, newest change first, each read back after."
        }
        _ => "The changes `azbook apply` would make, for review. Nothing has been changed yet.",
    }
}

fn change_summary(report: &ChangeReport, cmd: &str, name: &dyn Fn(&Change) -> String) -> String {
    let mut out = String::new();
    if cmd == "plan" {
        let _ = writeln!(out, "{}.\n", esc(&summary_line(&report.changes)));
    }
    let rows: Vec<Vec<String>> = report
        .summary
        .counts()
        .into_iter()
        .map(|(status, n)| vec![status.to_string(), n.to_string()])
        .collect();
    if rows.is_empty() {
        out.push_str("Nothing to do: no target needs a change.\n");
    } else {
        out.push_str(&table(&["Status", "Targets"], &rows));
    }
    out.push_str(&destructive_summary(report, name));
    let key = report
        .changes
        .iter()
        .filter(|c| removes_key_control(c))
        .count();
    if key == 0 {
        out.push_str("\nNo change removes a customer's control of a key.\n");
        return out;
    }
    let _ = writeln!(
        out,
        "\n> **{} change(s) remove the customer's control of a key.** A resource whose policy requires a customer-managed key must be excluded, not changed:\n>",
        key
    );
    for (i, c) in report.changes.iter().enumerate() {
        if removes_key_control(c) {
            let _ = writeln!(
                out,
                "> - {}: {}",
                change_label(i, c, name),
                c.status.as_str()
            );
        }
    }
    out
}

/// Steps that delete, purge, revoke, regenerate keys or grant access, each with its warning, in
/// a quote at the top of the record: a board must not miss one among routine changes.
fn destructive_summary(report: &ChangeReport, name: &dyn Fn(&Change) -> String) -> String {
    let mut lines = String::new();
    let mut count = 0;
    for (i, c) in report.changes.iter().enumerate() {
        for (step, what) in c.destructive_steps() {
            count += 1;
            let warning = step
                .warning
                .as_deref()
                .map(|w| format!(": {}", esc(w)))
                .unwrap_or_default();
            let _ = writeln!(
                lines,
                "> - {}: **{}** {what}{warning}",
                change_label(i, c, name),
                esc(&step.name)
            );
        }
    }
    if count == 0 {
        return String::new();
    }
    format!(
        "\n> **!! DESTRUCTIVE: {count} step(s) delete, purge, revoke, regenerate keys or grant access, and azbook cannot undo them.** `azbook apply` runs them only with `--allow-destructive`:\n>\n{lines}"
    )
}

/// The same test as `summary_line`: the playbook's step warning says the key control goes.
fn removes_key_control(change: &Change) -> bool {
    change.steps.iter().any(|s| {
        s.warning
            .as_deref()
            .is_some_and(|w| w.contains("control of the key"))
    })
}

fn test_plan(ctx: &ReportContext) -> String {
    if ctx.playbooks.is_empty() {
        return "\nNo playbook recorded.\n".into();
    }
    let mut out = String::new();
    for p in &ctx.playbooks {
        let _ = writeln!(out, "\n### Playbook {}{}\n", esc(&p.id), titled(&p.title));
        out.push_str(&playbook_facts(p));
    }
    out
}

/// `Change 2: rg/sql1 (playbook)`: numbered so that every section can refer to a change, in
/// words, since `2.` at the start of a list item would open a numbered list.
fn change_label(i: usize, c: &Change, name: &dyn Fn(&Change) -> String) -> String {
    format!("Change {}: {} ({})", i + 1, name(c), esc(&c.playbook))
}

fn change_heading(i: usize, c: &Change, name: &dyn Fn(&Change) -> String) -> String {
    format!("### {}\n", change_label(i, c, name))
}

fn implementation(report: &ChangeReport, name: &dyn Fn(&Change) -> String) -> String {
    if report.changes.is_empty() {
        return match report.errors.len() {
            0 => "\nNo changes.\n".into(),
            n => format!(
                "\nNo change derived, but {n} target(s) could not be read: whether they need one is not known.\n"
            ),
        };
    }
    let mut out = String::new();
    for (i, c) in report.changes.iter().enumerate() {
        out.push('\n');
        out.push_str(&change_heading(i, c, name));
        out.push('\n');
        let _ = writeln!(out, "- **Resource:** {}", code(&c.resource));
        let _ = writeln!(
            out,
            "- **Subscription:** {}",
            or_none(&c.subscription, code)
        );
        let _ = writeln!(out, "- **Status:** {}", c.status.as_str());
        if !c.message.is_empty() {
            let _ = writeln!(out, "- **Note:** {}", esc(&c.message));
        }
        out.push_str(&state_diff(c));
        out.push_str(&steps(c));
    }
    out
}

/// The recorded fields that the change sets (plan: predicted; apply: as read back).
fn state_diff(c: &Change) -> String {
    let diff = state_changes(&c.before, &c.after);
    if diff.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nFields that change (before -> after):\n\n");
    for line in diff {
        let _ = writeln!(out, "- {}", code(&line));
    }
    out
}

fn steps(c: &Change) -> String {
    if c.steps.is_empty() {
        return "\nNo step runs for this resource.\n".into();
    }
    let mut out = String::new();
    for (n, step) in c.steps.iter().enumerate() {
        let mut tags = Vec::new();
        if step.kind == StepKind::Manual {
            tags.push("manual: azbook never runs it");
        }
        if !step.reversible {
            tags.push("cannot be undone by azbook");
        }
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!(" ({})", tags.join("; "))
        };
        let _ = writeln!(out, "\n**Step {}: {}**{tags}\n", n + 1, esc(&step.name));
        if let Some(what) = step.destructive() {
            let _ = writeln!(
                out,
                "> **!! DESTRUCTIVE:** this step {what}, and azbook cannot undo it; apply runs it only with `--allow-destructive`.\n"
            );
        }
        if let Some(w) = &step.warning {
            let _ = writeln!(out, "Warning: {}\n", esc(w));
        }
        if let Some(why) = &step.long_running {
            let _ = writeln!(
                out,
                "Long-running: {}; azbook waits for it up to `--change-timeout`.\n",
                esc(why)
            );
        }
        match step.kind {
            StepKind::Az => out.push_str(&fence(&command_line(&step.argv), "sh")),
            StepKind::Manual => {
                out.push_str(&fence(step.instructions.as_deref().unwrap_or(""), "text"))
            }
        }
    }
    out
}

fn backout(
    report: &ChangeReport,
    cmd: &str,
    run: Option<&String>,
    name: &dyn Fn(&Change) -> String,
) -> String {
    if cmd == "backout" {
        return "This run is itself a backout: the commands it ran are under Implementation. It is undone by applying the control again (`azbook plan`, then `azbook apply`) over the same scope.\n".into();
    }
    let mut out = match (cmd, run) {
        ("apply", Some(id)) => format!(
            "{} runs these commands, newest change first, after checking that each target still has the state this run set:\n",
            code(&format!("azbook backout {id}"))
        ),
        _ => "After an apply, `azbook backout RUN_ID` runs these commands, newest change first, after checking that each target still has the state the apply set:\n".into(),
    };
    let mut any = false;
    for (i, c) in report.changes.iter().enumerate() {
        if !c.has_az_steps() && c.backout.is_empty() {
            continue;
        }
        any = true;
        out.push('\n');
        out.push_str(&change_heading(i, c, name));
        out.push('\n');
        if c.backout.is_empty() {
            out.push_str("None: azbook cannot undo this change.\n");
        }
        for argv in &c.backout {
            out.push_str(&fence(&command_line(argv), "sh"));
        }
    }
    if !any {
        out.push_str("\nNo change to undo: azbook runs no command.\n");
    }
    out
}

fn irreversible(report: &ChangeReport, name: &dyn Fn(&Change) -> String) -> String {
    let mut out = String::new();
    for (i, c) in report.changes.iter().enumerate() {
        let label = change_label(i, c, name);
        if c.has_az_steps() && c.backout.is_empty() {
            let _ = writeln!(
                out,
                "- {label}: azbook has no backout commands for this change"
            );
        }
        for step in &c.steps {
            if step.kind == StepKind::Manual {
                let _ = writeln!(
                    out,
                    "- {label}: **{}** is a manual step; azbook never runs it. Instructions:\n",
                    esc(&step.name)
                );
                out.push_str(&indent(&fence(
                    step.instructions.as_deref().unwrap_or(""),
                    "text",
                )));
            } else if let Some(what) = step.destructive() {
                let _ = writeln!(
                    out,
                    "- {label}: **{}** cannot be undone by azbook: it {what} (DESTRUCTIVE)",
                    esc(&step.name)
                );
            } else if !step.reversible {
                let _ = writeln!(
                    out,
                    "- {label}: **{}** cannot be undone by azbook",
                    esc(&step.name)
                );
            }
        }
    }
    if out.is_empty() {
        out.push_str("None: every step can be undone by azbook.\n");
    }
    out
}

/// Indented to continue a list item, so that a fence belongs to the item above it.
fn indent(block: &str) -> String {
    block.lines().map(|l| format!("  {l}\n")).collect()
}

fn warnings(report: &ChangeReport, name: &dyn Fn(&Change) -> String) -> String {
    let mut out = String::new();
    for (i, c) in report.changes.iter().enumerate() {
        let label = change_label(i, c, name);
        let step_warnings = c
            .steps
            .iter()
            .filter_map(|s| s.warning.as_ref().map(|w| format!("{}: {w}", s.name)));
        for w in step_warnings.chain(c.warnings.iter().cloned()) {
            let _ = writeln!(out, "- {label}: {}", esc(&w));
        }
    }
    if out.is_empty() {
        out.push_str("None.\n");
    }
    out
}

/// Targets no change was derived for (errors, waived), with what they say.
fn unchanged_targets(results: &[TestResult], multi: bool, intro: &str, none: &str) -> String {
    if results.is_empty() {
        return format!("{none}\n");
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|e| {
            vec![
                esc(&e.playbook),
                esc(&short_resource(&e.resource, multi)),
                esc(&e.message),
            ]
        })
        .collect();
    let mut out = format!("{intro}\n\n");
    out.push_str(&table(&["Playbook", "Resource", "Message"], &rows));
    out
}

fn verification(
    report: &ChangeReport,
    ctx: &ReportContext,
    cmd: &str,
    name: &dyn Fn(&Change) -> String,
) -> String {
    let mut out = String::new();
    if cmd != "plan" && !report.changes.is_empty() {
        out.push_str(
            "Each target as read back after the run (its recorded fields, as az printed them):\n\n",
        );
        let rows: Vec<Vec<String>> = report
            .changes
            .iter()
            .map(|c| {
                vec![
                    name(c),
                    esc(&c.playbook),
                    c.status.as_str().to_string(),
                    cell_code(&c.after.to_string()),
                ]
            })
            .collect();
        out.push_str(&table(
            &["Resource", "Playbook", "Status", "Read back"],
            &rows,
        ));
        out.push('\n');
    }
    out.push_str(match cmd {
        "apply" => "Then audit the same scope: every resource changed should now be compliant.\n\n",
        "backout" => {
            "Then audit the same scope: every resource restored should be as it was before the apply run.\n\n"
        }
        _ => {
            "After the apply, audit the same scope: every resource changed should then be compliant, and those with a manual step once it is done.\n\n"
        }
    });
    let mut argv: Vec<String> = vec!["azbook".into(), "test".into()];
    argv.extend(
        ctx.subscriptions
            .iter()
            .map(|s| format!("--subscription={s}")),
    );
    argv.extend(ctx.playbooks.iter().map(|p| format!("--playbook={}", p.id)));
    out.push_str(&fence(&command_line(&argv), "sh"));
    if !ctx.scope.is_empty() {
        let _ = writeln!(
            out,
            "\nwith this run's filters too: {}.",
            esc(&ctx.scope.join(", "))
        );
    }
    out
}

fn change_log(cmd: &str, run: Option<&String>) -> String {
    let Some(id) = run else {
        return "No change log was written: this run changed nothing.\n".into();
    };
    let mut out = format!("Run {}. To see it:\n\n", code(id));
    out.push_str(&fence(
        &command_line(&["azbook".into(), "log".into(), id.clone()]),
        "sh",
    ));
    if cmd == "apply" {
        out.push_str("\nTo undo it:\n\n");
        out.push_str(&fence(
            &command_line(&["azbook".into(), "backout".into(), id.clone()]),
            "sh",
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Shared

fn command(ctx: &ReportContext, default: RunCommand) -> &'static str {
    ctx.command.unwrap_or(default).as_str()
}

/// When, who, where: what a reader checks first.
fn about(ctx: &ReportContext) -> String {
    let scope = if ctx.scope.is_empty() {
        "every resource the playbooks target in these subscriptions".to_string()
    } else {
        esc(&ctx.scope.join(", "))
    };
    let mut out = String::new();
    let _ = writeln!(out, "- **Generated:** {}", or_none(&ctx.generated_at, esc));
    let _ = writeln!(out, "- **Signed-in identity:** {}", or_none(&ctx.user, esc));
    let _ = writeln!(out, "- **Tenant:** {}", or_none(&ctx.tenant_id, code));
    let subscriptions: Vec<String> = ctx.subscriptions.iter().map(|s| code(s)).collect();
    let _ = writeln!(
        out,
        "- **Subscriptions:** {}",
        or_none(&subscriptions.join(", "), str::to_string)
    );
    let _ = writeln!(out, "- **Scope:** {scope}");
    let playbooks: Vec<String> = ctx.playbooks.iter().map(|p| code(&p.id)).collect();
    let _ = writeln!(
        out,
        "- **Playbooks:** {}",
        or_none(&playbooks.join(", "), str::to_string)
    );
    let _ = writeln!(
        out,
        "- **azbook version:** {}",
        or_none(&ctx.azbook_version, esc)
    );
    if let Some(run) = &ctx.run {
        let _ = writeln!(out, "- **Run:** {}", code(run));
    }
    if let Some(digest) = &ctx.plan_sha256 {
        let _ = writeln!(out, "- **Plan file:** sha256 {}", code(digest));
    }
    out
}

fn or_none(value: &str, render: impl Fn(&str) -> String) -> String {
    if value.is_empty() {
        "not recorded".into()
    } else {
        render(value)
    }
}

/// True when the ids name more than one subscription, so short names need theirs.
fn spans_subscriptions<'a>(ids: impl Iterator<Item = &'a str>, ctx: &ReportContext) -> bool {
    let mut seen: Vec<String> = Vec::new();
    for id in ids {
        let sub = ArmParts::of(id).subscription.to_lowercase();
        if !seen.contains(&sub) {
            seen.push(sub);
        }
    }
    seen.len() > 1 || ctx.subscriptions.len() > 1
}

/// A GFM table from cells the caller has already escaped.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    out.push_str(&format!("|{}\n", " --- |".repeat(header.len())));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

/// Inline text that Markdown cannot read as markup: line breaks become spaces (a break would end
/// a table row or start a block), control and bidirectional characters are shown escaped
/// ([`one_line`]), and every character GFM (and GitHub's `$` math) gives a meaning is
/// backslash-escaped, the backslash of those escapes included, so that `\u{1b}` reads as such.
fn esc(value: &str) -> String {
    let value = one_line(value);
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '!' | '#' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// A code span that shows `value` exactly, whatever backticks it holds.
fn code(value: &str) -> String {
    let text = one_line(value);
    if text.trim().is_empty() {
        return "(empty)".into();
    }
    let ticks = "`".repeat(longest_backtick_run(&text) + 1);
    // A span that starts or ends with a backtick or a space needs a space of padding, which
    // Markdown strips again.
    let pad = if text.starts_with(['`', ' ']) || text.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// A code span for a table cell: GFM splits cells on `|` even inside code, unless escaped.
fn cell_code(value: &str) -> String {
    code(value).replace('|', "\\|")
}

/// A fenced block that shows `content` exactly (control and bidirectional characters escaped,
/// lines ending in LF): its fence is longer than any run of backticks inside, so no line of the
/// content can close it.
fn fence(content: &str, info: &str) -> String {
    let text = printable(&content.replace("\r\n", "\n"));
    let text = text.trim_end_matches('\n');
    let ticks = "`".repeat((longest_backtick_run(text) + 1).max(3));
    format!("{ticks}{info}\n{text}\n{ticks}\n")
}

/// The audit report and the change record, for auditors and change boards.
pub struct Markdown;

impl TestRenderer for Markdown {
    fn render_test(
        &self,
        report: &TestReport,
        ctx: &ReportContext,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        out.write_all(render_test_markdown(report, ctx).as_bytes())
    }
}

impl ChangeRenderer for Markdown {
    fn render_changes(
        &self,
        report: &ChangeReport,
        ctx: &ReportContext,
        _: ChangeView,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        out.write_all(render_change_markdown(report, ctx).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChangeStatus, PlannedStep};
    use serde_json::json;

    const CIS: &str = "CIS Microsoft Azure Foundations Benchmark v4.0.0";
    const SUB: &str = "/subscriptions/s1/resourceGroups/rg_1/providers";

    fn doc(id: &str, control: &str) -> PlaybookDoc {
        PlaybookDoc {
            id: id.into(),
            title: format!("{id} title"),
            resource_type: "Microsoft.Storage/storageAccounts".into(),
            control_id: control.into(),
            control_title: "Ensure critical data is encrypted with Microsoft-managed keys (MMK)"
                .into(),
            benchmark: Some(CIS.into()),
            compliant_when:
                "lower(encryption.keySource || 'Microsoft.Storage') == 'microsoft.storage'".into(),
            sha256: "ab12".into(),
        }
    }

    fn ctx(command: RunCommand) -> ReportContext {
        ReportContext {
            command: Some(command),
            generated_at: "2025-06-01T10:00:00Z".into(),
            azbook_version: "0.1.0".into(),
            tenant_id: "t-1".into(),
            user: "ops_admin@example.com".into(),
            subscriptions: vec!["s1".into()],
            scope: vec!["tag data-classification=critical".into()],
            playbooks: vec![
                doc("storage-account-mmk", "2.1.1.1.1"),
                doc("sql-database-tde-mmk", "2.1.1.1.1"),
            ],
            run: None,
            plan_sha256: None,
        }
    }

    /// The number of cells in a GFM table row: cells are split on pipes no backslash escapes.
    fn cells(row: &str) -> usize {
        let chars: Vec<char> = row.trim().chars().collect();
        let pipes = (0..chars.len())
            .filter(|&i| chars[i] == '|' && (i == 0 || chars[i - 1] != '\\'))
            .count();
        pipes - 1
    }

    /// The contents of every fenced code block, at any indentation.
    fn fences(text: &str) -> Vec<String> {
        let mut blocks = Vec::new();
        // (fence length, the opening fence's indentation, lines so far)
        let mut open: Option<(usize, usize, Vec<&str>)> = None;
        for line in text.lines() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            let ticks = trimmed.len() - trimmed.trim_start_matches('`').len();
            match &mut open {
                Some((n, _, _)) if ticks >= *n && trimmed.trim_end().len() == ticks => {
                    blocks.push(open.take().unwrap().2.join("\n"));
                }
                Some((_, strip, lines)) => lines.push(&line[indent.min(*strip)..]),
                None if ticks >= 3 => open = Some((ticks, indent, Vec::new())),
                None => {}
            }
        }
        assert!(open.is_none(), "an unclosed fence");
        blocks
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    fn result(playbook: &str, name: &str, status: Status, message: &str) -> TestResult {
        TestResult {
            playbook: playbook.into(),
            resource: format!("{SUB}/Microsoft.Storage/storageAccounts/{name}"),
            status,
            evidence: Evidence(vec![
                ("encryption.keySource".into(), json!("Microsoft.Keyvault")),
                ("encryption.keyVaultProperties.keyName".into(), json!("")),
                (
                    "encryption.keyVaultProperties.keyVersion".into(),
                    json!(null),
                ),
                ("odd".into(), json!("a`b")),
            ]),
            message: message.into(),
        }
    }

    fn audit() -> String {
        let report = TestReport::new(
            vec![
                result(
                    "storage-account-mmk",
                    "st1",
                    Status::Noncompliant,
                    "key | vault *not* <b>MMK</b>\nsecond line",
                ),
                result(
                    "storage-account-mmk",
                    "st2",
                    Status::Compliant,
                    "encrypted with Microsoft-managed keys",
                ),
                result(
                    "sql-database-tde-mmk",
                    "db1",
                    Status::Waived,
                    "waived: approved by [CISO](http://x) until 2026-01-01",
                ),
                result("custom", "st3", Status::Error, "az failed"),
            ],
            &["storage-account-mmk", "sql-database-tde-mmk", "custom"],
        );
        render_test_markdown(&report, &ctx(RunCommand::Test))
    }

    #[test]
    fn audit_report_has_each_section_grouped_by_control() {
        let text = audit();
        for heading in [
            "# Audit report",
            "## About this audit",
            "## Summary",
            "## Results by control",
            &format!(
                "### Control: {CIS} 2.1.1.1.1: Ensure critical data is encrypted with Microsoft-managed keys (MMK)"
            ),
            "#### Playbook storage-account-mmk: storage-account-mmk title",
            "#### Playbook sql-database-tde-mmk: sql-database-tde-mmk title",
            "### Control not recorded",
            "#### Playbook custom",
            "##### Evidence",
        ] {
            assert!(has_line(&text, heading), "no {heading:?} in\n{text}");
        }
        assert_eq!(
            text.matches("### Control: ").count(),
            1,
            "playbooks of one control share a heading"
        );
        assert!(has_line(
            &text,
            "- **Signed-in identity:** ops\\_admin@example.com"
        ));
        assert!(has_line(&text, "- **Tenant:** `t-1`"));
        assert!(has_line(
            &text,
            "- **Scope:** tag data-classification=critical"
        ));
        assert!(has_line(&text, "| noncompliant | 1 |"));
        assert!(has_line(&text, "| **total** | 4 |"));
        assert!(
            fences(&text).contains(
                &"lower(encryption.keySource || 'Microsoft.Storage') == 'microsoft.storage'"
                    .to_string()
            ),
            "what is tested, exactly"
        );
    }

    #[test]
    fn audit_evidence_is_shown_as_az_printed_it() {
        let text = audit();
        assert!(has_line(
            &text,
            "`/subscriptions/s1/resourceGroups/rg_1/providers/Microsoft.Storage/storageAccounts/st1` (noncompliant)"
        ));
        assert!(has_line(
            &text,
            "- `encryption.keySource`: `\"Microsoft.Keyvault\"`"
        ));
        assert!(has_line(
            &text,
            "- `encryption.keyVaultProperties.keyName`: `\"\"`"
        ));
        assert!(has_line(
            &text,
            "- `encryption.keyVaultProperties.keyVersion`: `null`"
        ));
        assert!(
            has_line(&text, "- `odd`: ``\"a`b\"``"),
            "a backtick cannot end the span"
        );
    }

    #[test]
    fn values_cannot_break_tables_or_become_markup() {
        let text = audit();
        let row = text
            .lines()
            .find(|l| l.starts_with("| noncompliant | rg"))
            .unwrap();
        assert_eq!(cells(row), 3, "{row}");
        assert_eq!(
            row,
            "| noncompliant | rg\\_1/st1 | key \\| vault \\*not\\* \\<b\\>MMK\\</b\\> second line |"
        );
        let waived = text
            .lines()
            .find(|l| l.starts_with("| waived | rg"))
            .unwrap();
        assert!(waived.contains("\\[CISO\\](http://x)"), "no link: {waived}");
        for table_row in text.lines().filter(|l| l.starts_with('|')) {
            assert!(matches!(cells(table_row), 2 | 3 | 7), "{table_row}");
        }
    }

    fn step(name: &str, argv: &[&str], warning: Option<&str>) -> PlannedStep {
        PlannedStep {
            index: 0,
            name: name.into(),
            kind: StepKind::Az,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            instructions: None,
            reversible: true,
            warning: warning.map(str::to_string),
            long_running: None,
        }
    }

    fn changes(status: ChangeStatus) -> ChangeReport {
        let storage = Change {
            playbook: "storage-account-mmk".into(),
            resource: format!("{SUB}/Microsoft.Storage/storageAccounts/st1"),
            subscription: "s1".into(),
            steps: vec![step(
                "switch the account to Microsoft-managed keys",
                &[
                    "az",
                    "storage",
                    "account",
                    "update",
                    "--name=st1",
                    "--resource-group=rg_1",
                    "--tags=a b|c'd`e",
                    "--subscription=s1",
                    "--output=json",
                ],
                Some(
                    "removes the customer's control of the key: data is then encrypted with a key that Microsoft manages",
                ),
            )],
            before: json!({"encryption": {"keySource": "Microsoft.Keyvault"}}),
            after: json!({"encryption": {"keySource": "Microsoft.Storage"}}),
            backout: vec![vec![
                "az".into(),
                "storage".into(),
                "account".into(),
                "update".into(),
                "--encryption-key-source=Microsoft.Keyvault".into(),
                "--encryption-key-version=".into(),
            ]],
            status,
            message: String::new(),
            warnings: vec!["the key vault could not be read: backout may fail".into()],
            context: json!({}),
            differences: Vec::new(),
        };
        let mut server = storage.clone();
        server.playbook = "sql-server-tde-protector-mmk".into();
        server.resource = format!("{SUB}/Microsoft.Sql/servers/sql1");
        server.steps = vec![PlannedStep {
            reversible: false,
            ..step(
                "drop the old key",
                &[
                    "az",
                    "sql",
                    "server",
                    "key",
                    "delete",
                    "--kid=https://kv/keys/k|1",
                ],
                None,
            )
        }];
        server.backout = Vec::new();
        server.warnings = Vec::new();
        let mut db = storage.clone();
        db.playbook = "sql-database-tde-mmk".into();
        db.resource = format!("{SUB}/Microsoft.Sql/servers/sql1/databases/db1");
        db.status = ChangeStatus::Manual;
        db.steps = vec![PlannedStep {
            kind: StepKind::Manual,
            argv: Vec::new(),
            instructions: Some(
                "Move db1 off its own key:\n```\naz sql db update ... | tee\n```\n# not a heading"
                    .into(),
            ),
            reversible: false,
            ..step("move the database to the server's key", &[], None)
        }];
        db.backout = Vec::new();
        db.warnings = Vec::new();
        let error = TestResult {
            playbook: "sql-database-tde-mmk".into(),
            resource: format!("{SUB}/Microsoft.Sql/servers/sql2"),
            status: Status::Error,
            evidence: Evidence::default(),
            message: "az sql db list failed | AuthorizationFailed".into(),
        };
        let waived = TestResult {
            resource: format!("{SUB}/Microsoft.Storage/storageAccounts/st9"),
            status: Status::Waived,
            message: "waived: policy needs CMK (approved by ciso|sec, until 2027-03-31)".into(),
            ..error.clone()
        };
        ChangeReport::new(None, vec![storage, server, db], vec![error, waived])
    }

    const SECTIONS: [&str; 10] = [
        "## Summary",
        "## Scope and identity",
        "## Test plan",
        "## Implementation",
        "## Backout",
        "## Cannot be undone and manual steps",
        "## Warnings",
        "## Waived",
        "## Errors",
        "## Verification",
    ];

    #[test]
    fn plan_record_has_each_section_and_every_command_in_a_fence() {
        let report = changes(ChangeStatus::Pending);
        let text = render_change_markdown(&report, &ctx(RunCommand::Plan));
        assert!(has_line(&text, "# Change record: plan"));
        for heading in SECTIONS {
            assert!(has_line(&text, heading), "no {heading:?} in\n{text}");
        }
        assert!(
            !text.contains("## Change log"),
            "a plan writes no change log"
        );
        let blocks = fences(&text);
        let mut commands: Vec<String> = Vec::new();
        for c in &report.changes {
            commands.extend(
                c.steps
                    .iter()
                    .filter(|s| s.kind == StepKind::Az)
                    .map(|s| command_line(&s.argv)),
            );
            commands.extend(c.backout.iter().map(|a| command_line(a)));
        }
        commands.push("azbook test --subscription=s1 --playbook=storage-account-mmk --playbook=sql-database-tde-mmk".into());
        assert_eq!(commands.len(), 4);
        for command in commands {
            assert!(
                blocks.contains(&command),
                "{command} is not fenced in\n{text}"
            );
        }
        let instructions = report.changes[2].steps[0].instructions.clone().unwrap();
        assert_eq!(
            blocks.iter().filter(|b| **b == instructions).count(),
            2,
            "manual instructions, exactly, in Implementation and in the manual steps"
        );
    }

    #[test]
    fn plan_record_calls_out_key_control_irreversible_steps_and_errors() {
        let text = render_change_markdown(&changes(ChangeStatus::Pending), &ctx(RunCommand::Plan));
        assert!(text.contains("> **1 change(s) remove the customer's control of a key.**"));
        assert!(has_line(
            &text,
            "> - Change 1: rg\\_1/st1 (storage-account-mmk): pending"
        ));
        let section = |name: &str| {
            let start = text.find(&format!("\n{name}\n")).unwrap();
            let rest = &text[start + name.len() + 2..];
            rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
        };
        let undo = section("## Cannot be undone and manual steps");
        assert!(undo.contains(
            "- Change 2: rg\\_1/sql1 (sql-server-tde-protector-mmk): azbook has no backout commands"
        ));
        assert!(undo.contains("**drop the old key** cannot be undone by azbook"));
        assert!(undo.contains("**move the database to the server's key** is a manual step"));
        let warnings = section("## Warnings");
        assert!(warnings.contains("the key vault could not be read: backout may fail"));
        assert!(warnings.contains("removes the customer's control of the key"));
        let errors = section("## Errors");
        let row = errors.lines().find(|l| l.contains("sql2")).unwrap();
        assert_eq!(cells(row), 3, "{row}");
        let waived = section("## Waived");
        let row = waived.lines().find(|l| l.contains("st9")).unwrap();
        assert_eq!(
            row,
            "| sql-database-tde-mmk | rg\\_1/st9 | waived: policy needs CMK (approved by ciso\\|sec, until 2027-03-31) |"
        );
        assert!(
            section("## Implementation").contains(
                "- `encryption.keySource: \"Microsoft.Keyvault\" -> \"Microsoft.Storage\"`"
            )
        );
        assert!(
            section("## Scope and identity")
                .contains("- **Scope:** tag data-classification=critical")
        );
        let plan = section("## Test plan");
        assert!(plan.contains("\n### Playbook storage-account-mmk: storage-account-mmk title\n"));
        assert!(plan.contains("```text\nlower(encryption.keySource"));
    }

    #[test]
    fn plan_record_marks_destructive_steps_first_and_at_the_step() {
        let mut report = changes(ChangeStatus::Pending);
        report.changes[1].steps[0].warning = Some("backout cannot *register* it again".into());
        let text = render_change_markdown(&report, &ctx(RunCommand::Plan));
        let summary = &text[text.find("## Summary").unwrap()..text.find("## Scope").unwrap()];
        assert!(
            summary.contains("> **!! DESTRUCTIVE: 1 step(s) delete, purge, revoke, regenerate keys or grant access, and azbook cannot undo them.** `azbook apply` runs them only with `--allow-destructive`:"),
            "{summary}"
        );
        assert!(
            has_line(
                summary,
                "> - Change 2: rg\\_1/sql1 (sql-server-tde-protector-mmk): **drop the old key** deletes: backout cannot \\*register\\* it again"
            ),
            "{summary}"
        );
        let implementation =
            &text[text.find("## Implementation").unwrap()..text.find("## Backout").unwrap()];
        assert_eq!(
            implementation
                .matches("> **!! DESTRUCTIVE:** this step deletes")
                .count(),
            1,
            "only the delete step: {implementation}"
        );
        assert!(
            text.contains(
                "**drop the old key** cannot be undone by azbook: it deletes (DESTRUCTIVE)"
            )
        );
        report.changes.remove(1);
        let text = render_change_markdown(&report, &ctx(RunCommand::Plan));
        assert!(!text.contains("DESTRUCTIVE"), "{text}");
    }

    #[test]
    fn apply_and_backout_records_name_their_run_and_read_back_states() {
        let mut ctx = ctx(RunCommand::Apply);
        ctx.run = Some("20250601T100000Z-ab12".into());
        let report = changes(ChangeStatus::Done);
        let text = render_change_markdown(&report, &ctx);
        assert!(has_line(
            &text,
            "# Change record: apply (run 20250601T100000Z-ab12)"
        ));
        for heading in SECTIONS.iter().chain(&["## Change log"]) {
            assert!(has_line(&text, heading), "no {heading:?}");
        }
        let blocks = fences(&text);
        assert!(blocks.contains(&"azbook backout 20250601T100000Z-ab12".to_string()));
        assert!(blocks.contains(&"azbook log 20250601T100000Z-ab12".to_string()));
        let row = text
            .lines()
            .find(|l| l.starts_with("| rg\\_1/st1 |"))
            .unwrap();
        assert_eq!(
            row,
            "| rg\\_1/st1 | storage-account-mmk | done | `{\"encryption\":{\"keySource\":\"Microsoft.Storage\"}}` |"
        );

        ctx.command = Some(RunCommand::Backout);
        let text = render_change_markdown(&report, &ctx);
        assert!(has_line(
            &text,
            "# Change record: backout (run 20250601T100000Z-ab12)"
        ));
        let blocks = fences(&text);
        assert!(blocks.contains(&"azbook log 20250601T100000Z-ab12".to_string()));
        assert!(
            !blocks.iter().any(|b| b.starts_with("azbook backout")),
            "a backout is not backed out"
        );
        assert!(text.contains("This run is itself a backout"));
    }

    #[test]
    fn code_and_fences_hold_any_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a``b"), "```a``b```");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code(""), "(empty)");
        assert_eq!(fence("x\n````\ny", "sh"), "`````sh\nx\n````\ny\n`````\n");
        assert_eq!(cell_code("a|b"), "`a\\|b`");
        assert_eq!(esc("a\u{1b}[1m\r\n#b"), r"a\\u{1b}\[1m \#b");
    }

    #[test]
    fn control_and_bidirectional_characters_are_shown_escaped() {
        let mut r = result(
            "custom",
            "st\u{202e}1",
            Status::Error,
            "az said \u{1b}[2J\u{9b}",
        );
        r.evidence = Evidence(vec![("tags.owner".into(), json!("a\u{2067}b"))]);
        let report = TestReport::new(vec![r], &["custom"]);
        let mut ctx = ctx(RunCommand::Test);
        ctx.user = "ops\u{1b}[8m@example.com".into();
        let text = render_test_markdown(&report, &ctx);
        assert!(has_line(
            &text,
            r"| error | rg\_1/st\\u{202e}1 | az said \\u{1b}\[2J\\u{9b} |"
        ));
        assert!(has_line(
            &text,
            r"- **Signed-in identity:** ops\\u{1b}\[8m@example.com"
        ));
        assert!(has_line(&text, r#"- `tags.owner`: `"a\u{2067}b"`"#));
        assert!(
            !text.contains(|c: char| c.is_control() && c != '\n'
                || c == '\u{202e}'
                || c == '\u{2067}'),
            "{text:?}"
        );

        let mut report = changes(ChangeStatus::Pending);
        report.changes[0].steps[0].argv[5] = "--resource-group=rg\u{202e}".into();
        report.changes[2].steps[0].instructions =
            Some("Move\u{1b}[1A it\r\nthen \u{2066}check".into());
        let text = render_change_markdown(&report, &ctx);
        let blocks = fences(&text);
        assert!(
            blocks
                .iter()
                .any(|b| b.contains(r"$'--resource-group=rg\u202e'")),
            "{blocks:?}"
        );
        assert!(
            blocks.contains(
                &r"Move\u{1b}[1A it
then \u{2066}check"
                    .to_string()
            ),
            "{blocks:?}"
        );
        assert!(
            !text.contains(|c: char| c.is_control() && c != '\n'
                || c == '\u{202e}'
                || c == '\u{2066}'),
            "{text:?}"
        );
    }
}
