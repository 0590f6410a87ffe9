//! The change log (ARCHITECTURE.md, "The change log (journal) format"): a write-ahead journal per run, from which `backout`
//! restores the exact prior state.
//!
//! On disk, under the state directory:
//! ```text
//! <state>/lock                              flock(2)ed by the one apply/backout running; holds its pid and run id
//! <state>/runs/<run-id>/journal.jsonl       one JSON record per line, append-only
//! <state>/runs/<run-id>/playbooks/<id>.toml the playbooks as they were when the run started
//! ```
//! Run ids are `YYYYMMDDTHHMMSSZ-<kind>-<4 hex>`, so sorting them as text sorts runs by time.
//!
//! Why this shape:
//! - JSON Lines, one record per `write_all`, fdatasync before `append` returns: an `intent` is on
//!   disk before the `az` call it announces, so after a crash the log names every change that
//!   may have happened. A crash mid-write leaves at most a torn last line, and that record was
//!   never acknowledged, so the change it announced never started: reading skips it.
//! - Every line carries the sha256 of the line before it. An edited, removed or reordered line
//!   breaks the chain at the line after it. The chain is not a signature: whoever can write the
//!   file can recompute it. It catches hand edits, partial copies and file-system damage; it
//!   cannot vouch for the last line, which no later line hashes.
//! - The lock is an OS lock on an open file (`File::try_lock`, flock). The kernel drops it when
//!   the holding process ends however it ends, so there is never a stale lock to clean up.
//! - The playbooks are copied into the run, with their hashes in `run-start`: backout runs the
//!   playbook as it was when the change was made, not as it is today.

mod fserror;
mod history;
mod reader;
mod state;
mod writer;

pub use history::RunSummary;
pub use reader::RunLog;
pub use state::{LEGACY_STATE_DIR, StateDir, StateLocation, StateLock};
pub use writer::Journal;

use crate::model::ChangeSummary;
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

const RUNS_DIR: &str = "runs";
const JOURNAL_FILE: &str = "journal.jsonl";
const PLAYBOOKS_DIR: &str = "playbooks";
const LOCK_FILE: &str = "lock";
/// The `prev` of the first record: there is no line before it.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Apply,
    Backout,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Apply => "apply",
            RunKind::Backout => "backout",
        }
    }

    fn parse(s: &str) -> Option<RunKind> {
        match s {
            "apply" => Some(RunKind::Apply),
            "backout" => Some(RunKind::Backout),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaybookRef {
    pub id: String,
    pub origin: String,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStart {
    /// Filled in by `create_run` (callers pass "").
    pub run_id: String,
    /// Written as `runKind`: the envelope's `kind` is the record kind.
    #[serde(rename = "runKind")]
    pub kind: RunKind,
    pub azbook_version: String,
    pub az_version: Option<String>,
    pub tenant_id: String,
    pub user: String,
    pub subscriptions: Vec<String>,
    /// `sha256` filled in by `create_run` from the sources.
    pub playbooks: Vec<PlaybookRef>,
    pub command_line: Vec<String>,
    /// Free-form: filters, or the plan file applied.
    pub scope: Value,
    /// Backout: the run id it reverts.
    pub reverts: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// ARM id.
    pub resource: String,
    pub subscription: String,
    pub playbook: String,
    /// Index in the playbook's implement (apply) or backout (backout run) steps.
    pub step: usize,
    pub step_name: String,
    /// Exactly what runs.
    pub argv: Vec<String>,
    /// What templates need to re-derive the argv: `{"target": {...}, "server": {...}}`.
    pub context: Value,
    /// Recorded prior state (the playbook's `record` fields).
    pub before: Value,
    /// Expected state of the recorded fields after this step.
    pub expected: Value,
    /// Apply runs: the argvs that would undo this change (for people; backout re-derives them).
    pub backout: Vec<Vec<String>>,
    /// Backout runs: seq of the intent (in the reverted run) this step undoes.
    pub reverts: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutcome {
    /// Seq of its intent.
    pub intent: u64,
    pub status: StepStatus,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// Read back after the step (recorded fields), when read.
    pub after: Option<Value>,
    pub verified: bool,
}

/// Decisions worth keeping: drift, a manual step, a warning, a skipped target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub resource: Option<String>,
    pub playbook: Option<String>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEnd {
    pub status: RunEndStatus,
    pub summary: ChangeSummary,
}

/// What became of one step, as its `outcome` record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// az succeeded (for apply: and the state read back is the expected one).
    Done,
    Failed,
    /// az was killed by a second interrupt: the change may or may not have been made, as
    /// after a crash; backout reads the live state.
    Unknown,
}

/// How a run ended, as its `run-end` record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunEndStatus {
    /// Every target ended as intended (done, restored, unchanged or skipped by choice).
    Finished,
    /// Some change failed or drifted.
    Incomplete,
    /// The run stopped starting new changes (signed out, az gone, the log unwritable).
    Stopped,
    /// Ctrl-C or SIGTERM: no change started after it; those running were waited for (or,
    /// after a second signal, killed and recorded `unknown`).
    Interrupted,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
            StepStatus::Unknown => "unknown",
        }
    }
}

impl RunEndStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunEndStatus::Finished => "finished",
            RunEndStatus::Incomplete => "incomplete",
            RunEndStatus::Stopped => "stopped",
            RunEndStatus::Interrupted => "interrupted",
        }
    }
}

/// What `azbook runs` and `azbook log` say of a run as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Its run-end says every target ended as intended.
    Finished,
    /// Its run-end says some change failed or drifted.
    Incomplete,
    /// Its run-end says it stopped starting new changes (signed out, az gone, the log
    /// unwritable).
    Stopped,
    /// Its run-end says Ctrl-C or SIGTERM stopped it.
    Interrupted,
    /// No run-end, and no live azbook holds the state directory for it: killed or crashed.
    /// `azbook backout` resolves its unanswered intents from the live state.
    Crashed,
    /// No run-end yet: the azbook holding the state directory's lock is writing it now.
    Running,
    /// Its hash chain broke: a line was edited, removed or reordered.
    Tampered,
    /// Its journal cannot be read at all.
    Unreadable,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "finished",
            RunStatus::Incomplete => "incomplete",
            RunStatus::Stopped => "stopped",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Crashed => "crashed",
            RunStatus::Running => "running",
            RunStatus::Tampered => "tampered",
            RunStatus::Unreadable => "unreadable",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    RunStart(RunStart),
    Intent(Intent),
    Outcome(StepOutcome),
    Note(Note),
    RunEnd(RunEnd),
}

impl Record {
    /// The envelope's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::RunStart(_) => "run-start",
            Record::Intent(_) => "intent",
            Record::Outcome(_) => "outcome",
            Record::Note(_) => "note",
            Record::RunEnd(_) => "run-end",
        }
    }

    /// The payload as a JSON object, its fields in declaration order.
    fn payload_text(&self) -> serde_json::Result<String> {
        match self {
            Record::RunStart(r) => serde_json::to_string(r),
            Record::Intent(r) => serde_json::to_string(r),
            Record::Outcome(r) => serde_json::to_string(r),
            Record::Note(r) => serde_json::to_string(r),
            Record::RunEnd(r) => serde_json::to_string(r),
        }
    }

    fn payload_value(&self) -> serde_json::Result<Value> {
        match self {
            Record::RunStart(r) => serde_json::to_value(r),
            Record::Intent(r) => serde_json::to_value(r),
            Record::Outcome(r) => serde_json::to_value(r),
            Record::Note(r) => serde_json::to_value(r),
            Record::RunEnd(r) => serde_json::to_value(r),
        }
    }

    /// The record of `kind` held in `payload`; `Ok(None)` for a kind this azbook does not know.
    fn from_payload(kind: &str, payload: Value) -> serde_json::Result<Option<Record>> {
        Ok(Some(match kind {
            "run-start" => Record::RunStart(serde_json::from_value(payload)?),
            "intent" => Record::Intent(serde_json::from_value(payload)?),
            "outcome" => Record::Outcome(serde_json::from_value(payload)?),
            "note" => Record::Note(serde_json::from_value(payload)?),
            "run-end" => Record::RunEnd(serde_json::from_value(payload)?),
            _ => return Ok(None),
        }))
    }
}

/// One record as read back, with its place and time in the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub time: String,
    pub record: Record,
}

/// Serialized as the journal line reads, envelope and payload side by side, without `prev`
/// (the chain was checked when the log was read): `{"seq": 3, "kind": "intent", "time": ..., "resource": ...}`.
impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let payload = match self.record.payload_value().map_err(S::Error::custom)? {
            Value::Object(map) => map,
            _ => return Err(S::Error::custom("a record payload is not a JSON object")),
        };
        let mut map = serializer.serialize_map(Some(payload.len() + 3))?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("kind", self.record.kind())?;
        map.serialize_entry("time", &self.time)?;
        for (key, value) in &payload {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Lower-case hex sha256, as the chain and the playbook hashes write it.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One journal line, without its newline: the envelope first (people read it first), then the
/// payload's fields in declaration order.
fn encode_line(seq: u64, time: &str, prev: &str, record: &Record) -> serde_json::Result<String> {
    let payload = record.payload_text()?;
    let mut line = format!(
        "{{\"seq\":{seq},\"kind\":\"{}\",\"time\":{},\"prev\":\"{prev}\"",
        record.kind(),
        serde_json::to_string(time)?
    );
    match payload.strip_prefix('{') {
        Some("}") => line.push('}'),
        Some(fields) => {
            line.push(',');
            line.push_str(fields);
        }
        None => {
            return Err(serde_json::Error::custom(
                "a record payload is not a JSON object",
            ));
        }
    }
    Ok(line)
}

/// A playbook id or run id used as a file name: no separators, no `..`, nothing hidden.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn every_record_kind_round_trips_through_a_line() {
        for record in sample_records() {
            let line = encode_line(7, "2026-11-29T08:01:02Z", GENESIS, &record).unwrap();
            assert!(!line.contains('\n'));
            let mut map: serde_json::Map<String, Value> = serde_json::from_str(&line).unwrap();
            assert_eq!(map.remove("seq"), Some(json!(7)));
            assert_eq!(map.remove("kind"), Some(json!(record.kind())));
            assert_eq!(map.remove("time"), Some(json!("2026-11-29T08:01:02Z")));
            assert_eq!(map.remove("prev"), Some(json!(GENESIS)));
            let back = Record::from_payload(record.kind(), Value::Object(map))
                .unwrap()
                .unwrap();
            assert_eq!(back, record);
        }
    }

    /// No payload field may use an envelope key: the line flattens both into one object.
    const ENVELOPE_KEYS: [&str; 4] = ["seq", "kind", "time", "prev"];

    #[test]
    fn no_payload_field_collides_with_the_envelope() {
        for record in sample_records() {
            let Value::Object(payload) = record.payload_value().unwrap() else {
                panic!("{} payload is not an object", record.kind());
            };
            for key in ENVELOPE_KEYS {
                assert!(!payload.contains_key(key), "{} has `{key}`", record.kind());
            }
        }
    }

    #[test]
    fn the_envelope_leads_the_line() {
        let line = encode_line(0, "t", GENESIS, &sample_start()).unwrap();
        assert!(
            line.starts_with(&format!(
                "{{\"seq\":0,\"kind\":\"run-start\",\"time\":\"t\",\"prev\":\"{GENESIS}\",\"runId\":"
            )),
            "{line}"
        );
    }

    #[test]
    fn an_entry_serializes_as_envelope_and_payload() {
        let entry = Entry {
            seq: 4,
            time: "2026-11-29T08:01:02Z".into(),
            record: Record::Note(Note {
                resource: None,
                playbook: Some("p".into()),
                message: "line one\nline two".into(),
            }),
        };
        assert_eq!(
            serde_json::to_value(&entry).unwrap(),
            json!({"seq": 4, "kind": "note", "time": "2026-11-29T08:01:02Z",
                   "resource": null, "playbook": "p", "message": "line one\nline two"})
        );
    }

    #[test]
    fn sha256_is_the_standard_one() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(GENESIS.len(), 64);
    }

    #[test]
    fn file_names_cannot_escape_their_directory() {
        assert!(is_safe_name("storage-account-mmk"));
        assert!(is_safe_name("20261129T080102Z-apply-3f2a"));
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", "a\0b", "a b"] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }
}
