//! Reverses a run from its change log through the shared step runner (`crate::runner`):
//! newest change first, each target's controlled fields read and compared with the recorded
//! prior state and the state azbook set, then the backout steps, then one read-back that must
//! show the recorded prior state (ARCHITECTURE.md, "The data flow of apply and backout").

use crate::az::CallKind;
use crate::discover::render_error;
use crate::evaluate::Progress;
use crate::fieldpath::FieldPath;
use crate::journal::{Intent, RunLog};
use crate::model::{Change, ChangeStatus, FieldDifference, PlannedStep, StepKind};
use crate::plan::backout_steps;
use crate::playbook::{Playbook, SkipIf};
use crate::runner::{Runner, Written, conclude, outcome_of};
use serde_json::Value;
use std::collections::HashMap;

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

/// Backs out every target, `jobs` at a time, the newest change starting first (`targets` come
/// newest first); a target's own steps run in order inside its job. `force` restores targets
/// that drifted since the change too. Returns the targets' changes in that order, and why the
/// run stopped early if it did.
pub fn execute(
    runner: &Runner,
    targets: Vec<(&Playbook, Changed)>,
    jobs: usize,
    force: bool,
    progress: &dyn Progress,
) -> (Vec<Change>, Option<String>) {
    let work = |(playbook, target): (&Playbook, Changed)| one(runner, playbook, &target, force);
    let ended = |(_, target): (&Playbook, Changed), status, reason| {
        conclude(skeleton(&target), status, reason)
    };
    runner.run_all(jobs, targets, progress, &work, &ended)
}

/// The change a target's backout is reported as, before anything is known of it.
fn skeleton(t: &Changed) -> Change {
    Change {
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
        differences: Vec::new(),
    }
}

fn with(context: &Value, key: &str, value: &Value) -> Value {
    let mut ctx = context.clone();
    if let Value::Object(map) = &mut ctx {
        map.insert(key.into(), value.clone());
    }
    ctx
}

/// Backs out one target: read, decide, the steps, verify.
fn one(runner: &Runner, playbook: &Playbook, t: &Changed, force: bool) -> Change {
    let mut change = skeleton(t);
    let current = match runner.read(playbook, &change) {
        Ok(state) => playbook.test.recorded(&state),
        Err(e) => {
            let message = format!("could not read its current state: {e}. {}", e.hint());
            return conclude(change, ChangeStatus::Failed, message);
        }
    };
    change.before = current.clone();
    change.after = current.clone();
    // Drift is judged on everything backout writes, not on the controlled fields alone: a key
    // put back by someone else, from another vault or at another version, is not "unchanged".
    let judged = playbook.judged();
    let since = FieldDifference::between(&judged, &t.before, &current);
    if since.is_empty() {
        return unchanged(runner, change, t);
    }
    let controlled = &playbook.test.controlled;
    let at_expected = FieldDifference::between(controlled, &t.expected, &current).is_empty();
    if !at_expected && !force {
        return drifted(runner, change, t, since);
    }
    let steps = match backout_steps(playbook, &t.subscription, &t.context, &t.before) {
        Ok(steps) => steps,
        Err(e) => {
            let message = format!("cannot build the backout steps: {e}");
            return conclude(change, ChangeStatus::Failed, message);
        }
    };
    change.backout = steps.iter().map(|(_, argv)| argv.clone()).collect();
    let mut written = Written::new(&judged);
    for (index, argv) in steps {
        let spec = &playbook.backout[index];
        match run_step(runner, t, &mut change, spec, (index, argv), &current) {
            Ok(Ran::Yes) => written.add(&spec.after),
            Ok(Ran::NotNeeded) => {}
            Err(message) => return conclude(change, ChangeStatus::Failed, message),
        }
    }
    if runner.dry_run() {
        let message = if at_expected {
            "would restore the recorded state"
        } else {
            "drifted; --force would restore the recorded state"
        };
        return conclude(change, ChangeStatus::Pending, message.into());
    }
    verify(runner, playbook, change, t, &written, &current)
}

/// The target already reads as it was before the change.
fn unchanged(runner: &Runner, change: Change, t: &Changed) -> Change {
    let (note, message, warning) = if t.unfinished {
        // Any az the killed run left behind has ended (it held the state lock), but Azure may
        // still be working on a request it accepted (SQL changes run for minutes).
        let warning = "the run stopped before az answered and the change is not visible now; \
                       if Azure accepted it and is still working on it, it may land later: \
                       run `azbook test` in a while, and back out this run again if it shows up";
        (
            format!("unchanged for now: {warning}"),
            "as before the change (the run stopped before az answered, or an earlier backout restored it)",
            Some(warning),
        )
    } else {
        let why = "already as it was before the change";
        (format!("unchanged: {why}"), why, None)
    };
    let mut change = change;
    change.warnings.extend(warning.map(str::to_string));
    ended_with_note(
        runner,
        change,
        ChangeStatus::Unchanged,
        message.into(),
        note,
    )
}

/// The target is neither as before the change nor as azbook left it: not restored unless forced.
/// `since`: the judged fields that differ from the recorded prior state.
fn drifted(
    runner: &Runner,
    mut change: Change,
    t: &Changed,
    since: Vec<FieldDifference>,
) -> Change {
    let found: Vec<String> = since
        .iter()
        .map(|d| {
            let field = FieldPath::parse(&d.field).expect("a judged field is a field path");
            format!(
                "{} is {} (before the change {}, after it {})",
                d.field,
                d.found,
                d.expected,
                field.get(&t.expected)
            )
        })
        .collect();
    let message = format!(
        "drifted since the change: {}; not restored (use --force to restore it anyway)",
        found.join("; ")
    );
    change.differences = since;
    ended_with_note(
        runner,
        change,
        ChangeStatus::Drifted,
        message.clone(),
        message,
    )
}

/// Ends a target with a status, after its note is in the change log: a status whose note could
/// not be written is not reported as if it had been.
fn ended_with_note(
    runner: &Runner,
    change: Change,
    status: ChangeStatus,
    message: String,
    note: String,
) -> Change {
    match runner.note(&change, note) {
        Ok(()) => conclude(change, status, message),
        Err(e) => conclude(change, ChangeStatus::Failed, e),
    }
}

/// Whether a backout step ran.
enum Ran {
    Yes,
    /// Its `skip_if` read showed it is not needed (a key still registered).
    NotNeeded,
}

/// One backout step: its `skip_if` check, then intent, az, outcome (a dry run only lists it).
fn run_step(
    runner: &Runner,
    t: &Changed,
    change: &mut Change,
    spec: &crate::playbook::Step,
    (index, argv): (usize, Vec<String>),
    current: &Value,
) -> Result<Ran, String> {
    if let Some(skip) = &spec.skip_if
        && not_needed(runner, t, skip).map_err(|e| format!("{}: {e}", spec.name))?
    {
        runner.note(change, format!("not needed: {}", spec.name))?;
        return Ok(Ran::NotNeeded);
    }
    change.steps.push(PlannedStep {
        index,
        name: spec.name.clone(),
        kind: StepKind::Az,
        argv: argv.clone(),
        instructions: None,
        reversible: true,
        warning: None,
        long_running: spec.long_running.clone(),
    });
    if runner.dry_run() {
        return Ok(Ran::Yes);
    }
    if let Some(why) = &spec.long_running {
        runner.long_step(&t.resource, &spec.name, why);
    }
    let step = runner.start(Intent {
        resource: t.resource.clone(),
        subscription: t.subscription.clone(),
        playbook: t.playbook.clone(),
        step: index,
        step_name: spec.name.clone(),
        argv,
        context: t.context.clone(),
        before: current.clone(),
        expected: t.before.clone(),
        backout: Vec::new(),
        reverts: Some(t.last_seq),
    })?;
    let failed = step
        .ran
        .as_ref()
        .err()
        .map(|e| format!("{}: {e}. {}", spec.name, e.hint()));
    runner
        .finish(outcome_of(step.seq, &step.ran))
        .map_err(|e| format!("a backout {e}"))?;
    match failed {
        Some(message) => Err(message),
        None => Ok(Ran::Yes),
    }
}

/// Reads what `skip_if` names and tests it.
fn not_needed(runner: &Runner, t: &Changed, skip: &SkipIf) -> Result<bool, String> {
    let ctx = with(&t.context, "before", &t.before);
    let read = skip
        .read
        .render(&ctx)
        .map_err(|m| render_error(&skip.read.command_words(), m))
        .and_then(|argv| runner.az.run(&argv, Some(&t.subscription), CallKind::Read))
        .map_err(|e| format!("{e}. {}", e.hint()))?;
    skip.when.test(&with(&ctx, "read", &read))
}

/// Restored only when every judged field reads back as recorded: the controlled ones and every
/// field the steps wrote (the playbook's `not_compared` fields excepted, with their reason).
fn verify(
    runner: &Runner,
    playbook: &Playbook,
    mut change: Change,
    t: &Changed,
    written: &Written,
    current: &Value,
) -> Change {
    let now = match runner.read_back(playbook, &change, written, current) {
        Ok(state) => playbook.test.recorded(&state),
        Err(e) => {
            let message = format!("backout ran, but reading it back failed: {e}");
            return conclude(change, ChangeStatus::Failed, message);
        }
    };
    change.after = now.clone();
    let left = FieldDifference::between(&playbook.judged(), &t.before, &now);
    let (status, message) = if left.is_empty() {
        (ChangeStatus::Restored, "restored and verified".to_string())
    } else {
        let message = format!(
            "backout ran but the state read back is not the recorded one: {}",
            FieldDifference::describe(&left)
        );
        (ChangeStatus::Failed, message)
    };
    change.differences = left;
    ended_with_note(runner, change, status, message.clone(), message)
}
