//! The runs a state directory holds: listing, finding one, and the newest of a kind.
//!
//! Reading needs no lock: a run being written shows as `incomplete` (its last line may be
//! torn), which is what it is at that moment.

use super::state::parse_run_id;
use super::{Record, RunKind, RunLog, RunStatus, StateDir, StepStatus};
use anyhow::{Result, anyhow, bail};
use serde::Serialize;
use std::fs;
use std::io;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub id: String,
    pub kind: Option<RunKind>,
    pub started: Option<String>,
    pub ended: Option<String>,
    pub user: Option<String>,
    pub subscriptions: Vec<String>,
    /// Intents recorded.
    pub changes: usize,
    /// Intents whose outcome is `done`.
    pub done: usize,
    /// Intents whose outcome is `failed`.
    pub failed: usize,
    /// Changes that may be in place: outcome `done`; `failed` after az succeeded (the state
    /// read back was not the expected one, or could not be read), or read back as changed
    /// though az failed (it died after Azure made the change); or no outcome at all (the run
    /// stopped before az answered: only the live state can tell). An apply run with none
    /// changed nothing.
    pub changed: usize,
    pub reverts: Option<String>,
    /// Backout runs that name this run in `reverts`, oldest first.
    pub reverted_by: Vec<String>,
    pub status: RunStatus,
    /// Why an `unreadable` run cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl RunSummary {
    fn of(log: &RunLog) -> RunSummary {
        let start = log.start();
        let time_of = |pick: fn(&Record) -> bool| {
            log.entries
                .iter()
                .find(|e| pick(&e.record))
                .map(|e| e.time.clone())
        };
        let changes = log.changes();
        let count = |status: StepStatus| {
            changes
                .iter()
                .filter(|(_, _, outcome)| outcome.is_some_and(|o| o.status == status))
                .count()
        };
        RunSummary {
            id: log.id.clone(),
            kind: start
                .map(|s| s.kind)
                .or_else(|| parse_run_id(&log.id).map(|(_, kind)| kind)),
            started: time_of(|r| matches!(r, Record::RunStart(_))),
            ended: time_of(|r| matches!(r, Record::RunEnd(_))),
            user: start.map(|s| s.user.clone()),
            subscriptions: start.map(|s| s.subscriptions.clone()).unwrap_or_default(),
            changes: changes.len(),
            done: count(StepStatus::Done),
            failed: count(StepStatus::Failed),
            changed: changes
                .iter()
                .filter(|(_, intent, outcome)| match outcome {
                    None => true,
                    Some(o) => {
                        matches!(o.status, StepStatus::Done | StepStatus::Unknown)
                            || o.exit_code == Some(0)
                            || o.after
                                .as_ref()
                                .is_some_and(|after| *after != intent.before)
                    }
                })
                .count(),
            reverts: start.and_then(|s| s.reverts.clone()),
            reverted_by: Vec::new(),
            status: log.status(),
            problem: None,
        }
    }

    fn unreadable(id: &str, error: &io::Error) -> RunSummary {
        RunSummary {
            id: id.to_string(),
            kind: parse_run_id(id).map(|(_, kind)| kind),
            started: None,
            ended: None,
            user: None,
            subscriptions: Vec::new(),
            changes: 0,
            done: 0,
            failed: 0,
            changed: 0,
            reverts: None,
            reverted_by: Vec::new(),
            status: RunStatus::Unreadable,
            problem: Some(format!("cannot read its journal.jsonl ({error})")),
        }
    }
}

impl StateDir {
    /// Every run, oldest first (reading each journal; unreadable runs are listed with their problem).
    pub fn runs(&self) -> Result<Vec<RunSummary>> {
        let mut summaries: Vec<RunSummary> = self
            .run_ids()?
            .iter()
            .map(|id| match RunLog::read(&self.runs_dir().join(id), id) {
                Ok(log) => RunSummary::of(&log),
                Err(e) => RunSummary::unreadable(id, &e),
            })
            .collect();
        if let Some(running) = self.running_run() {
            for s in &mut summaries {
                if s.id == running && s.status == RunStatus::Crashed {
                    s.status = RunStatus::Running;
                }
            }
        }
        let reverts: Vec<(String, String)> = summaries
            .iter()
            .filter_map(|s| s.reverts.clone().map(|target| (target, s.id.clone())))
            .collect();
        for (target, by) in reverts {
            if let Some(reverted) = summaries.iter_mut().find(|s| s.id == target) {
                reverted.reverted_by.push(by);
            }
        }
        Ok(summaries)
    }

    pub fn read_run(&self, run_id: &str) -> Result<RunLog> {
        let dir = self.runs_dir().join(run_id);
        if parse_run_id(run_id).is_none() || !dir.is_dir() {
            bail!(self.unknown_run(run_id)?);
        }
        RunLog::read(&dir, run_id).map_err(|e| {
            anyhow!(
                "cannot read the change log of run {run_id} ({}): {e}",
                dir.join(super::JOURNAL_FILE).display()
            )
        })
    }

    /// The apply runs whose changes may still be in place, newest first: runs that changed
    /// something (`RunSummary::changed`) and that no backout run has reverted to the end (one
    /// that ended `finished`). What a change window's `azbook backout` undoes.
    pub fn unreverted(&self) -> Result<Vec<RunSummary>> {
        self.available()?;
        let runs = self.runs()?;
        let finished_backout = |id: &String| {
            runs.iter()
                .any(|r| &r.id == id && r.status == RunStatus::Finished)
        };
        let mut unreverted: Vec<RunSummary> = runs
            .iter()
            .filter(|r| r.kind == Some(RunKind::Apply) && r.changed > 0)
            .filter(|r| !r.reverted_by.iter().any(finished_backout))
            .cloned()
            .collect();
        unreverted.reverse();
        Ok(unreverted)
    }

    /// The run directories' names, oldest first. Anything else in `runs/` (a temp file, a
    /// README) is not a run.
    fn run_ids(&self) -> Result<Vec<String>> {
        let runs = self.runs_dir();
        let entries = match fs::read_dir(&runs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => bail!(
                "cannot list the runs in {}: {e}; check the state directory (--state-dir)",
                runs.display()
            ),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| anyhow!("cannot list the runs in {}: {e}", runs.display()))?;
            if let Some(name) = entry.file_name().to_str()
                && parse_run_id(name).is_some()
                && entry.path().is_dir()
            {
                ids.push(name.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The message for a run id that is not here, with the ids it most resembles.
    fn unknown_run(&self, run_id: &str) -> Result<String> {
        let ids = self.run_ids()?;
        let root = self.root().display();
        if ids.is_empty() {
            return Ok(format!(
                "no run `{run_id}`: no runs are recorded in the state directory {root} \
                 (is --state-dir right?)"
            ));
        }
        let wanted = run_id.to_ascii_lowercase();
        let common = |id: &str| {
            id.bytes()
                .zip(wanted.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        };
        let mut nearest: Vec<&String> = ids.iter().filter(|id| id.contains(&wanted)).collect();
        if nearest.is_empty() {
            let best = ids.iter().map(|id| common(id)).max().unwrap_or(0);
            nearest = ids.iter().filter(|id| common(id) == best).collect();
        }
        // The newest are the likeliest meant.
        let shown: Vec<&str> = nearest.iter().rev().take(3).map(|s| s.as_str()).collect();
        Ok(format!(
            "no run `{run_id}` in the state directory {root}; the nearest: {}; `azbook runs` \
             lists every run",
            shown.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{RunEnd, StateLock};
    use super::*;
    use crate::model::ChangeSummary;
    use std::path::Path;

    fn backout_of(state: &StateDir, reverted: &str) -> String {
        let lock = state.lock().unwrap();
        let mut journal = lock
            .create_run(start_of(RunKind::Backout, Some(reverted)), &sources())
            .unwrap();
        let mut undo = intent();
        undo.reverts = Some(1);
        let seq = journal.append(Record::Intent(undo)).unwrap();
        journal
            .append(Record::Outcome(outcome(seq, StepStatus::Done)))
            .unwrap();
        journal.append(run_end(1)).unwrap();
        journal.run_id().to_string()
    }

    /// An apply run with one change whose outcome is `step`, ended with `end` (None: no run-end,
    /// as after a crash); the lock is released before it returns unless `hold` keeps it.
    fn apply_run(
        state: &StateDir,
        step: StepStatus,
        end: Option<RunEndStatus>,
        hold: Option<&mut Vec<StateLock>>,
    ) -> String {
        let lock = state.lock().unwrap();
        let mut journal = lock
            .create_run(start_of(RunKind::Apply, None), &sources())
            .unwrap();
        let seq = journal.append(Record::Intent(intent())).unwrap();
        journal.append(Record::Outcome(outcome(seq, step))).unwrap();
        if let Some(status) = end {
            let summary = ChangeSummary::of(&[], 0, 0);
            journal
                .append(Record::RunEnd(RunEnd { status, summary }))
                .unwrap();
        }
        let id = journal.run_id().to_string();
        drop(journal);
        if let Some(held) = hold {
            held.push(lock);
        }
        id
    }

    fn status_of(state: &StateDir, id: &str) -> RunStatus {
        let runs = state.runs().unwrap();
        runs.iter().find(|r| r.id == id).unwrap().status
    }

    #[test]
    fn runs_tell_finished_failed_stopped_crashed_and_running_apart() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let finished = apply_run(&state, StepStatus::Done, Some(RunEndStatus::Finished), None);
        let failed = apply_run(
            &state,
            StepStatus::Failed,
            Some(RunEndStatus::Incomplete),
            None,
        );
        let stopped = apply_run(&state, StepStatus::Done, Some(RunEndStatus::Stopped), None);
        let crashed = apply_run(&state, StepStatus::Done, None, None);
        assert_eq!(status_of(&state, &finished), RunStatus::Finished);
        assert_eq!(status_of(&state, &failed), RunStatus::Incomplete);
        assert_eq!(status_of(&state, &stopped), RunStatus::Stopped);
        assert_eq!(
            status_of(&state, &crashed),
            RunStatus::Crashed,
            "no run-end and no azbook holding the lock for it"
        );

        let mut held = Vec::new();
        let running = apply_run(&state, StepStatus::Done, None, Some(&mut held));
        assert_eq!(status_of(&state, &running), RunStatus::Running);
        assert_eq!(
            status_of(&state, &crashed),
            RunStatus::Crashed,
            "only the run the lock names is running"
        );
        held.clear();
        assert_eq!(
            status_of(&state, &running),
            RunStatus::Crashed,
            "once its lock is gone without a run-end, it crashed"
        );

        let json = serde_json::to_value(state.runs().unwrap()).unwrap();
        let words: Vec<&str> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            words,
            ["finished", "incomplete", "stopped", "crashed", "crashed"]
        );
    }

    #[test]
    fn a_tampered_run_is_listed_as_tampered() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let id = finished_apply(&state);
        let path = dir.path().join("runs").join(&id).join("journal.jsonl");
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replacen("\"done\"", "\"failed\"", 1)).unwrap();
        assert_eq!(status_of(&state, &id), RunStatus::Tampered);
    }

    #[test]
    fn runs_are_listed_oldest_first_with_what_reverted_them() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        assert!(state.runs().unwrap().is_empty(), "no state directory yet");
        assert!(state.unreverted().unwrap().is_empty());

        let first = finished_apply(&state);
        let backout = backout_of(&state, &first);
        let second = finished_apply(&state);
        let again = backout_of(&state, &first);
        // An apply that crashed after its intent.
        let crashed = {
            let lock = state.lock().unwrap();
            let mut journal = lock
                .create_run(start_of(RunKind::Apply, None), &sources())
                .unwrap();
            journal.append(Record::Intent(intent())).unwrap();
            journal.run_id().to_string()
        };
        // Not runs: a stray file and a directory with another name.
        fs::write(state.root().join("runs/README"), "x").unwrap();
        fs::create_dir(state.root().join("runs/backup")).unwrap();

        let runs = state.runs().unwrap();
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec![&first, &backout, &second, &again, &crashed]);

        let applied = &runs[0];
        assert_eq!(applied.kind, Some(RunKind::Apply));
        assert_eq!(applied.reverted_by, vec![backout.clone(), again.clone()]);
        assert_eq!((applied.changes, applied.done, applied.failed), (2, 1, 1));
        assert_eq!(applied.status, RunStatus::Finished);
        assert_eq!(applied.user.as_deref(), Some("alice@contoso.com"));
        assert_eq!(applied.subscriptions, vec!["s1"]);
        assert!(applied.started.is_some() && applied.ended.is_some());

        assert_eq!(runs[1].kind, Some(RunKind::Backout));
        assert_eq!(runs[1].reverts.as_deref(), Some(first.as_str()));
        assert!(runs[1].reverted_by.is_empty());
        assert!(runs[2].reverted_by.is_empty());

        assert_eq!(runs[4].status, RunStatus::Crashed);
        assert_eq!(runs[4].ended, None);
        assert_eq!((runs[4].changes, runs[4].done), (1, 0));

        // The first is reverted to the end; the second and the crashed one (an intent with no
        // outcome may have landed) are not: newest first.
        let unreverted: Vec<String> = state
            .unreverted()
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(unreverted, [crashed, second]);
    }

    #[test]
    fn an_apply_that_changed_nothing_is_never_unreverted() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        // az failed and nothing read back as changed.
        let failed = {
            let lock = state.lock().unwrap();
            let mut journal = lock
                .create_run(start_of(RunKind::Apply, None), &sources())
                .unwrap();
            let seq = journal.append(Record::Intent(intent())).unwrap();
            let mut outcome = outcome(seq, StepStatus::Failed);
            outcome.after = None;
            journal.append(Record::Outcome(outcome)).unwrap();
            journal.run_id().to_string()
        };
        let nothing = {
            let lock = state.lock().unwrap();
            let mut journal = lock
                .create_run(start_of(RunKind::Apply, None), &sources())
                .unwrap();
            journal.append(note("drifted, not changed")).unwrap();
            journal.append(run_end(0)).unwrap();
            journal.run_id().to_string()
        };
        let runs = state.runs().unwrap();
        assert!(runs.iter().all(|r| r.changed == 0), "{runs:?}");
        assert!(state.unreverted().unwrap().is_empty(), "{failed} {nothing}");
        // A change whose az failed but that read back as changed is in place.
        let landed = {
            let lock = state.lock().unwrap();
            let mut journal = lock
                .create_run(start_of(RunKind::Apply, None), &sources())
                .unwrap();
            let seq = journal.append(Record::Intent(intent())).unwrap();
            let mut outcome = outcome(seq, StepStatus::Failed);
            outcome.after =
                Some(serde_json::json!({"encryption": {"keySource": "Microsoft.Storage"}}));
            journal.append(Record::Outcome(outcome)).unwrap();
            journal.run_id().to_string()
        };
        let unreverted: Vec<String> = state
            .unreverted()
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(unreverted, [landed]);
    }

    #[test]
    fn an_unreadable_run_is_listed_with_its_problem() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let id = finished_apply(&state);
        let broken = "20200101T000000Z-apply-0000";
        fs::create_dir_all(dir.path().join("runs").join(broken)).unwrap();
        let runs = state.runs().unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].id, broken);
        assert_eq!(runs[0].kind, Some(RunKind::Apply));
        assert_eq!(runs[0].status, RunStatus::Unreadable);
        let problem = runs[0].problem.as_deref().unwrap_or_default();
        assert!(
            problem.starts_with("cannot read its journal.jsonl"),
            "{problem}"
        );
        assert_eq!(runs[1].id, id);
        let message = state.read_run(broken).err().unwrap().to_string();
        assert!(message.contains("cannot read the change log"), "{message}");
    }

    #[test]
    fn an_unknown_run_id_names_the_nearest_and_azbook_runs() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let message = state
            .read_run("20261129T080102Z-apply-3f2a")
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("no runs are recorded"), "{message}");
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );

        let id = finished_apply(&state);
        let other = backout_of(&state, &id);
        // The same id with its last hex digit changed.
        let last = if id.ends_with('0') { '1' } else { '0' };
        let typo = format!("{}{last}", &id[..id.len() - 1]);
        let message = state.read_run(&typo).err().unwrap().to_string();
        assert!(message.contains(&format!("no run `{typo}`")), "{message}");
        assert!(message.contains(&id), "{message}");
        assert!(message.contains("`azbook runs`"), "{message}");

        let message = state.read_run("backout").err().unwrap().to_string();
        assert!(
            message.contains(&other),
            "a part of an id finds it: {message}"
        );
        assert!(!message.contains(&id), "{message}");

        for escape in ["..", "../runs", "/etc"] {
            assert!(state.read_run(escape).is_err());
        }
        assert!(Path::new(&state.runs_dir()).join(&id).is_dir());
    }
}
