//! Executes changes through the shared step runner (`crate::runner`): per target, a saved plan's
//! target is re-read and skipped as drifted when it moved, the playbook's prechecks warn, each
//! step is recorded, run, read back and verified, and the target is done only when the
//! playbook's own test passes on what was read back.

use crate::az::{Az, CallKind};
use crate::evaluate::{Progress, verdict};
use crate::fieldpath::{differences, same_value};
use crate::journal::{Intent, StepOutcome, StepStatus};
use crate::memo::Memo;
use crate::model::{Change, ChangeStatus, FieldDifference, PlannedStep, Status, StepKind};
use crate::plan;
use crate::playbook::{Playbook, Step};
use crate::runner::{Runner, StepResult, Written, conclude, outcome_of, stops_the_run};
use serde_json::Value;

/// Runs the changes, `jobs` at a time, and returns them with their statuses, and why the run
/// stopped early if it did (signed out mid-run, az gone, the change log unwritable): changes
/// not yet started are then `skipped`. `recheck` reads each target first and skips it as
/// drifted when its state is no longer the plan's `before` (a saved plan, possibly hours old).
pub fn execute(
    runner: &Runner,
    playbooks: &[Playbook],
    changes: Vec<Change>,
    jobs: usize,
    recheck: bool,
    progress: &dyn Progress,
) -> (Vec<Change>, Option<String>) {
    let checked = Checked::default();
    let work = |change: Change| {
        let playbook = playbooks
            .iter()
            .find(|p| p.id == change.playbook)
            .expect("changes come from the selected playbooks");
        execute_one(runner, playbook, change, recheck, &checked)
    };
    runner.run_all(jobs, changes, progress, &work, &conclude)
}

fn execute_one(
    runner: &Runner,
    playbook: &Playbook,
    mut change: Change,
    recheck: bool,
    checked: &Checked,
) -> Change {
    if recheck && let Some(ended) = drifted_since_plan(runner, playbook, &mut change) {
        return ended;
    }
    for warning in prechecks(runner.az, playbook, &change, checked) {
        if let Err(e) = runner.note(&change, format!("warning: {warning}")) {
            return conclude(change, ChangeStatus::Failed, e);
        }
        change.warnings.push(warning);
    }
    let mut progress = Steps::new(&change);
    for step in change.steps.clone() {
        let ran = match step.kind {
            StepKind::Manual => note_manual(runner, &change, &step),
            StepKind::Az => run_step(runner, playbook, &mut change, &step, &mut progress),
        };
        if let Err(message) = ran {
            return conclude(change, ChangeStatus::Failed, message);
        }
    }
    finish(playbook, change, progress.last_state)
}

/// What a target's steps have done so far.
struct Steps<'p> {
    /// The recorded fields as the steps run so far should have left them.
    expected: Value,
    written: Written<'p>,
    /// The whole state read back after the last step.
    last_state: Option<Value>,
}

impl Steps<'_> {
    fn new(change: &Change) -> Self {
        Steps {
            expected: change.before.clone(),
            written: Written::new([]),
            last_state: None,
        }
    }
}

/// A saved plan's target whose judged fields (`Playbook::judged`, under the equality rules) no
/// longer hold the plan's `before` is not changed. Otherwise the change goes ahead from the
/// fresh read: its intent then records the state as it was immediately before the change,
/// which is what backout must restore (a field the service changes on its own, such as SQL
/// auto-rotation, may have moved since the plan was made).
fn drifted_since_plan(runner: &Runner, playbook: &Playbook, change: &mut Change) -> Option<Change> {
    let now = match runner.read(playbook, change) {
        Ok(state) => playbook.test.recorded(&state),
        Err(e) => {
            let message = format!("could not read it before changing it: {e}. {}", e.hint());
            return Some(conclude(change.clone(), ChangeStatus::Failed, message));
        }
    };
    let drift = FieldDifference::between(&playbook.judged(), &change.before, &now);
    if drift.is_empty() {
        return match plan::derive(
            playbook,
            &change.resource,
            &change.subscription,
            &change.context,
            &now,
        ) {
            Ok(fresh) if fresh.steps == change.steps => {
                change.before = fresh.before;
                change.after = fresh.after;
                change.backout = fresh.backout;
                None
            }
            Ok(_) => Some(not_changed(
                runner,
                change,
                "its state now calls for other steps than the plan's".into(),
            )),
            Err(e) => {
                let message = format!("cannot derive its change from its state now: {e}");
                Some(conclude(change.clone(), ChangeStatus::Failed, message))
            }
        };
    }
    change.after = now;
    let described = FieldDifference::describe(&drift);
    change.differences = drift;
    Some(not_changed(runner, change, described))
}

/// Drifted since the plan: noted, and not changed.
fn not_changed(runner: &Runner, change: &mut Change, why: String) -> Change {
    match runner.note(change, format!("drifted, not changed: {why}")) {
        Ok(()) => conclude(
            change.clone(),
            ChangeStatus::Drifted,
            format!("its state changed since the plan was made, so it was not changed ({why})"),
        ),
        Err(e) => conclude(change.clone(), ChangeStatus::Failed, e),
    }
}

fn note_manual(runner: &Runner, change: &Change, step: &PlannedStep) -> Result<(), String> {
    let text = step.instructions.clone().unwrap_or_default();
    runner.note(
        change,
        format!("manual step not run by azbook: {}: {text}", step.name),
    )
}

/// One az step: intent, az, read back, verify, outcome. Err: the target failed, with why.
fn run_step<'p>(
    runner: &Runner,
    playbook: &'p Playbook,
    change: &mut Change,
    step: &PlannedStep,
    progress: &mut Steps<'p>,
) -> Result<(), String> {
    let spec = &playbook.implement[step.index];
    for (path, value) in &spec.after {
        path.set(&mut progress.expected, value.clone());
    }
    progress.written.add(&spec.after);
    let intent = Intent {
        resource: change.resource.clone(),
        subscription: change.subscription.clone(),
        playbook: change.playbook.clone(),
        step: step.index,
        step_name: step.name.clone(),
        argv: step.argv.clone(),
        context: change.context.clone(),
        before: change.before.clone(),
        expected: progress.expected.clone(),
        backout: change.backout.clone(),
        reverts: None,
    };
    if let Some(why) = &step.long_running {
        runner.long_step(&change.resource, &step.name, why);
    }
    let StepResult { seq, ran } = runner.start(intent)?;
    let (outcome, verdict) = match ran {
        Err(e) => after_failure(runner, playbook, change, spec, seq, e),
        Ok(_) => after_success(runner, playbook, change, spec, seq, progress),
    };
    runner.finish(outcome)?;
    verdict
}

/// az failed; but az may have died after Azure made the change (a timeout, a torn answer): look,
/// so that the operator is not told nothing changed when something did.
fn after_failure(
    runner: &Runner,
    playbook: &Playbook,
    change: &mut Change,
    spec: &Step,
    seq: u64,
    error: crate::az::AzError,
) -> (StepOutcome, Result<(), String>) {
    let landed = (!stops_the_run(&error))
        .then(|| runner.read(playbook, change).ok())
        .flatten()
        .map(|state| playbook.test.recorded(&state))
        .filter(|after| spec.after.iter().all(|(p, v)| same_value(p.get(after), v)));
    let message = match &landed {
        Some(_) => format!(
            "{}: az reported a failure ({error}), but the resource reads back as changed: the change is in place, and `azbook backout` restores it",
            spec.name
        ),
        None => format!("{}: {error}. {}", spec.name, error.hint()),
    };
    if let Some(after) = &landed {
        change.after = after.clone();
    }
    let mut outcome = outcome_of(seq, &Err(error));
    outcome.after = landed;
    (outcome, Err(message))
}

/// az succeeded: read back what the steps can have written and require the step's prediction.
fn after_success<'p>(
    runner: &Runner,
    playbook: &Playbook,
    change: &mut Change,
    spec: &Step,
    seq: u64,
    progress: &mut Steps<'p>,
) -> (StepOutcome, Result<(), String>) {
    let mut outcome = outcome_of(seq, &Ok(Value::Null));
    let state = match runner.read_back(playbook, change, &progress.written, &change.before) {
        Ok(state) => state,
        Err(e) => {
            outcome.status = StepStatus::Failed;
            outcome.error = Some(format!("the change ran, but reading it back failed: {e}"));
            let message = format!(
                "{}: az succeeded, but reading it back failed: {e}",
                spec.name
            );
            return (outcome, Err(message));
        }
    };
    let after = playbook.test.recorded(&state);
    let verified = spec.after.iter().all(|(p, v)| same_value(p.get(&after), v));
    progress.last_state = Some(state);
    change.after = after.clone();
    outcome.after = Some(after);
    outcome.verified = verified;
    if verified {
        return (outcome, Ok(()));
    }
    outcome.status = StepStatus::Failed;
    outcome.error =
        Some("the change ran but reading it back does not show the expected state".into());
    let message = format!(
        "{}: az succeeded, but the state read back is not the expected one ({})",
        spec.name,
        differences(&playbook.test.record, &progress.expected, &change.after).join("; ")
    );
    (outcome, Err(message))
}

/// Done only when the playbook's own test passes on what was read back, unless a manual step
/// is still to be done by a person.
fn finish(playbook: &Playbook, change: Change, last_state: Option<Value>) -> Change {
    let manual: Vec<&str> = change
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Manual)
        .map(|s| s.name.as_str())
        .collect();
    let manual = manual.join("; ");
    if !change.has_az_steps() {
        let message = format!("needs a manual step, which azbook never runs: {manual}");
        return conclude(change, ChangeStatus::Skipped, message);
    }
    if manual.is_empty()
        && let Some(state) = &last_state
    {
        let check = verdict(playbook, state);
        if check.status != Status::Compliant {
            let message = format!(
                "changed, but the test still finds it {}: {}",
                check.status.as_str(),
                check.message
            );
            return conclude(change, ChangeStatus::Failed, message);
        }
    }
    let message = if manual.is_empty() {
        "changed and verified".to_string()
    } else {
        format!("changed and verified; still to do by hand: {manual}")
    };
    conclude(change, ChangeStatus::Done, message)
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
        match check.when.as_ref().map(|w| w.test(&ctx)) {
            Some(Ok(false)) => continue,
            Some(Err(why)) => {
                warnings.push(format!("{} ({}: {why})", check.warning, check.name));
                continue;
            }
            Some(Ok(true)) | None => {}
        }
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
