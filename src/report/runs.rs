//! `azbook runs` and `azbook log` for people: the change log told to someone who was not there.
//!
//! Everything shown comes from the journal as read; nothing here decides. Text from the journal
//! is printed with control and bidirectional characters escaped (`super::printable`), so that a
//! damaged or hostile log cannot move the cursor, recolour the terminal or reorder what is read,
//! and argvs are quoted the way a POSIX shell would read them (`super::command_line`).

use super::printable;
use crate::journal::{Entry, Intent, Note, Record, RunLog, RunStart, RunSummary, StepOutcome};
use serde_json::Value;
use std::fmt::Write as _;

/// Aligned columns, oldest run first and newest last (next to the prompt).
pub fn render_runs_table(runs: &[RunSummary]) -> String {
    if runs.is_empty() {
        return "no runs recorded\n".to_string();
    }
    let mut rows = vec![
        [
            "RUN",
            "KIND",
            "STARTED",
            "USER",
            "SUBSCRIPTIONS",
            "CHANGES",
            "STATUS",
            "REVERTS",
        ]
        .map(str::to_string)
        .to_vec(),
    ];
    for run in runs {
        let changes = if run.changes == 0 {
            "0".to_string()
        } else {
            format!("{} ({} done, {} failed)", run.changes, run.done, run.failed)
        };
        let mut reverts = Vec::new();
        if let Some(reverted) = &run.reverts {
            reverts.push(format!("reverts {reverted}"));
        }
        if !run.reverted_by.is_empty() {
            reverts.push(format!("reverted by {}", run.reverted_by.join(", ")));
        }
        rows.push(vec![
            run.id.clone(),
            run.kind.map_or("?", |k| k.as_str()).to_string(),
            run.started.clone().unwrap_or_else(|| "?".to_string()),
            run.user.clone().unwrap_or_else(|| "?".to_string()),
            short_list(&run.subscriptions, 2),
            changes,
            match &run.problem {
                Some(problem) => format!("{}: {problem}", run.status.as_str()),
                None => run.status.as_str().to_string(),
            },
            reverts.join("; "),
        ]);
    }
    super::table::aligned(&rows, &[])
}

/// The story of one run: warnings and tampering first, then who ran what where, then every
/// change and note in the order they happened, then how the run ended.
pub fn render_run_log(log: &RunLog) -> String {
    let mut out = String::new();
    title_and_warnings(&mut out, log);
    out.push('\n');
    match log.start() {
        Some(start) => header(&mut out, log, start),
        None => {
            let _ = writeln!(
                out,
                "No run-start record could be read: who ran this, where and with which playbooks \
                 is unknown."
            );
        }
    }
    records(&mut out, log);
    records_after_break(&mut out, log);
    out.push('\n');
    ending(&mut out, log);
    out
}

/// The run's id, kind and status, then what makes its log less than the whole story.
fn title_and_warnings(out: &mut String, log: &RunLog) {
    let kind = log.start().map_or("?", |s| s.kind.as_str());
    let _ = writeln!(
        out,
        "Run {}: {kind}, {}",
        printable(&log.id),
        log.status().as_str()
    );
    if let Some(tampered) = &log.tampered {
        let _ = writeln!(
            out,
            "!! TAMPERED: {}\n!! The change log was altered after it was written: the records \
             before the break come first, then any readable after it, which nothing vouches for. \
             `azbook backout` refuses this run unless --force.",
            printable(tampered)
        );
    }
    for warning in &log.warnings {
        let _ = writeln!(out, "!  warning: {}", printable(warning));
    }
}

/// Every change with its outcome, every note, and every outcome that pairs with no change, in
/// the order they were recorded.
fn records(out: &mut String, log: &RunLog) {
    let changes = log.changes().len();
    let _ = writeln!(
        out,
        "\n{} recorded{}, in the order they happened:",
        plural(changes, "change"),
        if log.tampered.is_some() {
            " before the break"
        } else {
            ""
        }
    );
    let reverted_run = log.start().and_then(|s| s.reverts.as_deref());
    let outcomes = log.outcome_entries();
    for entry in &log.entries {
        match &entry.record {
            Record::Intent(intent) => {
                let outcome = outcomes.get(&entry.seq).copied();
                change(out, entry, intent, outcome, reverted_run);
            }
            Record::Note(n) => note(out, entry, n),
            Record::Outcome(outcome)
                if outcomes
                    .get(&outcome.intent)
                    .is_none_or(|paired| paired.seq != entry.seq) =>
            {
                let second = outcomes.contains_key(&outcome.intent);
                unpaired_outcome(out, entry, outcome, second);
            }
            _ => {}
        }
    }
}

/// The readable records after a break in the chain, in the order they were written: shown,
/// since they are most of the story when an early line is damaged, but apart, since nothing
/// vouches for them.
fn records_after_break(out: &mut String, log: &RunLog) {
    if log.after_break.is_empty() {
        return;
    }
    let after: std::collections::BTreeSet<u64> = log.after_break.iter().map(|e| e.seq).collect();
    let changes = log
        .after_break
        .iter()
        .filter(|e| matches!(e.record, Record::Intent(_)))
        .count();
    let _ = writeln!(
        out,
        "\n!! After the break, not vouched for by the chain (records may have been edited or be \
         missing here): {} and {} other record(s); `azbook backout` uses them only with --force:",
        plural(changes, "change"),
        log.after_break.len() - changes
    );
    let reverted_run = log.start().and_then(|s| s.reverts.as_deref());
    let outcomes = log.outcome_entries_across_the_break();
    for entry in &log.after_break {
        match &entry.record {
            Record::Intent(intent) => {
                let outcome = outcomes.get(&entry.seq).copied();
                change(out, entry, intent, outcome, reverted_run);
            }
            Record::Note(n) => note(out, entry, n),
            // Paired with a change after the break: shown with it.
            Record::Outcome(outcome)
                if after.contains(&outcome.intent)
                    && outcomes
                        .get(&outcome.intent)
                        .is_some_and(|paired| paired.seq == entry.seq) => {}
            Record::Outcome(outcome)
                if outcomes
                    .get(&outcome.intent)
                    .is_some_and(|paired| paired.seq == entry.seq) =>
            {
                let _ = writeln!(
                    out,
                    "\noutcome #{}  {}  for change #{}, before the break",
                    entry.seq,
                    printable(&entry.time),
                    outcome.intent
                );
                outcome_fields(out, entry, outcome);
            }
            Record::Outcome(outcome) => {
                let second = outcomes.contains_key(&outcome.intent);
                unpaired_outcome(out, entry, outcome, second);
            }
            Record::RunEnd(end) => {
                let _ = writeln!(
                    out,
                    "\nrun-end #{}  {}  status {}",
                    entry.seq,
                    printable(&entry.time),
                    end.status.as_str()
                );
            }
            Record::RunStart(_) => {}
        }
    }
}

fn note(out: &mut String, entry: &Entry, note: &Note) {
    let mut about = Vec::new();
    if let Some(playbook) = &note.playbook {
        about.push(format!("[{}]", printable(playbook)));
    }
    if let Some(resource) = &note.resource {
        about.push(printable(resource));
    }
    let _ = writeln!(
        out,
        "\nnote #{}  {}  {}",
        entry.seq,
        printable(&entry.time),
        about.join(" ")
    );
    field(out, "", &printable(&note.message));
}

/// An outcome that is not the one paired with its change: a `second` one for a change that has
/// its own, or one for a record that is not an earlier change.
fn unpaired_outcome(out: &mut String, entry: &Entry, outcome: &StepOutcome, second: bool) {
    let what = if second {
        format!("a second outcome for change #{}, ignored", outcome.intent)
    } else {
        format!(
            "for record #{}, which is not an earlier change",
            outcome.intent
        )
    };
    let _ = writeln!(
        out,
        "\noutcome #{}  {}  {what}",
        entry.seq,
        printable(&entry.time)
    );
    outcome_fields(out, entry, outcome);
}

/// How the run ended, or why that is unknown.
fn ending(out: &mut String, log: &RunLog) {
    match (log.end(), log.entries.last()) {
        (Some(end), Some(last)) => {
            let counts: Vec<String> = end
                .summary
                .counts()
                .into_iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(
                out,
                "Ended {} with status {}{}.",
                printable(&last.time),
                end.status.as_str(),
                if counts.is_empty() {
                    String::new()
                } else {
                    format!(": {}", counts.join(", "))
                }
            );
        }
        _ if log.tampered.is_some() => {
            let _ = writeln!(
                out,
                "How the run ended is unknown: the chain breaks before its end."
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "No run-end record: the run did not finish (it crashed, was killed, or is still \
                 running). A change without an outcome above may or may not have been made; \
                 `azbook backout` reads the current state to decide."
            );
        }
    }
}

fn header(out: &mut String, log: &RunLog, start: &RunStart) {
    let started = log.entries.first().map_or("?", |e| e.time.as_str());
    field(out, "Started", &printable(started));
    field(out, "By", &printable(&start.user));
    field(out, "Tenant", &printable(&start.tenant_id));
    field(
        out,
        "Subscriptions",
        &printable(&start.subscriptions.join(", ")),
    );
    field(
        out,
        "Versions",
        &format!(
            "azbook {}, az {}",
            printable(&start.azbook_version),
            start
                .az_version
                .as_deref()
                .map_or("unknown".to_string(), printable)
        ),
    );
    field(out, "Command", &shell_line(&start.command_line));
    if !start.scope.is_null() {
        field(out, "Scope", &printable(&start.scope.to_string()));
    }
    if let Some(reverted) = &start.reverts {
        field(out, "Reverts run", &printable(reverted));
    }
    field(out, "Directory", &printable(&log.dir.display().to_string()));
    let playbooks: Vec<String> = start
        .playbooks
        .iter()
        .map(|p| {
            format!(
                "{}  sha256 {}  ({})",
                printable(&p.id),
                printable(&p.sha256),
                printable(&p.origin)
            )
        })
        .collect();
    field(
        out,
        "Playbooks",
        &if playbooks.is_empty() {
            "none".to_string()
        } else {
            playbooks.join("\n")
        },
    );
}

fn change(
    out: &mut String,
    entry: &Entry,
    intent: &Intent,
    outcome: Option<&Entry>,
    reverted_run: Option<&str>,
) {
    let _ = writeln!(
        out,
        "\nchange #{}  {}  {}  step {}: {}",
        entry.seq,
        printable(&entry.time),
        printable(&intent.playbook),
        intent.step,
        printable(&intent.step_name)
    );
    field(out, "resource", &printable(&intent.resource));
    field(out, "command", &shell_line(&intent.argv));
    field(
        out,
        "state",
        &before_expected(&intent.before, &intent.expected),
    );
    if let Some(seq) = intent.reverts {
        field(
            out,
            "undoes",
            &match reverted_run {
                Some(run) => format!("change #{seq} of run {}", printable(run)),
                None => format!("change #{seq} of the reverted run"),
            },
        );
    }
    if !intent.backout.is_empty() {
        let undo: Vec<String> = intent.backout.iter().map(|argv| shell_line(argv)).collect();
        field(out, "undo with", &undo.join("\n"));
    }
    match outcome {
        Some(
            entry @ Entry {
                record: Record::Outcome(o),
                ..
            },
        ) => outcome_fields(out, entry, o),
        _ => field(
            out,
            "outcome",
            "NONE RECORDED: the run stopped after announcing this change and before recording \
             az's answer, so whether it was made is unknown",
        ),
    }
}

fn outcome_fields(out: &mut String, entry: &Entry, outcome: &StepOutcome) {
    let exit = outcome
        .exit_code
        .map_or("no exit code".to_string(), |c| format!("exit {c}"));
    let verified = if outcome.verified {
        "verified"
    } else {
        "not verified"
    };
    field(
        out,
        "outcome",
        &format!(
            "{} ({exit}, {verified}) at {}",
            outcome.status.as_str(),
            printable(&entry.time)
        ),
    );
    if let Some(error) = &outcome.error {
        field(out, "error", &printable(error));
    }
    if let Some(after) = &outcome.after {
        field(out, "read back", &fields_of(after));
    }
}

/// `field: before -> expected` per recorded field; a field only one side names says so.
fn before_expected(before: &Value, expected: &Value) -> String {
    let (Value::Object(b), Value::Object(e)) = (before, expected) else {
        return format!("{} -> {}", compact(before), compact(expected));
    };
    let mut lines = Vec::new();
    for (key, old) in b {
        lines.push(match e.get(key) {
            Some(new) => format!("{}: {} -> {}", printable(key), compact(old), compact(new)),
            None => format!(
                "{}: {} (recorded, not changed by this step)",
                printable(key),
                compact(old)
            ),
        });
    }
    for (key, new) in e.iter().filter(|(k, _)| !b.contains_key(*k)) {
        lines.push(format!(
            "{}: (not recorded) -> {}",
            printable(key),
            compact(new)
        ));
    }
    if lines.is_empty() {
        "(no recorded fields)".to_string()
    } else {
        lines.join("\n")
    }
}

fn fields_of(value: &Value) -> String {
    match value {
        Value::Object(map) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| format!("{}: {}", printable(k), compact(v)))
            .collect::<Vec<_>>()
            .join("\n"),
        other => compact(other),
    }
}

/// JSON as az printed it, on one line (strings keep their quotes: `""` and null differ).
fn compact(value: &Value) -> String {
    printable(&value.to_string())
}

/// `label:` padded to one column; further lines of `value` indented under the first.
fn field(out: &mut String, label: &str, value: &str) {
    const WIDTH: usize = 16;
    let indent = " ".repeat(WIDTH + 4);
    let lines = value.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    for (i, line) in lines.enumerate() {
        if i == 0 {
            let label = if label.is_empty() {
                String::new()
            } else {
                format!("{label}:")
            };
            let _ = writeln!(out, "    {label:<WIDTH$}{line}");
        } else {
            let _ = writeln!(out, "{indent}{line}");
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn short_list(items: &[String], keep: usize) -> String {
    let mut shown: Vec<String> = items.iter().take(keep).cloned().collect();
    if items.len() > keep {
        shown.push(format!("+{} more", items.len() - keep));
    }
    shown.join(", ")
}

fn shell_line(argv: &[String]) -> String {
    super::command_line(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{
        Note, PlaybookRef, RunEnd, RunEndStatus, RunKind, RunStart, RunStatus, StateDir, StepStatus,
    };
    use crate::model::ChangeSummary;
    use serde_json::json;

    fn summary(id: &str, kind: RunKind) -> RunSummary {
        RunSummary {
            id: id.into(),
            kind: Some(kind),
            started: Some("2026-11-29T08:01:02Z".into()),
            ended: None,
            user: Some("alice@contoso.com".into()),
            subscriptions: vec!["s1".into(), "s2".into(), "s3".into()],
            changes: 3,
            done: 2,
            failed: 1,
            changed: 2,
            reverts: None,
            reverted_by: vec![],
            status: RunStatus::Finished,
            problem: None,
        }
    }

    #[test]
    fn the_runs_table_is_aligned_and_says_what_reverted_what() {
        let mut apply = summary("20261129T080102Z-apply-3f2a", RunKind::Apply);
        apply.reverted_by = vec!["20261129T090000Z-backout-0b0b".into()];
        let mut backout = summary("20261129T090000Z-backout-0b0b", RunKind::Backout);
        backout.reverts = Some(apply.id.clone());
        backout.user = Some("mallory\x1b[2J".into());
        backout.status = RunStatus::Incomplete;
        let text = render_runs_table(&[apply, backout]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("20261129T080102Z-apply-3f2a"));
        assert!(
            lines[2].starts_with("20261129T090000Z-backout-0b0b"),
            "newest last"
        );
        for column in ["KIND", "STARTED", "STATUS", "REVERTS"] {
            let at = lines[0].find(column).unwrap();
            assert!(
                lines[1..].iter().all(|l| l[..at].ends_with("  ")),
                "{column}\n{text}"
            );
        }
        assert!(lines[1].contains("3 (2 done, 1 failed)"));
        assert!(lines[1].contains("s1, s2, +1 more"));
        assert!(lines[1].contains("reverted by 20261129T090000Z-backout-0b0b"));
        assert!(lines[2].contains("reverts 20261129T080102Z-apply-3f2a"));
        assert!(
            !text.contains('\x1b'),
            "escape sequences are shown, not sent"
        );
        assert!(text.contains(r"mallory\u{1b}[2J"));
        assert_eq!(render_runs_table(&[]), "no runs recorded\n");
    }

    #[test]
    fn the_runs_table_lines_up_wide_characters() {
        use unicode_width::UnicodeWidthStr;
        let mut wide = summary("20261129T080102Z-apply-3f2a", RunKind::Apply);
        wide.user = Some("管理者@contoso.com".into());
        let mut hostile = summary("20261129T090000Z-apply-0b0b", RunKind::Apply);
        hostile.user = Some("eve\u{202e}moc.osotnoc@".into());
        let text = render_runs_table(&[wide, hostile]);
        let lines: Vec<&str> = text.lines().collect();
        let column = |line: &str, cell: &str| line[..line.find(cell).unwrap()].width();
        let at = column(lines[0], "SUBSCRIPTIONS");
        for line in &lines[1..] {
            assert_eq!(column(line, "s1, s2, +1 more"), at, "\n{text}");
        }
        assert!(text.contains(r"eve\u{202e}moc.osotnoc@"), "{text}");
        assert!(!text.contains('\u{202e}'));
    }

    /// A backout run with a failed change, a note and a change without outcome.
    fn story() -> (tempfile::TempDir, RunLog) {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let lock = state.lock().unwrap();
        let start = RunStart {
            run_id: String::new(),
            kind: RunKind::Backout,
            azbook_version: "0.1.0".into(),
            az_version: None,
            tenant_id: "tenant-1".into(),
            user: "alice@contoso.com".into(),
            subscriptions: vec!["s1".into()],
            playbooks: vec![PlaybookRef {
                id: "storage-account-mmk".into(),
                origin: "built-in".into(),
                sha256: String::new(),
            }],
            command_line: vec!["azbook".into(), "backout".into(), "--yes".into()],
            scope: json!({"run": "20261129T080102Z-apply-3f2a"}),
            reverts: Some("20261129T080102Z-apply-3f2a".into()),
        };
        let mut journal = lock
            .create_run(start, &[("storage-account-mmk".into(), "id = 1\n".into())])
            .unwrap();
        let intent = |name: &str| Intent {
            resource: format!(
                "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{name}"
            ),
            subscription: "s1".into(),
            playbook: "storage-account-mmk".into(),
            step: 0,
            step_name: "restore the customer key".into(),
            argv: vec![
                "az".into(),
                "storage".into(),
                "account".into(),
                "update".into(),
                format!("--name={name}"),
                "--encryption-key-version=".into(),
            ],
            context: json!({}),
            before: json!({"encryption.keySource": "Microsoft.Storage", "encryption.keyVaultProperties.keyVersion": null}),
            expected: json!({"encryption.keySource": "Microsoft.Keyvault", "encryption.keyVaultProperties.keyVersion": ""}),
            backout: vec![],
            reverts: Some(3),
        };
        let first = journal.append(Record::Intent(intent("st1"))).unwrap();
        journal
            .append(Record::Outcome(StepOutcome {
                intent: first,
                status: StepStatus::Failed,
                exit_code: Some(1),
                error: Some("ERROR: (AuthorizationFailed) no\nCode: AuthorizationFailed".into()),
                after: Some(json!({"encryption.keySource": "Microsoft.Storage"})),
                verified: false,
            }))
            .unwrap();
        journal
            .append(Record::Note(Note {
                resource: Some("/subscriptions/s1/x".into()),
                playbook: Some("storage-account-mmk".into()),
                message: "drift: keySource is Microsoft.Keyvault".into(),
            }))
            .unwrap();
        journal.append(Record::Intent(intent("st2"))).unwrap();
        let id = journal.run_id().to_string();
        drop(journal);
        drop(lock);
        let mut log = state.read_run(&id).unwrap();
        log.warnings
            .push("line 6, the last, ends without a newline".into());
        (dir, log)
    }

    #[test]
    fn a_run_log_tells_the_whole_story() {
        let (_dir, log) = story();
        let text = render_run_log(&log);
        let expect_in_order = [
            format!("Run {}: backout, crashed", log.id),
            "!  warning: line 6, the last, ends without a newline".into(),
            "Started:".into(),
            "By:             alice@contoso.com".into(),
            "Tenant:         tenant-1".into(),
            "Subscriptions:  s1".into(),
            "Versions:       azbook 0.1.0, az unknown".into(),
            "Command:        azbook backout --yes".into(),
            "Reverts run:    20261129T080102Z-apply-3f2a".into(),
            "Playbooks:      storage-account-mmk  sha256 ".into(),
            "2 changes recorded".into(),
            "change #1".into(),
            "storage-account-mmk  step 0: restore the customer key".into(),
            "resource:       /subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1".into(),
            "command:        az storage account update --name=st1 --encryption-key-version=".into(),
            "state:          encryption.keySource: \"Microsoft.Storage\" -> \"Microsoft.Keyvault\"".into(),
            "encryption.keyVaultProperties.keyVersion: null -> \"\"".into(),
            "undoes:         change #3 of run 20261129T080102Z-apply-3f2a".into(),
            "outcome:        failed (exit 1, not verified) at".into(),
            "error:          ERROR: (AuthorizationFailed) no".into(),
            "                    Code: AuthorizationFailed".into(),
            "read back:      encryption.keySource: \"Microsoft.Storage\"".into(),
            "note #3".into(),
            "[storage-account-mmk] /subscriptions/s1/x".into(),
            "drift: keySource is Microsoft.Keyvault".into(),
            "change #4".into(),
            "outcome:        NONE RECORDED".into(),
            "No run-end record: the run did not finish".into(),
        ];
        let mut from = 0;
        for expected in &expect_in_order {
            let at = text[from..]
                .find(expected.as_str())
                .unwrap_or_else(|| panic!("missing or out of order: {expected:?}\n{text}"));
            from += at + expected.len();
        }
        assert!(!text.contains("TAMPERED"));
    }

    #[test]
    fn tampering_and_the_end_are_stated() {
        let (_dir, mut log) = story();
        log.tampered = Some("line 4 does not follow line 3".into());
        let text = render_run_log(&log);
        let first_lines: Vec<&str> = text.lines().take(2).collect();
        assert!(
            first_lines[1].starts_with("!! TAMPERED: line 4 does not follow line 3"),
            "{text}"
        );
        assert!(text.contains("refuses this run unless --force"));
        assert!(text.contains("How the run ended is unknown"));

        log.tampered = None;
        log.entries.push(Entry {
            seq: 5,
            time: "2026-11-29T08:59:00Z".into(),
            record: Record::Outcome(StepOutcome {
                intent: 0,
                status: StepStatus::Done,
                exit_code: Some(0),
                error: None,
                after: None,
                verified: true,
            }),
        });
        log.entries.push(Entry {
            seq: 6,
            time: "2026-11-29T09:00:00Z".into(),
            record: Record::RunEnd(RunEnd {
                status: RunEndStatus::Incomplete,
                summary: ChangeSummary {
                    failed: 1,
                    ..ChangeSummary::default()
                },
            }),
        });
        let text = render_run_log(&log);
        assert!(
            text.contains(
                "outcome #5  2026-11-29T08:59:00Z  for record #0, which is not an earlier change"
            ),
            "{text}"
        );
        assert!(
            text.contains("Ended 2026-11-29T09:00:00Z with status incomplete: failed 1."),
            "{text}"
        );
    }
}
