//! Executes changes: for each step, the `intent` is written and fsynced before `az` runs, the
//! `outcome` after it, and the target is read back and verified with the playbook's test.

use crate::az::{Az, AzError, CallKind, ErrorKind};
use crate::evaluate::{Progress, read_back, read_state, verdict};
use crate::fieldpath::{FieldPath, differences, same_value};
use crate::journal::{Intent, Journal, Note, Record, StepOutcome, StepStatus};
use crate::memo::Memo;
use crate::model::{Change, ChangeStatus, Status, StepKind};
use crate::playbook::Playbook;
use crate::scheduler;
use serde_json::Value;
use std::sync::Mutex;

/// Runs every change, `jobs` at a time, and returns them with their statuses. `recheck` reads
/// each target first and skips it as drifted when its state is no longer the plan's `before`
/// (a saved plan, possibly hours old).
/// Why a run stopped starting new changes, when it did.
#[derive(Default)]
pub struct Stop {
    reason: Mutex<Option<String>>,
}

impl Stop {
    fn get(&self) -> Option<String> {
        self.reason.lock().expect("stop lock").clone()
    }

    fn set(&self, reason: String) {
        self.reason.lock().expect("stop lock").get_or_insert(reason);
    }

    /// An az failure that every later call would share (signed out, az gone) stops the run.
    fn check(&self, error: &AzError) {
        if stop_worthy(error) {
            self.set(format!("{error}. {}", error.hint()));
        }
    }
}

/// Runs the changes and returns them with their statuses, and why the run stopped early if it
/// did (signed out mid-run, az gone, the change log unwritable): changes not yet started are
/// then `skipped`, and the log still ends properly.
pub fn execute(
    az: &Az,
    journal: &Mutex<Journal>,
    playbooks: &[Playbook],
    changes: Vec<Change>,
    jobs: usize,
    recheck: bool,
    progress: &dyn Progress,
) -> (Vec<Change>, Option<String>) {
    progress.found(changes.len() as u64);
    let stop = &Stop::default();
    let checked = &Checked::default();
    let slots: Vec<Mutex<Option<Change>>> =
        changes.into_iter().map(|c| Mutex::new(Some(c))).collect();
    scheduler::run(jobs, |spawner| {
        // The scheduler runs the newest job first: spawn in reverse so that changes start in
        // the plan's order.
        for slot in slots.iter().rev() {
            spawner.spawn(move |_| {
                let mut guard = slot.lock().expect("change lock");
                let change = guard.take().expect("each change runs once");
                let playbook = playbooks
                    .iter()
                    .find(|p| p.id == change.playbook)
                    .expect("changes come from the selected playbooks");
                *guard = Some(match stop.get() {
                    Some(reason) => {
                        let mut change = change;
                        change.status = ChangeStatus::Skipped;
                        change.message = format!("not started: {reason}");
                        change
                    }
                    None => execute_one(az, journal, playbook, change, recheck, stop, checked),
                });
                progress.assessed();
            });
        }
    });
    let done = slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .expect("change lock")
                .expect("every change ran")
        })
        .collect();
    (done, stop.get())
}

fn append(journal: &Mutex<Journal>, record: Record) -> Result<u64, String> {
    journal
        .lock()
        .expect("journal lock")
        .append(record)
        .map_err(|e| format!("{e:#}"))
}

fn note(journal: &Mutex<Journal>, change: &Change, message: String) -> Result<u64, String> {
    append(
        journal,
        Record::Note(Note {
            resource: Some(change.resource.clone()),
            playbook: Some(change.playbook.clone()),
            message,
        }),
    )
}

fn execute_one(
    az: &Az,
    journal: &Mutex<Journal>,
    playbook: &Playbook,
    mut change: Change,
    recheck: bool,
    stop: &Stop,
    checked: &Checked,
) -> Change {
    let record = &playbook.test.record;
    let fail = |mut change: Change, message: String| {
        change.status = ChangeStatus::Failed;
        change.message = message;
        change
    };
    if recheck {
        match read_state(az, playbook, &change.context, &change.subscription) {
            Ok(state) => {
                let now = playbook.test.recorded(&state);
                let drift = differences(record, &change.before, &now);
                if !drift.is_empty() {
                    change.status = ChangeStatus::Drifted;
                    change.message = format!(
                        "its state changed since the plan was made, so it was not changed ({})",
                        drift.join("; ")
                    );
                    change.after = now;
                    if let Err(e) = note(
                        journal,
                        &change,
                        format!("drifted, not changed: {}", drift.join("; ")),
                    ) {
                        return fail(change, format!("could not write the change log: {e}"));
                    }
                    return change;
                }
            }
            Err(e) => {
                return fail(
                    change,
                    format!("could not read it before changing it: {e}. {}", e.hint()),
                );
            }
        }
    }
    for warning in prechecks(az, playbook, &change, checked) {
        if let Err(e) = note(journal, &change, format!("warning: {warning}")) {
            return fail(change, format!("could not write the change log: {e}"));
        }
        change.warnings.push(warning);
    }
    let mut expected = change.before.clone();
    let mut last_state: Option<Value> = None;
    // What the steps run so far can have changed; `None` once a step predicts nothing, and
    // then everything is read back.
    let mut changed: Option<Vec<&FieldPath>> = Some(Vec::new());
    let mut all_verified = true;
    let steps = change.steps.clone();
    for step in &steps {
        if step.kind == StepKind::Manual {
            let text = step.instructions.clone().unwrap_or_default();
            if let Err(e) = note(
                journal,
                &change,
                format!("manual step not run by azbook: {}: {text}", step.name),
            ) {
                return fail(change, format!("could not write the change log: {e}"));
            }
            continue;
        }
        let spec = &playbook.implement[step.index];
        for (path, value) in &spec.after {
            path.set(&mut expected, value.clone());
        }
        changed = changed
            .filter(|_| !spec.after.is_empty())
            .map(|mut fields| {
                fields.extend(spec.after.iter().map(|(path, _)| path));
                fields
            });
        let intent = Intent {
            resource: change.resource.clone(),
            subscription: change.subscription.clone(),
            playbook: change.playbook.clone(),
            step: step.index,
            step_name: step.name.clone(),
            argv: step.argv.clone(),
            context: change.context.clone(),
            before: change.before.clone(),
            expected: expected.clone(),
            backout: change.backout.clone(),
            reverts: None,
        };
        // The intent is durable before az runs: without it, nothing is changed.
        let seq = match append(journal, Record::Intent(intent)) {
            Ok(seq) => seq,
            Err(e) => {
                stop.set(format!("the change log cannot be written: {e}"));
                return fail(
                    change,
                    format!("could not write the change log, so nothing was changed: {e}"),
                );
            }
        };
        let ran = az.run_full(&step.argv, CallKind::Change);
        if let Err(e) = &ran {
            stop.check(e);
        }
        let (outcome, ok) = match ran {
            Err(e) => {
                // az may have died after Azure made the change (a timeout, a torn answer): look,
                // so that the operator is not told nothing changed when something did.
                let landed = (!stop_worthy(&e))
                    .then(|| read_state(az, playbook, &change.context, &change.subscription).ok())
                    .flatten()
                    .map(|state| playbook.test.recorded(&state))
                    .filter(|after| spec.after.iter().all(|(p, v)| same_value(p.get(after), v)));
                let message = match &landed {
                    Some(_) => format!(
                        "{}: az reported a failure ({e}), but the resource reads back as changed: the change is in place, and `azbook backout` restores it",
                        step.name
                    ),
                    None => format!("{}: {e}. {}", step.name, e.hint()),
                };
                if let Some(after) = &landed {
                    change.after = after.clone();
                }
                (
                    StepOutcome {
                        intent: seq,
                        status: StepStatus::Failed,
                        exit_code: e.exit_code,
                        error: Some(format!("{e}")),
                        after: landed,
                        verified: false,
                    },
                    Err(message),
                )
            }
            Ok(_) => match match &changed {
                Some(fields) => read_back(
                    az,
                    playbook,
                    &change.context,
                    &change.subscription,
                    fields,
                    &change.before,
                ),
                None => read_state(az, playbook, &change.context, &change.subscription),
            } {
                Ok(state) => {
                    let after = playbook.test.recorded(&state);
                    let verified = spec.after.iter().all(|(p, v)| same_value(p.get(&after), v));
                    last_state = Some(state);
                    change.after = after.clone();
                    (
                        StepOutcome {
                            intent: seq,
                            status: if verified {
                                StepStatus::Done
                            } else {
                                StepStatus::Failed
                            },
                            exit_code: Some(0),
                            error: (!verified).then(|| "the change ran but reading it back does not show the expected state".to_string()),
                            after: Some(after),
                            verified,
                        },
                        if verified {
                            Ok(())
                        } else {
                            Err(format!(
                                "{}: az succeeded, but the state read back is not the expected one ({})",
                                step.name,
                                differences(record, &expected, &change.after).join("; ")
                            ))
                        },
                    )
                }
                Err(e) => (
                    StepOutcome {
                        intent: seq,
                        status: StepStatus::Failed,
                        exit_code: Some(0),
                        error: Some(format!("the change ran, but reading it back failed: {e}")),
                        after: None,
                        verified: false,
                    },
                    Err(format!(
                        "{}: az succeeded, but reading it back failed: {e}",
                        step.name
                    )),
                ),
            },
        };
        if let Err(e) = append(journal, Record::Outcome(outcome)) {
            return fail(
                change,
                format!(
                    "the change ran but its outcome could not be written to the change log: {e}"
                ),
            );
        }
        if let Err(message) = ok {
            all_verified = false;
            change = fail(change, message);
            break;
        }
    }
    if !all_verified {
        return change;
    }
    let manual: Vec<&str> = steps
        .iter()
        .filter(|s| s.kind == StepKind::Manual)
        .map(|s| s.name.as_str())
        .collect();
    if !change.has_az_steps() {
        change.status = ChangeStatus::Skipped;
        change.message = format!(
            "needs a manual step, which azbook never runs: {}",
            manual.join("; ")
        );
        return change;
    }
    // Done only when the playbook's own test passes on what was read back, unless a manual step
    // is still to be done by a person.
    if manual.is_empty()
        && let Some(state) = &last_state
    {
        let check = verdict(playbook, state);
        if check.status != Status::Compliant {
            return fail(
                change,
                format!(
                    "changed, but the test still finds it {}: {}",
                    check.status.as_str(),
                    check.message
                ),
            );
        }
    }
    change.status = ChangeStatus::Done;
    change.message = if manual.is_empty() {
        "changed and verified".into()
    } else {
        format!(
            "changed and verified; still to do by hand: {}",
            manual.join("; ")
        )
    };
    change
}

/// Each precheck read already made in this run (its argv and subscription), with what was wrong:
/// a Key Vault key that fifty accounts use is confirmed once, not fifty times.
type Checked = Memo<(Vec<String>, Option<String>), Option<String>>;

/// Runs the playbook's prechecks for a change; each one that fails becomes a warning.
fn prechecks(az: &Az, playbook: &Playbook, change: &Change, checked: &Checked) -> Vec<String> {
    let mut ctx = change.context.clone();
    if let Value::Object(map) = &mut ctx {
        map.insert("before".into(), change.before.clone());
    }
    let mut warnings = Vec::new();
    for check in &playbook.prechecks {
        let subscription = check.subscription.then_some(change.subscription.as_str());
        let problem = match check.read.render(&ctx) {
            Err(why) => Some(why),
            Ok(argv) => {
                let key = (argv, subscription.map(str::to_string));
                checked.get(key.clone(), usize::MAX, || {
                    az.run(&key.0, subscription, CallKind::Read)
                        .err()
                        .map(|e| e.to_string())
                })
            }
        };
        if let Some(problem) = problem {
            warnings.push(format!("{} ({}: {problem})", check.warning, check.name));
        }
    }
    warnings
}

/// Failures after which no further az call is worth making (signed out, az gone).
fn stop_worthy(error: &AzError) -> bool {
    matches!(error.kind, ErrorKind::NotSignedIn | ErrorKind::Missing)
}
