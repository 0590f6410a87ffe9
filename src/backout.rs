//! Reverses a run from its change log (DESIGN section 4): newest change first, each target's
//! controlled fields read and compared with the recorded prior state and the state azbook set.

use crate::az::{Az, CallKind};
use crate::discover::render_error;
use crate::evaluate::{read_back, read_state};
use crate::fieldpath::{FieldPath, differences, same_value};
use crate::journal::{Intent, Journal, Note, Record, RunLog, StepOutcome, StepStatus};
use crate::model::{Change, ChangeStatus, PlannedStep, StepKind};
use crate::plan::backout_steps;
use crate::playbook::Playbook;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// One target a run changed: every step's intent folded into the state before the first step
/// and the state expected after the last.
#[derive(Clone, Debug)]
pub struct Changed {
    pub resource: String,
    pub playbook: String,
    pub subscription: String,
    pub context: Value,
    pub before: Value,
    pub expected: Value,
    /// The newest intent for this target (what a backout intent names in `reverts`).
    pub last_seq: u64,
    /// Some intent has no outcome: the run stopped between writing it and hearing from az.
    pub unfinished: bool,
}

/// The targets a run changed (or meant to: an intent without outcome counts), newest first.
pub fn changed_targets(log: RunLog) -> Vec<Changed> {
    let mut targets: Vec<Changed> = Vec::new();
    // ARM ids compare case-insensitively; the index keeps a run of thousands of changes linear.
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for (seq, intent, answered) in log.into_changes() {
        let key = (intent.resource.to_lowercase(), intent.playbook.clone());
        match index.get(&key).map(|&i| &mut targets[i]) {
            Some(t) => {
                t.expected = intent.expected;
                t.last_seq = seq;
                t.unfinished |= !answered;
            }
            None => {
                index.insert(key, targets.len());
                targets.push(Changed {
                    resource: intent.resource,
                    playbook: intent.playbook,
                    subscription: intent.subscription,
                    context: intent.context,
                    before: intent.before,
                    expected: intent.expected,
                    last_seq: seq,
                    unfinished: !answered,
                })
            }
        }
    }
    targets.sort_by_key(|t| std::cmp::Reverse(t.last_seq));
    targets
}

pub struct Reverter<'a> {
    pub az: &'a Az<'a>,
    /// None for a dry run: nothing is written and nothing is changed.
    pub journal: Option<&'a Mutex<Journal>>,
    pub force: bool,
}

fn with(context: &Value, key: &str, value: &Value) -> Value {
    let mut ctx = context.clone();
    if let Value::Object(map) = &mut ctx {
        map.insert(key.into(), value.clone());
    }
    ctx
}

impl Reverter<'_> {
    fn append(&self, record: Record) -> Result<u64, String> {
        match self.journal {
            Some(j) => j
                .lock()
                .expect("journal lock")
                .append(record)
                .map_err(|e| format!("{e:#}")),
            None => Ok(0),
        }
    }

    fn note(&self, t: &Changed, message: String) -> Result<u64, String> {
        self.append(Record::Note(Note {
            resource: Some(t.resource.clone()),
            playbook: Some(t.playbook.clone()),
            message,
        }))
    }

    pub fn revert(&self, playbook: &Playbook, t: &Changed) -> Change {
        let record = &playbook.test.record;
        let controlled = &playbook.test.controlled;
        let mut change = Change {
            playbook: t.playbook.clone(),
            resource: t.resource.clone(),
            subscription: t.subscription.clone(),
            steps: Vec::new(),
            before: Value::Null,
            after: Value::Null,
            backout: Vec::new(),
            status: ChangeStatus::Failed,
            message: String::new(),
            warnings: Vec::new(),
            context: t.context.clone(),
        };
        let finish = |mut change: Change, status, message: String| {
            change.status = status;
            change.message = message;
            change
        };
        let current = match read_state(self.az, playbook, &t.context, &t.subscription) {
            Ok(state) => playbook.test.recorded(&state),
            Err(e) => {
                return finish(
                    change,
                    ChangeStatus::Failed,
                    format!("could not read its current state: {e}. {}", e.hint()),
                );
            }
        };
        change.before = current.clone();
        change.after = current.clone();
        if differences(controlled, &t.before, &current).is_empty() {
            if t.unfinished {
                // Any az the killed run left behind has ended (it held the state lock), but Azure
                // may still be working on a request it accepted (SQL changes run for minutes).
                let warning = "the run stopped before az answered and the change is not visible now; \
                               if Azure accepted it and is still working on it, it may land later: \
                               run `azbook test` in a while, and back out this run again if it shows up";
                change.warnings.push(warning.to_string());
                let _ = self.note(t, format!("unchanged for now: {warning}"));
                return finish(
                    change,
                    ChangeStatus::Unchanged,
                    "as before the change (the run stopped before az answered, or an earlier backout restored it)".into(),
                );
            }
            let why = "already as it was before the change";
            let _ = self.note(t, format!("unchanged: {why}"));
            return finish(change, ChangeStatus::Unchanged, why.into());
        }
        let at_expected = differences(controlled, &t.expected, &current).is_empty();
        if !at_expected && !self.force {
            let found: Vec<String> = controlled
                .iter()
                .map(|p| {
                    format!(
                        "{p} is {} (before the change {}, after it {})",
                        p.get(&current),
                        p.get(&t.before),
                        p.get(&t.expected)
                    )
                })
                .collect();
            let message = format!(
                "drifted since the change: {}; not restored (use --force to restore it anyway)",
                found.join("; ")
            );
            let _ = self.note(t, message.clone());
            return finish(change, ChangeStatus::Drifted, message);
        }
        let steps = match backout_steps(playbook, &t.subscription, &t.context, &t.before) {
            Ok(steps) => steps,
            Err(e) => {
                return finish(
                    change,
                    ChangeStatus::Failed,
                    format!("cannot build the backout steps: {e}"),
                );
            }
        };
        change.backout = steps.iter().map(|(_, argv)| argv.clone()).collect();
        let ctx = with(&t.context, "before", &t.before);
        // What the steps that ran can have changed: the controlled fields and what each step
        // predicts; `None` once a step predicts nothing, and then everything is read back.
        let mut changed: Option<Vec<&FieldPath>> = Some(controlled.iter().collect());
        for (index, argv) in steps {
            let spec = &playbook.backout[index];
            if let Some(skip) = &spec.skip_if {
                let read = skip
                    .read
                    .render(&ctx)
                    .map_err(|m| render_error(&skip.read.command_words(), m))
                    .and_then(|argv| self.az.run(&argv, Some(&t.subscription), CallKind::Read));
                match read.map(|out| skip.when.test(&with(&ctx, "read", &out))) {
                    Ok(Ok(true)) => {
                        let _ = self.note(t, format!("not needed: {}", spec.name));
                        continue;
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => {
                        return finish(change, ChangeStatus::Failed, format!("{}: {e}", spec.name));
                    }
                    Err(e) => {
                        return finish(
                            change,
                            ChangeStatus::Failed,
                            format!("{}: {e}. {}", spec.name, e.hint()),
                        );
                    }
                }
            }
            changed = changed
                .filter(|_| !spec.after.is_empty())
                .map(|mut fields| {
                    fields.extend(spec.after.iter().map(|(path, _)| path));
                    fields
                });
            change.steps.push(PlannedStep {
                index,
                name: spec.name.clone(),
                kind: StepKind::Az,
                argv: argv.clone(),
                instructions: None,
                reversible: true,
                warning: None,
            });
            if self.journal.is_none() {
                continue;
            }
            let seq = match self.append(Record::Intent(Intent {
                resource: t.resource.clone(),
                subscription: t.subscription.clone(),
                playbook: t.playbook.clone(),
                step: index,
                step_name: spec.name.clone(),
                argv: argv.clone(),
                context: t.context.clone(),
                before: current.clone(),
                expected: t.before.clone(),
                backout: Vec::new(),
                reverts: Some(t.last_seq),
            })) {
                Ok(seq) => seq,
                Err(e) => {
                    return finish(
                        change,
                        ChangeStatus::Failed,
                        format!("could not write the change log, so nothing was changed: {e}"),
                    );
                }
            };
            let ran = self.az.run_full(&argv, CallKind::Change);
            let failed = ran
                .as_ref()
                .err()
                .map(|e| format!("{}: {e}. {}", spec.name, e.hint()));
            let outcome = StepOutcome {
                intent: seq,
                status: if failed.is_some() {
                    StepStatus::Failed
                } else {
                    StepStatus::Done
                },
                exit_code: match &ran {
                    Ok(_) => Some(0),
                    Err(e) => e.exit_code,
                },
                error: ran.as_ref().err().map(|e| e.to_string()),
                after: None,
                verified: false,
            };
            if let Err(e) = self.append(Record::Outcome(outcome)) {
                return finish(
                    change,
                    ChangeStatus::Failed,
                    format!("a backout step ran but its outcome could not be written: {e}"),
                );
            }
            if let Some(message) = failed {
                return finish(change, ChangeStatus::Failed, message);
            }
        }
        if self.journal.is_none() {
            let message = if at_expected {
                "would restore the recorded state"
            } else {
                "drifted; --force would restore the recorded state"
            };
            return finish(change, ChangeStatus::Pending, message.into());
        }
        // Verified only when the controlled fields read back equal the recorded prior state.
        let read = match &changed {
            Some(fields) => read_back(
                self.az,
                playbook,
                &t.context,
                &t.subscription,
                fields,
                &current,
            ),
            None => read_state(self.az, playbook, &t.context, &t.subscription),
        };
        match read {
            Ok(state) => {
                let now = playbook.test.recorded(&state);
                change.after = now.clone();
                let left = differences(controlled, &t.before, &now);
                let side: Vec<String> = record
                    .iter()
                    .filter(|p| !controlled.contains(p))
                    .filter(|p| !same_value(p.get(&t.before), p.get(&now)))
                    .map(|p| p.to_string())
                    .collect();
                if left.is_empty() {
                    let mut message = "restored and verified".to_string();
                    if !side.is_empty() {
                        message = format!(
                            "{message}; Azure reports these recorded fields differently than before: {}",
                            side.join(", ")
                        );
                    }
                    let _ = self.note(t, message.clone());
                    finish(change, ChangeStatus::Restored, message)
                } else {
                    let message = format!(
                        "backout ran but the state read back is not the recorded one: {}",
                        left.join("; ")
                    );
                    let _ = self.note(t, message.clone());
                    finish(change, ChangeStatus::Failed, message)
                }
            }
            Err(e) => finish(
                change,
                ChangeStatus::Failed,
                format!("backout ran, but reading it back failed: {e}"),
            ),
        }
    }
}
