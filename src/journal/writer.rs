//! Appending to a run's journal: one line per record, on disk before `append` returns.

use super::fserror::fs_failure;
use super::{GENESIS, JOURNAL_FILE, Record, RunStart, encode_line, sha256_hex};
use crate::timefmt::now_rfc3339;
use anyhow::{Result, anyhow, bail};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The open journal of the run being made. It keeps a handle on the state directory's lock, so
/// the lock lasts as long as anything can still be written to the run.
pub struct Journal {
    file: File,
    path: PathBuf,
    dir: PathBuf,
    run_id: String,
    next_seq: u64,
    /// sha256 of the last line written: the next record's `prev`.
    prev: String,
    /// Bytes written and synced: where a failed write is cut back to.
    len: u64,
    /// Intents written, and whether each has its outcome yet.
    intents: BTreeMap<u64, bool>,
    ended: bool,
    /// Why the journal stopped accepting records, after a write failed.
    broken: Option<String>,
    _lock: File,
}

impl Journal {
    /// Creates `<dir>/journal.jsonl` (it must not exist), exactly `mode` whatever the umask, and
    /// writes `start` as its first record.
    pub(super) fn create(
        dir: &Path,
        run_id: &str,
        lock: File,
        start: RunStart,
        mode: u32,
    ) -> io::Result<Journal> {
        let path = dir.join(JOURNAL_FILE);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(mode)
            .open(&path)?;
        if file.metadata()?.permissions().mode() & 0o777 != mode {
            file.set_permissions(Permissions::from_mode(mode))?;
        }
        let mut journal = Journal {
            file,
            path,
            dir: dir.to_path_buf(),
            run_id: run_id.to_string(),
            next_seq: 0,
            prev: GENESIS.to_string(),
            len: 0,
            intents: BTreeMap::new(),
            ended: false,
            broken: None,
            _lock: lock,
        };
        journal.write(&Record::RunStart(start))?;
        Ok(journal)
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one record, fsynced before returning; returns its seq.
    ///
    /// When this fails, the record is not in the log and nothing more will be: the run must
    /// stop before the change it would have announced, because a change that is not logged
    /// first cannot be backed out.
    pub fn append(&mut self, record: Record) -> Result<u64> {
        if let Some(reason) = &self.broken {
            bail!(
                "the change log {} could not be written earlier in this run ({reason}); \
                 nothing more is recorded in it",
                self.path.display()
            );
        }
        match &record {
            Record::RunStart(_) => {
                bail!("a run has one run-start record, written when the run is created")
            }
            _ if self.ended => bail!(
                "run {} has already ended: nothing can be recorded after its run-end",
                self.run_id
            ),
            Record::Outcome(outcome) => match self.intents.get(&outcome.intent) {
                None => bail!(
                    "an outcome must follow its intent, but record {} of run {} is not an intent",
                    outcome.intent,
                    self.run_id
                ),
                Some(true) => bail!(
                    "record {} of run {} already has its outcome",
                    outcome.intent,
                    self.run_id
                ),
                Some(false) => {}
            },
            _ => {}
        }
        self.write(&record).map_err(|e| {
            let root = self
                .dir
                .parent()
                .and_then(Path::parent)
                .unwrap_or(&self.dir);
            let failure = fs_failure("cannot append to the change log", &self.path, &e, root);
            self.broken = Some(e.to_string());
            anyhow!(
                "{failure}. The {} record was not logged, so this run stops before anything \
                 else changes; `azbook log {}` shows what the log holds",
                record.kind(),
                self.run_id
            )
        })
    }

    /// One `write_all` of the line and its newline, then fdatasync. A crash can leave only a
    /// prefix of this line, which readers skip as torn.
    fn write(&mut self, record: &Record) -> io::Result<u64> {
        let seq = self.next_seq;
        let line =
            encode_line(seq, &now_rfc3339(), &self.prev, record).map_err(io::Error::other)?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        if let Err(e) = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
        {
            // Best effort: cut off whatever part of the line reached the file, so that the log
            // still ends with a whole record. Readers cope either way.
            if self.file.set_len(self.len).is_ok() {
                let _ = self.file.sync_data();
            }
            self.broken = Some(e.to_string());
            return Err(e);
        }
        self.len += bytes.len() as u64;
        self.prev = sha256_hex(line.as_bytes());
        self.next_seq += 1;
        match record {
            Record::Intent(_) => {
                self.intents.insert(seq, false);
            }
            Record::Outcome(outcome) => {
                self.intents.insert(outcome.intent, true);
            }
            Record::RunEnd(_) => self.ended = true,
            _ => {}
        }
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{RunKind, RunLog, StateDir};
    use super::*;

    fn new_journal(state: &StateDir) -> Journal {
        state
            .lock()
            .unwrap()
            .create_run(start_of(RunKind::Apply, None), &sources())
            .unwrap()
    }

    #[test]
    fn each_append_is_on_disk_and_chained_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let mut journal = new_journal(&state);
        let path = journal.dir().join(JOURNAL_FILE);
        for expected_seq in 1..=4u64 {
            let seq = journal
                .append(note(&format!("note {expected_seq}")))
                .unwrap();
            assert_eq!(seq, expected_seq);
            // Read through another handle while the journal is still open.
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.lines().count() as u64, expected_seq + 1);
            assert!(text.ends_with('\n'));
            let log = RunLog::read(journal.dir(), journal.run_id()).unwrap();
            assert_eq!(log.entries.len() as u64, expected_seq + 1);
            assert!(log.tampered.is_none() && log.warnings.is_empty());
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.windows(2) {
            let next: serde_json::Value = serde_json::from_str(pair[1]).unwrap();
            assert_eq!(next["prev"], sha256_hex(pair[0].as_bytes()));
        }
    }

    /// The workload `every_write_is_fdatasynced_before_the_next` traces.
    #[test]
    #[ignore = "run under strace by every_write_is_fdatasynced_before_the_next"]
    fn traced_run() {
        let dir = std::env::var_os("AZBOOK_TRACED_STATE").expect("set by the tracing test");
        let state = StateDir::new(dir);
        let mut journal = new_journal(&state);
        for n in 0..3 {
            journal.append(note(&format!("note {n}"))).unwrap();
        }
    }

    /// What `append` promises, seen from the kernel: each journal write is followed by an
    /// fdatasync of the journal before anything else is written to it, and the directories
    /// that hold the new run are fsynced. Needs strace (and ptrace); says so when it skips.
    #[test]
    fn every_write_is_fdatasynced_before_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace");
        let state_dir = dir.path().join("state");
        let status = std::process::Command::new("strace")
            .args(["-f", "-qq", "-y", "-e", "trace=write,fdatasync,fsync", "-o"])
            .arg(&trace)
            .arg(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "journal::writer::tests::traced_run",
                "--test-threads=1",
            ])
            .env("AZBOOK_TRACED_STATE", &state_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let Ok(status) = status else {
            eprintln!("skipped: strace is not installed");
            return;
        };
        let Ok(trace) = std::fs::read_to_string(&trace) else {
            eprintln!("skipped: strace could not trace here ({status})");
            return;
        };
        assert!(status.success(), "the traced run failed:\n{trace}");
        let calls: Vec<&str> = trace
            .lines()
            .filter(|l| l.contains("journal.jsonl>"))
            .map(|l| {
                if l.contains(" write(") {
                    "write"
                } else if l.contains(" fdatasync(") {
                    "fdatasync"
                } else {
                    "other"
                }
            })
            .collect();
        assert_eq!(calls, ["write", "fdatasync"].repeat(4), "{trace}");
        let run_dir = std::fs::read_dir(state_dir.join("runs"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        for synced in [
            run_dir.clone(),
            run_dir.join("playbooks"),
            state_dir.join("runs"),
        ] {
            let fsynced = format!("<{}>)", synced.display());
            assert!(
                trace
                    .lines()
                    .any(|l| l.contains(" fsync(") && l.contains(&fsynced)),
                "no fsync of {} in\n{trace}",
                synced.display()
            );
        }
    }

    #[test]
    fn records_out_of_order_are_refused_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let mut journal = new_journal(&state);
        let refused = |journal: &mut Journal, record: Record, expected: &str| {
            let message = journal.append(record).unwrap_err().to_string();
            assert!(message.contains(expected), "{message}");
        };
        refused(
            &mut journal,
            sample_start(),
            "one run-start record, written when the run is created",
        );
        refused(
            &mut journal,
            Record::Outcome(outcome(0, StepStatus::Done)),
            "is not an intent",
        );
        let intent_seq = journal.append(Record::Intent(intent())).unwrap();
        assert_eq!(intent_seq, 1, "refusals wrote nothing");
        journal
            .append(Record::Outcome(outcome(intent_seq, StepStatus::Done)))
            .unwrap();
        refused(
            &mut journal,
            Record::Outcome(outcome(intent_seq, StepStatus::Failed)),
            "already has its outcome",
        );
        journal.append(run_end(1)).unwrap();
        refused(&mut journal, note("late"), "has already ended");
        let log = RunLog::read(journal.dir(), journal.run_id()).unwrap();
        assert_eq!(log.entries.len(), 4);
        assert_eq!(log.status(), RunStatus::Finished);
    }

    #[test]
    fn a_full_disk_fails_the_append_and_stops_the_journal() {
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("runs").join("20261129T080102Z-apply-3f2a");
        std::fs::create_dir_all(&run_dir).unwrap();
        let journal_path = run_dir.join(JOURNAL_FILE);
        std::os::unix::fs::symlink("/dev/full", &journal_path).unwrap();
        let file = OpenOptions::new().append(true).open(&journal_path).unwrap();
        let mut journal = Journal {
            file,
            path: journal_path.clone(),
            dir: run_dir,
            run_id: "20261129T080102Z-apply-3f2a".into(),
            next_seq: 1,
            prev: GENESIS.into(),
            len: 0,
            intents: BTreeMap::new(),
            ended: false,
            broken: None,
            _lock: File::open("/dev/null").unwrap(),
        };
        let message = journal
            .append(Record::Intent(intent()))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(&journal_path.display().to_string()),
            "{message}"
        );
        assert!(message.contains("No space left on device"), "{message}");
        assert!(message.contains("is full: free space"), "{message}");
        assert!(
            message.contains("intent record was not logged"),
            "{message}"
        );
        let again = journal.append(note("after")).unwrap_err().to_string();
        assert!(again.contains("could not be written earlier"), "{again}");
    }
}
