//! Plans and the changes of apply and backout, for people.

use super::table::{aligned, short_resource};
use crate::az::display_command;
use crate::plan::{Change, ChangeReport, ChangeStatus, StepKind};
use serde_json::Value;

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
            out.push_str(&format!("  {}. {}{tags}\n", i + 1, step.name));
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
        colours.push(colour.then_some(super::table::colour(e.status)));
    }
    aligned(&rows, &colours)
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
}
