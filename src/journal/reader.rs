//! Reading a run's journal back, checking the chain as it goes.
//!
//! Reading never fails on what a crash can do (a torn last line), and never hides what a crash
//! cannot do (an edited, removed or reordered line, a gap in `seq`, a record kind nobody
//! writes): those stop the reading and are reported in `tampered`, and the records before them
//! are still returned, so that callers decide (backout refuses unless forced).

use super::{
    Entry, GENESIS, Intent, JOURNAL_FILE, PLAYBOOKS_DIR, Record, RunEnd, RunEndStatus, RunStart,
    RunStatus, StepOutcome, is_safe_name, sha256_hex,
};
use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub struct RunLog {
    pub id: String,
    pub dir: PathBuf,
    /// The records the chain vouches for, in order; `entries[0]` is the run-start when the log
    /// is readable. A tampered log's stop before the break.
    pub entries: Vec<Entry>,
    /// Torn last line, outcomes without an intent, an empty log, and what was found after a
    /// break: the lines that could not be read there, and the records that could.
    pub warnings: Vec<String>,
    /// What broke the chain, where (line number); `entries` stop before it.
    pub tampered: Option<String>,
    /// The readable records after the break, when `tampered`: each a well-formed record of a
    /// known kind, its seq above every seq before it, none after a run-end, but vouched for by
    /// nothing, since the chain broke before them. They are never in `entries`, `changes` or
    /// `outcome_entries`: `azbook log` shows them apart, and only `into_changes` (what backout
    /// restores from, and backout refuses a tampered log without --force) takes them in.
    pub after_break: Vec<Entry>,
}

impl RunLog {
    /// Reads `<dir>/journal.jsonl`. Only a file that cannot be read at all is an error.
    pub(super) fn read(dir: &Path, id: &str) -> io::Result<RunLog> {
        let bytes = fs::read(dir.join(JOURNAL_FILE))?;
        Ok(RunLog::parse(id, dir, &bytes))
    }

    fn parse(id: &str, dir: &Path, bytes: &[u8]) -> RunLog {
        let mut log = RunLog {
            id: id.to_string(),
            dir: dir.to_path_buf(),
            entries: Vec::new(),
            warnings: Vec::new(),
            tampered: None,
            after_break: Vec::new(),
        };
        // The segment after the last newline is empty in a well-formed log.
        let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        let tail = lines.pop().unwrap_or_default();
        if !tail.is_empty() {
            lines.push(tail);
        }
        if lines.is_empty() {
            log.warnings.push(
                "the change log is empty: the run stopped while it was being created, before \
                 it could change anything"
                    .to_string(),
            );
            return log;
        }
        let torn_tail = !tail.is_empty();

        let mut prev = GENESIS.to_string();
        let mut broke_at = None;
        for (index, line) in lines.iter().enumerate() {
            let number = index + 1;
            let last = number == lines.len();
            if last && torn_tail {
                log.warnings.push(torn(number, "ends without a newline"));
                break;
            }
            let map = match serde_json::from_slice::<Map<String, Value>>(line) {
                Ok(map) => map,
                Err(_) if last => {
                    log.warnings
                        .push(torn(number, "is not a complete JSON record"));
                    break;
                }
                Err(e) => {
                    log.tampered = Some(format!("line {number} is not a JSON record ({e})"));
                    broke_at = Some(index);
                    break;
                }
            };
            match log.accept(number, map, &prev) {
                Ok(()) => prev = sha256_hex(line),
                Err(problem) => {
                    log.tampered = Some(problem);
                    broke_at = Some(index);
                    break;
                }
            }
        }
        if let Some(index) = broke_at {
            log.read_after_break(&lines, index, torn_tail);
        }
        log.warn_about_orphan_outcomes();
        log
    }

    /// Reads on from the line that broke the chain (`lines[from]`) to the end, keeping in
    /// `after_break` every line that is a readable record in its place, and warning, with its
    /// line number, of every other. The breaking line itself is kept when only its place was
    /// wrong (its `prev` or its seq), not when its content was.
    fn read_after_break(&mut self, lines: &[&[u8]], from: usize, torn_tail: bool) {
        let mut last_seq = self.entries.last().map(|e| e.seq);
        let mut ended = self.end().is_some();
        // The line before, when it was kept: what the next `prev` should hash.
        let mut kept_before: Option<&[u8]> = None;
        let mut kept_lines = Vec::new();
        for (index, line) in lines.iter().enumerate().skip(from) {
            let number = index + 1;
            let last = number == lines.len();
            if last && torn_tail {
                self.warnings.push(torn(number, "ends without a newline"));
                break;
            }
            let read = serde_json::from_slice::<Map<String, Value>>(line)
                .map_err(|e| (true, format!("line {number} is not a JSON record ({e})")))
                .and_then(|map| {
                    unvouched_record(number, map, last_seq, ended).map_err(|p| (false, p))
                });
            match read {
                Ok((entry, prev)) => {
                    if let Some(before) = kept_before
                        && prev.as_deref() != Some(sha256_hex(before).as_str())
                    {
                        self.warnings.push(format!(
                            "line {number} does not follow line {} either: the chain breaks \
                             again there",
                            number - 1
                        ));
                    }
                    last_seq = Some(entry.seq);
                    ended |= matches!(entry.record, Record::RunEnd(_));
                    kept_before = Some(line);
                    kept_lines.push(number);
                    self.after_break.push(entry);
                }
                Err((_, _)) if index == from => kept_before = None,
                Err((true, _)) if last => {
                    self.warnings
                        .push(torn(number, "is not a complete JSON record"));
                }
                Err((_, problem)) => {
                    kept_before = None;
                    self.warnings
                        .push(format!("{problem}, after the break: it is not read"));
                }
            }
        }
        let (Some(first), Some(last)) = (kept_lines.first(), kept_lines.last()) else {
            return;
        };
        let changes = self
            .after_break
            .iter()
            .filter(|e| matches!(e.record, Record::Intent(_)))
            .count();
        let lines = if first == last {
            format!("line {first}")
        } else {
            format!("lines {first} to {last}")
        };
        self.warnings.push(format!(
            "{lines}, after the break, hold {} readable record(s), {changes} of them change(s), \
             that the chain does not vouch for: they may have been edited, and records may be \
             missing among them. `azbook log` shows them apart; `azbook backout --force` \
             restores from them too, unverified",
            kept_lines.len()
        ));
    }

    /// Checks line `number` against the chain and the run's structure, and keeps its record.
    fn accept(
        &mut self,
        number: usize,
        mut map: Map<String, Value>,
        expected_prev: &str,
    ) -> Result<(), String> {
        let prev = take_string(&mut map, "prev")
            .ok_or_else(|| format!("line {number} has no `prev` hash"))?;
        if prev != expected_prev {
            return Err(if number == 1 {
                "line 1's `prev` is not the 64 zeros that begin a log: lines were removed from \
                 its start; no line is vouched for"
                    .to_string()
            } else {
                // The line before cannot be trusted either: it may be the edited one.
                self.entries.pop();
                let previous = number - 1;
                let kept = match previous - 1 {
                    0 => "no line is vouched for".to_string(),
                    1 => "only line 1 is vouched for".to_string(),
                    n => format!("only lines 1 to {n} are vouched for"),
                };
                format!(
                    "line {number} does not follow line {previous}: its `prev` is not the sha256 \
                     of line {previous}, so that line was edited, or lines were removed or \
                     reordered here; {kept}, and line {previous} is not read"
                )
            });
        }
        let expected_seq = self.entries.last().map_or(0, |e| e.seq + 1);
        let seq = map.remove("seq").and_then(|v| v.as_u64());
        if seq != Some(expected_seq) {
            return Err(format!(
                "line {number} has seq {} where {expected_seq} was expected: records are missing \
                 or out of order",
                seq.map_or("(none)".to_string(), |s| s.to_string())
            ));
        }
        let (time, record) = record_of(number, map)?;
        let is_start = matches!(record, Record::RunStart(_));
        if is_start != (number == 1) {
            return Err(if is_start {
                format!("line {number} is a second run-start record")
            } else {
                format!(
                    "line 1 is not the run-start record (it is `{}`)",
                    record.kind()
                )
            });
        }
        if self.end().is_some() {
            return Err(format!(
                "line {number} (`{}`) comes after the run-end record",
                record.kind()
            ));
        }
        self.entries.push(Entry {
            seq: expected_seq,
            time,
            record,
        });
        Ok(())
    }

    /// Outcomes that `changes` cannot pair: for no intent, or a second one for an intent.
    fn warn_about_orphan_outcomes(&mut self) {
        let mut answered: BTreeMap<u64, bool> = BTreeMap::new();
        for entry in self.entries.iter().chain(&self.after_break) {
            match &entry.record {
                Record::Intent(_) => {
                    answered.insert(entry.seq, false);
                }
                Record::Outcome(outcome) => match answered.get_mut(&outcome.intent) {
                    Some(answer) if !*answer => *answer = true,
                    Some(_) => self.warnings.push(format!(
                        "record {} is a second outcome for record {}; the first is used",
                        entry.seq, outcome.intent
                    )),
                    None => self.warnings.push(format!(
                        "record {} is an outcome for record {}, which is not an earlier intent{}",
                        entry.seq,
                        outcome.intent,
                        if self.tampered.is_some() {
                            ": if that intent was lost at the break, backout cannot restore \
                             what its change did"
                        } else {
                            ""
                        }
                    )),
                },
                _ => {}
            }
        }
    }

    pub fn start(&self) -> Option<&RunStart> {
        match self.entries.first().map(|e| &e.record) {
            Some(Record::RunStart(start)) => Some(start),
            _ => None,
        }
    }

    pub fn end(&self) -> Option<&RunEnd> {
        match self.entries.last().map(|e| &e.record) {
            Some(Record::RunEnd(end)) => Some(end),
            _ => None,
        }
    }

    /// How the run ended, as its log tells it. A log without a run-end reads as `Crashed`; only
    /// the state directory can tell that its run is still going (`StateDir::runs`).
    pub fn status(&self) -> RunStatus {
        if self.tampered.is_some() {
            return RunStatus::Tampered;
        }
        match self.end().map(|end| end.status) {
            Some(RunEndStatus::Finished) => RunStatus::Finished,
            Some(RunEndStatus::Incomplete) => RunStatus::Incomplete,
            Some(RunEndStatus::Stopped) => RunStatus::Stopped,
            Some(RunEndStatus::Interrupted) => RunStatus::Interrupted,
            None => RunStatus::Crashed,
        }
    }

    /// Each intent with its outcome (None: the run stopped between them), in journal order.
    pub fn changes(&self) -> Vec<(u64, &Intent, Option<&StepOutcome>)> {
        let outcomes = self.outcome_entries();
        self.entries
            .iter()
            .filter_map(|entry| match &entry.record {
                Record::Intent(intent) => {
                    let outcome = outcomes.get(&entry.seq).and_then(|e| match &e.record {
                        Record::Outcome(outcome) => Some(outcome),
                        _ => None,
                    });
                    Some((entry.seq, intent, outcome))
                }
                _ => None,
            })
            .collect()
    }

    /// The intents, in order, each with whether an outcome names it: the log consumed, so that
    /// a backout of thousands of changes does not hold every record twice. The intents after a
    /// break (`after_break`) are taken too: this is what `backout --force` restores from, and
    /// the warning about them says so (backout without --force refuses a tampered log first).
    pub fn into_changes(self) -> Vec<(u64, Intent, bool)> {
        let answered: BTreeSet<u64> = pair_outcomes(self.entries.iter().chain(&self.after_break))
            .into_keys()
            .collect();
        self.entries
            .into_iter()
            .chain(self.after_break)
            .filter_map(|entry| match entry.record {
                Record::Intent(intent) => Some((entry.seq, intent, answered.contains(&entry.seq))),
                _ => None,
            })
            .collect()
    }

    /// The outcome entry (with the time it was written) of each intent that has one, by the
    /// intent's seq: the first outcome after the intent that names it.
    pub fn outcome_entries(&self) -> BTreeMap<u64, &Entry> {
        pair_outcomes(self.entries.iter())
    }

    /// `outcome_entries` of the records before and after the break together: how `azbook log`
    /// pairs what it shows after a break.
    pub fn outcome_entries_across_the_break(&self) -> BTreeMap<u64, &Entry> {
        pair_outcomes(self.entries.iter().chain(&self.after_break))
    }

    /// The source of a playbook stored with the run, after checking it against the sha256 in run-start.
    pub fn playbook_source(&self, id: &str) -> Result<String> {
        let start = self.start().ok_or_else(|| {
            anyhow!(
                "run {} has no readable run-start record, so the playbooks it used are unknown",
                self.id
            )
        })?;
        let Some(playbook) = start.playbooks.iter().find(|p| p.id == id) else {
            let used: Vec<&str> = start.playbooks.iter().map(|p| p.id.as_str()).collect();
            bail!(
                "run {} did not use playbook `{id}` (it used: {})",
                self.id,
                if used.is_empty() {
                    "none".to_string()
                } else {
                    used.join(", ")
                }
            );
        };
        if !is_safe_name(id) {
            bail!(
                "run {} names a playbook `{id}` that cannot be a file name",
                self.id
            );
        }
        let path = self.dir.join(PLAYBOOKS_DIR).join(format!("{id}.toml"));
        let bytes = fs::read(&path).map_err(|e| {
            anyhow!(
                "cannot read the copy of playbook `{id}` kept with run {} ({}): {e}; the run \
                 directory is incomplete: restore it from a backup",
                self.id,
                path.display()
            )
        })?;
        let actual = sha256_hex(&bytes);
        if actual != playbook.sha256 {
            bail!(
                "the copy of playbook `{id}` kept with run {} ({}) has sha256 {actual}, but the \
                 run started with sha256 {}: the copy was changed after the run, so it cannot be \
                 trusted to undo the run's changes; restore it from a backup",
                self.id,
                path.display(),
                playbook.sha256
            );
        }
        String::from_utf8(bytes).map_err(|_| {
            anyhow!(
                "the copy of playbook `{id}` kept with run {} ({}) is not UTF-8 text",
                self.id,
                path.display()
            )
        })
    }

    /// `azbook log --output json`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "dir": self.dir.display().to_string(),
            "status": self.status(),
            "entries": self.entries,
            "warnings": self.warnings,
            "tampered": self.tampered,
            "afterBreak": self.after_break,
        })
    }
}

/// Each intent's first outcome after it, by the intent's seq.
fn pair_outcomes<'e>(entries: impl Iterator<Item = &'e Entry>) -> BTreeMap<u64, &'e Entry> {
    let mut intents = BTreeSet::new();
    let mut outcomes = BTreeMap::new();
    for entry in entries {
        match &entry.record {
            Record::Intent(_) => {
                intents.insert(entry.seq);
            }
            Record::Outcome(outcome) if intents.contains(&outcome.intent) => {
                outcomes.entry(outcome.intent).or_insert(entry);
            }
            _ => {}
        }
    }
    outcomes
}

/// The time and record of line `number`, once its envelope's `prev` and `seq` are taken.
fn record_of(number: usize, mut map: Map<String, Value>) -> Result<(String, Record), String> {
    let kind = take_string(&mut map, "kind")
        .ok_or_else(|| format!("line {number} has no record `kind`"))?;
    let time =
        take_string(&mut map, "time").ok_or_else(|| format!("line {number} has no `time`"))?;
    match Record::from_payload(&kind, Value::Object(map)) {
        Ok(Some(record)) => Ok((time, record)),
        Ok(None) => Err(format!("line {number} has an unknown record kind `{kind}`")),
        Err(e) => Err(format!("line {number} is not a valid {kind} record ({e})")),
    }
}

/// Line `number` after a break, as a record in its place (with its `prev`, for the chain
/// between the lines read there): its seq above `last_seq`, no run-start, nothing after a
/// run-end.
fn unvouched_record(
    number: usize,
    mut map: Map<String, Value>,
    last_seq: Option<u64>,
    ended: bool,
) -> Result<(Entry, Option<String>), String> {
    let prev = take_string(&mut map, "prev");
    let seq = map
        .remove("seq")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| format!("line {number} has no seq"))?;
    if last_seq.is_some_and(|last| seq <= last) {
        return Err(format!(
            "line {number} has seq {seq}, not after seq {}: it is out of order",
            last_seq.unwrap_or_default()
        ));
    }
    let (time, record) = record_of(number, map)?;
    if matches!(record, Record::RunStart(_)) {
        return Err(format!("line {number} is a second run-start record"));
    }
    if ended {
        return Err(format!(
            "line {number} (`{}`) comes after the run-end record",
            record.kind()
        ));
    }
    Ok((Entry { seq, time, record }, prev))
}

fn torn(number: usize, what: &str) -> String {
    format!(
        "line {number}, the last, {what}: a write interrupted by a crash; ignored (its record \
         was never acknowledged, so the change it would announce was not started)"
    )
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match map.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Journal, RunKind, StateDir};
    use super::*;

    /// A finished apply run (start, intent, outcome, intent, outcome, end) and its lines.
    fn finished() -> (tempfile::TempDir, StateDir, String, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let id = finished_apply(&state);
        let text = fs::read_to_string(journal_path(&state, &id)).unwrap();
        let lines = text.lines().map(str::to_string).collect();
        (dir, state, id, lines)
    }

    fn journal_path(state: &StateDir, id: &str) -> PathBuf {
        state.root().join("runs").join(id).join(JOURNAL_FILE)
    }

    fn rewrite(state: &StateDir, id: &str, lines: &[String]) -> RunLog {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        fs::write(journal_path(state, id), text).unwrap();
        state.read_run(id).unwrap()
    }

    /// Recomputes every `prev`, as a forger or a buggy writer would, after an edit.
    fn rechain(lines: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for line in lines {
            let mut map: Map<String, Value> = serde_json::from_str(line).unwrap();
            let prev = out
                .last()
                .map_or(GENESIS.to_string(), |l| sha256_hex(l.as_bytes()));
            map.insert("prev".into(), json!(prev));
            out.push(serde_json::to_string(&map).unwrap());
        }
        out
    }

    fn edit(line: &str, key: &str, value: Value) -> String {
        let mut map: Map<String, Value> = serde_json::from_str(line).unwrap();
        map.insert(key.into(), value);
        serde_json::to_string(&map).unwrap()
    }

    #[test]
    fn an_intact_log_reads_completely() {
        let (_dir, state, id, lines) = finished();
        assert_eq!(lines.len(), 6);
        let log = state.read_run(&id).unwrap();
        assert_eq!(log.entries.len(), 6);
        assert_eq!(
            log.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (0..6).collect::<Vec<_>>()
        );
        assert!(log.warnings.is_empty(), "{:?}", log.warnings);
        assert_eq!(log.tampered, None);
        assert_eq!(log.status(), RunStatus::Finished);
        assert_eq!(log.start().unwrap().run_id, id);
        assert_eq!(log.end().unwrap().status, RunEndStatus::Finished);
        let reread: Vec<Record> = log.entries.iter().map(|e| e.record.clone()).collect();
        assert_eq!(reread[1], Record::Intent(intent()));
        assert_eq!(reread[2], Record::Outcome(outcome(1, StepStatus::Done)));
        assert_eq!(reread[4], Record::Outcome(outcome(3, StepStatus::Failed)));
    }

    #[test]
    fn an_edited_field_breaks_the_chain_at_the_next_line() {
        let (_dir, state, id, mut lines) = finished();
        lines[2] = lines[2].replace("\"status\":\"done\"", "\"status\":\"failed\"");
        let log = rewrite(&state, &id, &lines);
        let tampered = log.tampered.clone().unwrap();
        assert!(
            tampered.starts_with("line 4 does not follow line 3"),
            "{tampered}"
        );
        assert_eq!(log.entries.len(), 2, "the edited line 3 is not trusted");
        assert_eq!(log.status(), RunStatus::Tampered);
    }

    #[test]
    fn a_removed_middle_line_is_detected() {
        let (_dir, state, id, mut lines) = finished();
        lines.remove(2);
        let log = rewrite(&state, &id, &lines);
        assert!(
            log.tampered
                .unwrap()
                .starts_with("line 3 does not follow line 2")
        );
        assert_eq!(log.entries.len(), 1);
    }

    #[test]
    fn a_reordered_line_is_detected() {
        let (_dir, state, id, mut lines) = finished();
        lines.swap(3, 4);
        let log = rewrite(&state, &id, &lines);
        assert!(
            log.tampered
                .unwrap()
                .starts_with("line 4 does not follow line 3")
        );
        assert_eq!(log.entries.len(), 2);
    }

    #[test]
    fn a_changed_prev_is_detected() {
        let (_dir, state, id, mut lines) = finished();
        let map: Map<String, Value> = serde_json::from_str(&lines[3]).unwrap();
        let prev = map["prev"].as_str().unwrap();
        let flipped = format!(
            "{}{}",
            if prev.starts_with('0') { '1' } else { '0' },
            &prev[1..]
        );
        lines[3] = lines[3].replace(prev, &flipped);
        let log = rewrite(&state, &id, &lines);
        assert!(
            log.tampered
                .unwrap()
                .starts_with("line 4 does not follow line 3")
        );

        let (_dir, state, id, mut lines) = finished();
        lines[0] = edit(&lines[0], "prev", json!(sha256_hex(b"an earlier line")));
        let log = rewrite(&state, &id, &lines);
        assert!(log.tampered.unwrap().starts_with("line 1's `prev`"));
        assert!(log.entries.is_empty());
    }

    #[test]
    fn a_rechained_log_still_fails_on_seq_kind_and_structure() {
        let (_dir, state, id, lines) = finished();
        let cases: Vec<(Vec<String>, &str, usize)> = vec![
            (
                {
                    let mut l = lines.clone();
                    l.remove(2);
                    l
                },
                "line 3 has seq 3 where 2 was expected",
                2,
            ),
            (
                {
                    let mut l = lines.clone();
                    l[3] = edit(&l[3], "kind", json!("rollback"));
                    l
                },
                "line 4 has an unknown record kind `rollback`",
                3,
            ),
            (
                {
                    let mut l = lines.clone();
                    l[3] = edit(&l[3], "argv", json!("az storage account update"));
                    l
                },
                "line 4 is not a valid intent record",
                3,
            ),
            (
                {
                    let mut l = lines.clone();
                    l[1] = edit(&l[0], "seq", json!(1));
                    l
                },
                "line 2 is a second run-start record",
                1,
            ),
            (
                {
                    let mut l = lines.clone();
                    l.push(edit(&l[1], "seq", json!(6)));
                    l
                },
                "line 7 (`intent`) comes after the run-end record",
                6,
            ),
        ];
        for (edited, expected, kept) in cases {
            let log = rewrite(&state, &id, &rechain(&edited));
            let tampered = log.tampered.clone().unwrap_or_default();
            assert!(tampered.starts_with(expected), "{tampered}");
            assert_eq!(log.entries.len(), kept, "{expected}");
        }
    }

    /// A finished run with two changes (six lines) whose first intent, line 2, has one byte
    /// changed in a way that keeps it JSON, as a flipped bit inside a string would.
    fn first_intent_corrupted() -> (tempfile::TempDir, StateDir, String, RunLog) {
        let (dir, state, id, mut lines) = finished();
        assert!(lines[1].contains("\"stepName\":\"switch"));
        lines[1] = lines[1].replacen("\"stepName\":\"switch", "\"stepName\":\"swatch", 1);
        let log = rewrite(&state, &id, &lines);
        (dir, state, id, log)
    }

    #[test]
    fn the_readable_records_after_a_break_are_kept_apart() {
        let (_dir, _state, _id, log) = first_intent_corrupted();
        let tampered = log.tampered.clone().unwrap();
        assert!(
            tampered.starts_with("line 3 does not follow line 2"),
            "{tampered}"
        );
        assert!(
            tampered.contains("only line 1 is vouched for"),
            "{tampered}"
        );
        // What backout without --force sees is what it always saw: the records before.
        assert_eq!(log.entries.len(), 1);
        assert!(log.changes().is_empty());
        assert_eq!(log.status(), RunStatus::Tampered);
        assert_eq!(log.end(), None);
        // Lines 3 to 6 (seq 2 to 5) are read, apart.
        assert_eq!(
            log.after_break.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
        assert!(matches!(log.after_break[1].record, Record::Intent(_)));
        assert!(matches!(log.after_break[3].record, Record::RunEnd(_)));
        assert_eq!(
            log.warnings,
            [
                "lines 3 to 6, after the break, hold 4 readable record(s), 1 of them change(s), \
                 that the chain does not vouch for: they may have been edited, and records may be \
                 missing among them. `azbook log` shows them apart; `azbook backout --force` \
                 restores from them too, unverified",
                "record 2 is an outcome for record 1, which is not an earlier intent: if that \
                 intent was lost at the break, backout cannot restore what its change did",
            ]
        );
        let value = log.to_json();
        assert_eq!(value["afterBreak"].as_array().unwrap().len(), 4);
        assert_eq!(value["afterBreak"][1]["kind"], "intent");
        assert_eq!(value["entries"].as_array().unwrap().len(), 1);
        // What backout --force restores from: the intent after the break, with its outcome.
        let changes = log.into_changes();
        assert_eq!(
            changes
                .iter()
                .map(|(seq, _, answered)| (*seq, *answered))
                .collect::<Vec<_>>(),
            [(3, true)]
        );
    }

    #[test]
    fn a_first_intent_that_is_no_longer_json_leaves_the_rest_readable() {
        let (_dir, state, id, mut lines) = finished();
        lines[1].replace_range(0..1, "x");
        let log = rewrite(&state, &id, &lines);
        let tampered = log.tampered.clone().unwrap();
        assert!(
            tampered.starts_with("line 2 is not a JSON record"),
            "{tampered}"
        );
        assert_eq!(log.entries.len(), 1);
        assert_eq!(
            log.after_break.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
        assert!(
            log.warnings[0].starts_with("lines 3 to 6, after the break"),
            "{:?}",
            log.warnings
        );
    }

    #[test]
    fn after_a_break_each_unreadable_line_is_named_and_passed_over() {
        let (_dir, state, id, lines) = finished();
        let mut edited = lines.clone();
        // Line 2 edited (the chain breaks at line 3), line 4 garbage, line 5 a second
        // run-start, and a line 6 that comes before line 3 in seq.
        edited[1] = edited[1].replacen("switch", "swatch", 1);
        edited[3] = "\0\0\0".into();
        edited[4] = edit(&lines[0], "seq", json!(9));
        edited[5] = edit(&lines[5], "seq", json!(1));
        edited.push(lines[5].clone());
        let log = rewrite(&state, &id, &edited);
        assert!(
            log.tampered
                .unwrap()
                .starts_with("line 3 does not follow line 2")
        );
        assert_eq!(
            log.after_break.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 5],
            "line 3, and line 7 (seq 5 is after seq 2)"
        );
        let warnings = log.warnings.join("\n");
        for expected in [
            "line 4 is not a JSON record",
            "line 5 is a second run-start record, after the break: it is not read",
            "line 6 has seq 1, not after seq 2: it is out of order, after the break",
            "lines 3 to 7, after the break, hold 2 readable record(s)",
        ] {
            assert!(warnings.contains(expected), "{expected}: {warnings}");
        }
    }

    #[test]
    fn a_second_break_after_the_first_is_named_too() {
        let (_dir, state, id, mut lines) = finished();
        lines[1] = lines[1].replacen("switch", "swatch", 1);
        lines[3] = lines[3].replacen("switch", "swatch", 1);
        let log = rewrite(&state, &id, &lines);
        assert!(
            log.tampered
                .unwrap()
                .starts_with("line 3 does not follow line 2")
        );
        assert_eq!(log.after_break.len(), 4, "every readable record is kept");
        assert!(
            log.warnings
                .iter()
                .any(|w| w.starts_with("line 5 does not follow line 4 either")),
            "{:?}",
            log.warnings
        );
        // Nothing may follow a run-end, before or after a break.
        let (_dir, state, id, mut lines) = finished();
        lines[1] = lines[1].replacen("switch", "swatch", 1);
        lines.push(edit(&lines[4], "seq", json!(6)));
        let log = rewrite(&state, &id, &lines);
        assert_eq!(log.after_break.len(), 4);
        assert!(
            log.warnings
                .iter()
                .any(|w| w.starts_with("line 7 (`outcome`) comes after the run-end record")),
            "{:?}",
            log.warnings
        );
    }

    #[test]
    fn an_outcome_after_the_break_answers_its_intent_before_it() {
        let (_dir, state, id, mut lines) = finished();
        // Line 4 (the second intent) edited: the chain breaks at line 5 and line 4 is dropped.
        lines[3] = lines[3].replacen("switch", "swatch", 1);
        let log = rewrite(&state, &id, &lines);
        assert_eq!(log.entries.len(), 3);
        assert_eq!(
            log.after_break.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [4, 5]
        );
        assert_eq!(log.outcome_entries_across_the_break().len(), 1);
        let changes = log.into_changes();
        assert_eq!(
            changes
                .iter()
                .map(|(seq, _, answered)| (*seq, *answered))
                .collect::<Vec<_>>(),
            [(1, true)],
            "the second intent is lost, not guessed"
        );
    }

    #[test]
    fn fields_a_newer_azbook_adds_are_tolerated() {
        let (_dir, state, id, mut lines) = finished();
        lines[1] = edit(&lines[1], "futureField", json!({"x": 1}));
        let log = rewrite(&state, &id, &rechain(&lines));
        assert_eq!(log.tampered, None);
        assert_eq!(log.entries.len(), 6);
    }

    #[test]
    fn a_torn_last_line_is_ignored_with_a_warning() {
        let (_dir, state, id, lines) = finished();
        let path = journal_path(&state, &id);
        let whole: String = lines[..5].iter().map(|l| format!("{l}\n")).collect();
        // Every prefix of the last line, as a crash mid-write could leave it.
        for cut in [1, lines[5].len() / 2, lines[5].len()] {
            fs::write(&path, format!("{whole}{}", &lines[5][..cut])).unwrap();
            let log = state.read_run(&id).unwrap();
            assert_eq!(log.tampered, None);
            assert_eq!(log.entries.len(), 5);
            assert_eq!(log.warnings.len(), 1);
            assert!(log.warnings[0].starts_with("line 6, the last, ends without a newline"));
            assert_eq!(log.status(), RunStatus::Crashed);
        }
        // A last line that a crash left as garbage (zeros) with a newline.
        fs::write(&path, format!("{whole}\0\0\0\0\n")).unwrap();
        let log = state.read_run(&id).unwrap();
        assert_eq!(log.tampered, None);
        assert_eq!(log.entries.len(), 5);
        assert!(log.warnings[0].contains("is not a complete JSON record"));
        // The same garbage in the middle is not a crash.
        let mut middle = lines.clone();
        middle.insert(3, "\0\0\0\0".into());
        let log = rewrite(&state, &id, &middle);
        assert!(
            log.tampered
                .unwrap()
                .starts_with("line 4 is not a JSON record")
        );
        assert_eq!(log.entries.len(), 3);
    }

    #[test]
    fn an_empty_or_unended_log_is_incomplete() {
        let (_dir, state, id, lines) = finished();
        let log = rewrite(&state, &id, &lines[..5]);
        assert_eq!(log.status(), RunStatus::Crashed);
        assert!(log.warnings.is_empty());
        let log = rewrite(&state, &id, &[]);
        assert_eq!(log.status(), RunStatus::Crashed);
        assert!(log.entries.is_empty() && log.start().is_none());
        assert!(log.warnings[0].contains("empty"));
    }

    #[test]
    fn changes_pair_intents_with_outcomes_and_show_the_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let lock = state.lock().unwrap();
        let mut journal: Journal = lock
            .create_run(start_of(RunKind::Apply, None), &sources())
            .unwrap();
        let first = journal.append(Record::Intent(intent())).unwrap();
        journal.append(note("between")).unwrap();
        let second = journal.append(Record::Intent(intent())).unwrap();
        journal
            .append(Record::Outcome(outcome(first, StepStatus::Done)))
            .unwrap();
        let third = journal.append(Record::Intent(intent())).unwrap();
        // The process dies here: the third intent has no outcome, nor has the second.
        let log = state.read_run(journal.run_id()).unwrap();
        let changes = log.changes();
        assert_eq!(
            changes
                .iter()
                .map(|(seq, _, o)| (*seq, o.map(|o| o.status.as_str())))
                .collect::<Vec<_>>(),
            vec![(first, Some("done")), (second, None), (third, None)]
        );
        assert_eq!(log.status(), RunStatus::Crashed);
    }

    #[test]
    fn an_outcome_for_no_intent_or_a_second_one_is_a_warning() {
        let (_dir, state, id, mut lines) = finished();
        lines[2] = edit(&lines[2], "intent", json!(0));
        let log = rewrite(&state, &id, &rechain(&lines));
        assert_eq!(log.tampered, None);
        assert_eq!(
            log.warnings,
            vec!["record 2 is an outcome for record 0, which is not an earlier intent"]
        );
        assert!(log.changes()[0].2.is_none());

        // A second outcome for intent 1, written after the first: the first one counts.
        let (_dir, state, id, mut lines) = finished();
        lines.insert(3, edit(&lines[2], "status", json!("failed")));
        let mut renumbered: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(seq, line)| edit(line, "seq", json!(seq)))
            .collect();
        // The second intent moved from seq 3 to 4: its outcome follows it.
        renumbered[5] = edit(&renumbered[5], "intent", json!(4));
        let log = rewrite(&state, &id, &rechain(&renumbered));
        assert_eq!(log.tampered, None);
        assert_eq!(
            log.warnings,
            vec!["record 3 is a second outcome for record 1; the first is used"]
        );
        assert_eq!(log.changes()[0].2.unwrap().status, StepStatus::Done);
        assert_eq!(log.outcome_entries()[&1].seq, 2);
    }

    #[test]
    fn playbook_copies_are_checked_against_run_start() {
        let (_dir, state, id, _) = finished();
        let log = state.read_run(&id).unwrap();
        assert_eq!(log.playbook_source(PLAYBOOK_ID).unwrap(), PLAYBOOK_SOURCE);

        let message = log.playbook_source("other").unwrap_err().to_string();
        assert!(
            message.contains("did not use playbook `other`"),
            "{message}"
        );
        assert!(message.contains(PLAYBOOK_ID), "{message}");

        let copy = log
            .dir
            .join("playbooks")
            .join(format!("{PLAYBOOK_ID}.toml"));
        fs::write(&copy, format!("{PLAYBOOK_SOURCE}# edited later\n")).unwrap();
        let message = log.playbook_source(PLAYBOOK_ID).unwrap_err().to_string();
        assert!(message.contains(&copy.display().to_string()), "{message}");
        assert!(message.contains("was changed after the run"), "{message}");
        assert!(
            message.contains(&sha256_hex(PLAYBOOK_SOURCE.as_bytes())),
            "{message}"
        );

        fs::remove_file(&copy).unwrap();
        let message = log.playbook_source(PLAYBOOK_ID).unwrap_err().to_string();
        assert!(message.contains("cannot read the copy"), "{message}");
    }

    #[test]
    fn json_carries_entries_warnings_and_tampering() {
        let (_dir, state, id, mut lines) = finished();
        lines[5].truncate(10);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        fs::write(journal_path(&state, &id), text.trim_end()).unwrap();
        let value = state.read_run(&id).unwrap().to_json();
        assert_eq!(value["id"], json!(id));
        assert_eq!(value["status"], json!("crashed"));
        assert_eq!(value["tampered"], Value::Null);
        assert_eq!(value["warnings"].as_array().unwrap().len(), 1);
        let entries = value["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[0]["kind"], "run-start");
        assert_eq!(entries[0]["runKind"], "apply");
        assert_eq!(entries[1]["kind"], "intent");
        assert_eq!(entries[1]["seq"], 1);
        assert_eq!(entries[1]["argv"][0], "az");
        assert!(entries[1].get("prev").is_none());
    }
}
