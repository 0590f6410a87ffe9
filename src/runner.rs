//! The step runner that `apply` and `backout` share: per target, each az step is announced in
//! the change log (its `intent`, fsynced) before az runs, its `outcome` recorded after, and the
//! target read back and verified once its steps are done. Written once so that the two cannot
//! drift apart (ARCHITECTURE.md, "The data flow of apply and backout").
//!
//! One policy for a change log that cannot be written, whatever record it was: the target ends
//! `failed` with that reason, and the run starts no new change (the targets not yet started end
//! `skipped`), since a change azbook cannot record is a change `backout` could not undo.

use crate::az::{Az, AzError, CallKind, ErrorKind};
use crate::evaluate::{Progress, read_back, read_state};
use crate::fieldpath::FieldPath;
use crate::journal::{
    Intent, Journal, Note, Record, RunEnd, RunEndStatus, StepOutcome, StepStatus,
};
use crate::model::{Change, ChangeReport, ChangeStatus};
use crate::playbook::Playbook;
use crate::scheduler;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// Why a run stopped starting new changes, once it has.
#[derive(Default)]
struct Stop {
    reason: Mutex<Option<String>>,
}

impl Stop {
    fn get(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The first reason stays: later ones are its consequences.
    fn set(&self, reason: String) {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
    }
}

/// Runs steps against Azure and records them; shared by every worker of one run. Its locks are
/// taken through a poison (a worker that panicked while holding one): the run must still close
/// its change log and print its results after a bug, and each guarded value stays consistent
/// (a record is appended whole or not at all; a list of names is only pushed to or pruned).
pub struct Runner<'a> {
    pub az: &'a Az<'a>,
    /// None for a dry run: nothing is written and nothing is changed.
    journal: Option<&'a Mutex<Journal>>,
    stop: Stop,
    /// The resources whose az step is running now, for an interrupt to name.
    in_flight: Mutex<Vec<String>>,
    /// Told, once, which changes are still running when the first interrupt arrives.
    on_interrupt: Option<&'a Announce>,
    /// Told when a step that can take minutes starts, so that a person watching knows why.
    on_long_step: Option<&'a LongStep<'a>>,
}

/// What a run says when a long-running step starts: the resource, the step's name, and why it
/// can take minutes.
pub type LongStep<'a> = dyn Fn(&str, &str, &str) + Sync + 'a;

/// What a run says when the first interrupt arrives, given the changes still running.
pub type Announce = dyn Fn(&[String]) + Sync;

/// Why a run stopped starting new changes after Ctrl-C or SIGTERM.
pub const INTERRUPTED: &str = "interrupted (Ctrl-C or SIGTERM)";

/// What one az step came to.
pub struct StepResult {
    /// The change log's sequence number of the step's intent.
    pub seq: u64,
    /// What az printed, or how it failed.
    pub ran: Result<Value, AzError>,
}

impl<'a> Runner<'a> {
    pub fn new(az: &'a Az<'a>, journal: Option<&'a Mutex<Journal>>) -> Runner<'a> {
        Runner {
            az,
            journal,
            stop: Stop::default(),
            in_flight: Mutex::new(Vec::new()),
            on_interrupt: None,
            on_long_step: None,
        }
    }

    /// Calls `announce` when a long-running step starts.
    pub fn on_long_step(mut self, announce: &'a LongStep<'a>) -> Runner<'a> {
        self.on_long_step = Some(announce);
        self
    }

    /// Says that a long-running step is starting (see [`LongStep`]).
    pub fn long_step(&self, resource: &str, step: &str, why: &str) {
        if let Some(announce) = self.on_long_step {
            announce(resource, step, why);
        }
    }

    /// Calls `announce` with the changes still running when the first interrupt arrives.
    pub fn on_interrupt(mut self, announce: &'a Announce) -> Runner<'a> {
        self.on_interrupt = Some(announce);
        self
    }

    /// True when the run was interrupted: it started no change after the first signal.
    pub fn interrupted(&self) -> bool {
        self.az.signals() > 0
    }

    /// Watches for the first interrupt until `finished`: the run then starts no new change,
    /// and the changes still running are named while they finish.
    fn watch(&self, finished: &AtomicBool) {
        while !finished.load(Ordering::SeqCst) {
            if self.interrupted() {
                self.stop.set(INTERRUPTED.to_string());
                if let Some(announce) = self.on_interrupt {
                    announce(
                        &self
                            .in_flight
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner),
                    );
                }
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// True for a dry run, which changes nothing and writes nothing.
    pub fn dry_run(&self) -> bool {
        self.journal.is_none()
    }

    /// Runs `work` on every item, `jobs` at a time, starting them in order, and returns what
    /// each came to in that order, with why the run stopped early if it did. An item not yet
    /// started when the run stopped comes back from `ended(item, Skipped, reason)` instead, and
    /// one whose work panicked (a bug) from `ended(item, Failed, ..)`, after which the run
    /// starts nothing new: its other workers finish, the log is closed and the results printed.
    pub fn run_all<T: Send + Clone>(
        &self,
        jobs: usize,
        items: Vec<T>,
        progress: &dyn Progress,
        work: &(dyn Fn(T) -> Change + Sync),
        ended: &(dyn Fn(T, ChangeStatus, String) -> Change + Sync),
    ) -> (Vec<Change>, Option<String>) {
        progress.found(items.len() as u64);
        let slots: Vec<Mutex<Option<Change>>> = items.iter().map(|_| Mutex::new(None)).collect();
        let finished = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| self.watch(&finished));
            self.schedule(jobs, items, &slots, progress, work, ended);
            finished.store(true, Ordering::SeqCst);
        });
        let done = slots
            .into_iter()
            .map(|s| {
                s.into_inner()
                    .unwrap_or_else(PoisonError::into_inner)
                    .expect("every item ran")
            })
            .collect();
        (done, self.stop.get())
    }

    fn schedule<T: Send + Clone>(
        &self,
        jobs: usize,
        items: Vec<T>,
        slots: &[Mutex<Option<Change>>],
        progress: &dyn Progress,
        work: &(dyn Fn(T) -> Change + Sync),
        ended: &(dyn Fn(T, ChangeStatus, String) -> Change + Sync),
    ) {
        scheduler::run(jobs, |spawner| {
            // The scheduler runs the newest job first: spawn in reverse so that items start in
            // order. Each job owns its item, so that what it holds is freed once it is done.
            for (item, slot) in items.into_iter().zip(slots).rev() {
                spawner.spawn(move |_| {
                    let change = match self.stop.get() {
                        Some(reason) => ended(
                            item,
                            ChangeStatus::Skipped,
                            format!("not started: {reason}"),
                        ),
                        None => self.guarded(item, work, ended),
                    };
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(change);
                    progress.assessed();
                });
            }
        });
    }

    /// Runs `work`, turning a panic into a failed target and a stop.
    fn guarded<T: Clone>(
        &self,
        item: T,
        work: &(dyn Fn(T) -> Change + Sync),
        ended: &(dyn Fn(T, ChangeStatus, String) -> Change + Sync),
    ) -> Change {
        let kept = item.clone();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(item))) {
            Ok(change) => change,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                let reason = format!("azbook failed internally ({what}); please report this bug");
                self.stop.set(reason.clone());
                let message = format!(
                    "{reason}. Its change may or may not have been made: `azbook backout` reads the live state and restores it"
                );
                ended(kept, ChangeStatus::Failed, message)
            }
        }
    }

    /// Appends a record; a failure stops the run and comes back as the target's message.
    fn append(&self, record: Record) -> Result<u64, String> {
        let Some(journal) = self.journal else {
            return Ok(0);
        };
        let appended = journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .append(record);
        appended.map_err(|e| {
            let reason = format!("the change log cannot be written: {e:#}");
            self.stop.set(reason.clone());
            reason
        })
    }

    /// Closes the run's change log with how it ended and its summary: `stopped` when it
    /// stopped starting new changes, else incomplete when some change failed or drifted.
    pub fn end(&self, report: &ChangeReport, stopped: bool) -> anyhow::Result<()> {
        let Some(journal) = self.journal else {
            return Ok(());
        };
        let status = match (stopped, report.has_failures()) {
            _ if self.interrupted() => RunEndStatus::Interrupted,
            (true, _) => RunEndStatus::Stopped,
            (false, true) => RunEndStatus::Incomplete,
            (false, false) => RunEndStatus::Finished,
        };
        let summary = report.summary;
        let record = Record::RunEnd(RunEnd { status, summary });
        journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .append(record)?;
        Ok(())
    }

    /// A decision worth keeping in the change log (drift, a warning, a manual step).
    pub fn note(&self, change: &Change, message: String) -> Result<(), String> {
        self.append(Record::Note(Note {
            resource: Some(change.resource.clone()),
            playbook: Some(change.playbook.clone()),
            message,
        }))
        .map(|_| ())
    }

    /// One az step: the intent is durable before az runs (without it nothing is changed), then
    /// az runs. A failure that every later call would share (signed out, az gone) stops the run.
    pub fn start(&self, intent: Intent) -> Result<StepResult, String> {
        let argv = intent.argv.clone();
        let resource = intent.resource.clone();
        let seq = self
            .append(Record::Intent(intent))
            .map_err(|e| format!("{e}, so nothing was changed"))?;
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(resource.clone());
        let ran = self.az.run_full(&argv, CallKind::Change);
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|r| *r != resource);
        if let Err(error) = &ran
            && stops_the_run(error)
        {
            self.stop.set(format!("{error}. {}", error.hint()));
        }
        Ok(StepResult { seq, ran })
    }

    /// The step's outcome, after its intent. An az killed by a second interrupt may or may not
    /// have made its change: the outcome says `unknown`, and backout reads the live state.
    pub fn finish(&self, mut outcome: StepOutcome) -> Result<(), String> {
        if outcome.status == StepStatus::Failed && self.az.stopped_by_signal() {
            outcome.status = StepStatus::Unknown;
        }
        self.append(Record::Outcome(outcome))
            .map(|_| ())
            .map_err(|e| format!("the step ran, but its outcome could not be recorded: {e}"))
    }

    /// Reads a target back after its steps: only what they can have written when that is
    /// known, the whole state otherwise.
    pub fn read_back(
        &self,
        playbook: &Playbook,
        change: &Change,
        written: &Written,
        known: &Value,
    ) -> Result<Value, AzError> {
        match &written.0 {
            Some(fields) => read_back(
                self.az,
                playbook,
                &change.context,
                &change.subscription,
                fields,
                known,
            ),
            None => self.read(playbook, change),
        }
    }

    /// Reads a target's whole current state, as the test sees it.
    pub fn read(&self, playbook: &Playbook, change: &Change) -> Result<Value, AzError> {
        read_state(self.az, playbook, &change.context, &change.subscription)
    }
}

/// The outcome record of a step whose az call failed or succeeded, before any read-back.
pub fn outcome_of(seq: u64, ran: &Result<Value, AzError>) -> StepOutcome {
    StepOutcome {
        intent: seq,
        status: if ran.is_ok() {
            StepStatus::Done
        } else {
            StepStatus::Failed
        },
        exit_code: match ran {
            Ok(_) => Some(0),
            Err(e) => e.exit_code,
        },
        error: ran.as_ref().err().map(|e| e.to_string()),
        after: None,
        verified: false,
    }
}

/// What the steps run so far can have written: the fields each predicts, or `None` once a step
/// predicts nothing (and then everything is read back).
pub struct Written<'p>(Option<Vec<&'p FieldPath>>);

impl<'p> Written<'p> {
    pub fn new(fields: impl IntoIterator<Item = &'p FieldPath>) -> Written<'p> {
        Written(Some(fields.into_iter().collect()))
    }

    pub fn add(&mut self, predicted: &'p [(FieldPath, Value)]) {
        if predicted.is_empty() {
            self.0 = None;
        } else if let Some(fields) = &mut self.0 {
            fields.extend(predicted.iter().map(|(path, _)| path));
        }
    }
}

/// Ends a change with a status and a message.
pub fn conclude(mut change: Change, status: ChangeStatus, message: String) -> Change {
    change.status = status;
    change.message = message;
    change
}

/// Failures after which no further az call is worth making (signed out, az gone).
pub fn stops_the_run(error: &AzError) -> bool {
    matches!(error.kind, ErrorKind::NotSignedIn | ErrorKind::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_fields_grow_until_a_step_predicts_nothing() {
        let a = FieldPath::parse("encryption.keySource").unwrap();
        let b = FieldPath::parse("tde.state").unwrap();
        let mut written = Written::new([&a]);
        let predicted = [(b.clone(), Value::Null)];
        written.add(&predicted);
        assert_eq!(written.0.as_deref(), Some(&[&a, &b][..]));
        written.add(&[]);
        assert!(
            written.0.is_none(),
            "a step that predicts nothing: read everything"
        );
        written.add(&predicted);
        assert!(written.0.is_none(), "and it stays so");
    }

    #[test]
    fn a_panicking_target_fails_and_stops_the_run_without_losing_the_others() {
        let az = Az::new(crate::az::AzConfig::default(), None);
        let runner = Runner::new(&az, None);
        let change = |name: &str| Change {
            playbook: "p".into(),
            resource: name.into(),
            subscription: "s".into(),
            steps: Vec::new(),
            before: Value::Null,
            after: Value::Null,
            backout: Vec::new(),
            status: ChangeStatus::Pending,
            message: String::new(),
            warnings: Vec::new(),
            context: Value::Null,
            differences: Vec::new(),
        };
        let work = |c: Change| {
            if c.resource == "b" {
                panic!("bad state");
            }
            conclude(c, ChangeStatus::Done, "ok".into())
        };
        let ended = |c: Change, status, why| conclude(c, status, why);
        let items = vec![change("a"), change("b"), change("c")];
        let (done, stopped) = runner.run_all(1, items, &Silent, &work, &ended);
        let statuses: Vec<ChangeStatus> = done.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [
                ChangeStatus::Done,
                ChangeStatus::Failed,
                ChangeStatus::Skipped
            ]
        );
        assert!(done[1].message.contains("bad state"), "{}", done[1].message);
        assert!(stopped.unwrap().contains("azbook failed internally"));
    }

    struct Silent;
    impl Progress for Silent {}

    #[test]
    fn the_first_reason_to_stop_is_kept() {
        let stop = Stop::default();
        assert_eq!(stop.get(), None);
        stop.set("signed out".into());
        stop.set("the change log cannot be written".into());
        assert_eq!(stop.get().as_deref(), Some("signed out"));
    }
}
