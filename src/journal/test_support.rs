//! Records and runs for the journal's tests.

use super::*;
pub use super::{RunEndStatus, RunStatus, StepStatus};
use crate::model::ChangeSummary;
use serde_json::json;

pub const PLAYBOOK_ID: &str = "storage-account-mmk";
pub const PLAYBOOK_SOURCE: &str = "schema = 1\nid = \"storage-account-mmk\"\n# the copy\n";
pub const RESOURCE: &str =
    "/subscriptions/s1/resourceGroups/-rg.ops(1)/providers/Microsoft.Storage/storageAccounts/st1";

pub fn start_of(kind: RunKind, reverts: Option<&str>) -> RunStart {
    RunStart {
        run_id: String::new(),
        kind,
        azbook_version: "0.1.0".into(),
        az_version: Some("2.91.0".into()),
        tenant_id: "t1".into(),
        user: "alice@contoso.com".into(),
        subscriptions: vec!["s1".into()],
        playbooks: vec![PlaybookRef {
            id: PLAYBOOK_ID.into(),
            origin: "built-in".into(),
            sha256: String::new(),
        }],
        command_line: vec!["azbook".into(), kind.as_str().into(), "--yes".into()],
        scope: json!({"resourceGroup": "-rg.ops(1)"}),
        reverts: reverts.map(str::to_string),
    }
}

pub fn sample_start() -> Record {
    let mut start = start_of(RunKind::Apply, None);
    start.run_id = "20261129T080102Z-apply-3f2a".into();
    start.playbooks[0].sha256 = sha256_hex(PLAYBOOK_SOURCE.as_bytes());
    Record::RunStart(start)
}

pub fn intent() -> Intent {
    Intent {
        resource: RESOURCE.into(),
        subscription: "s1".into(),
        playbook: PLAYBOOK_ID.into(),
        step: 0,
        step_name: "switch to Microsoft-managed keys".into(),
        argv: vec![
            "az".into(),
            "storage".into(),
            "account".into(),
            "update".into(),
            "--name=st1".into(),
            "--resource-group=-rg.ops(1)".into(),
            "--encryption-key-source=Microsoft.Storage".into(),
        ],
        context: json!({"target": {"name": "st1", "resourceGroup": "-rg.ops(1)"}}),
        before: json!({"encryption.keySource": "Microsoft.Keyvault", "encryption.keyVaultProperties.keyVersion": ""}),
        expected: json!({"encryption.keySource": "Microsoft.Storage"}),
        backout: vec![vec![
            "az".into(),
            "storage".into(),
            "account".into(),
            "update".into(),
            "--encryption-key-version=".into(),
        ]],
        reverts: None,
    }
}

pub fn outcome(intent: u64, status: StepStatus) -> StepOutcome {
    StepOutcome {
        intent,
        status,
        exit_code: Some(if status == StepStatus::Done { 0 } else { 1 }),
        error: (status == StepStatus::Failed)
            .then(|| "ERROR: (AuthorizationFailed) no".to_string()),
        after: Some(json!({"encryption.keySource": "Microsoft.Storage"})),
        verified: status == StepStatus::Done,
    }
}

pub fn note(message: &str) -> Record {
    Record::Note(Note {
        resource: Some(RESOURCE.into()),
        playbook: Some(PLAYBOOK_ID.into()),
        message: message.into(),
    })
}

pub fn run_end(done: usize) -> Record {
    Record::RunEnd(RunEnd {
        status: RunEndStatus::Finished,
        summary: ChangeSummary {
            done,
            ..ChangeSummary::default()
        },
    })
}

/// One of each kind, with the awkward values: nulls, empty strings, newlines, quotes.
pub fn sample_records() -> Vec<Record> {
    let mut backout_intent = intent();
    backout_intent.reverts = Some(3);
    backout_intent.backout.clear();
    vec![
        sample_start(),
        Record::Intent(intent()),
        Record::Intent(backout_intent),
        Record::Outcome(outcome(1, StepStatus::Done)),
        Record::Outcome(StepOutcome {
            intent: 2,
            status: StepStatus::Failed,
            exit_code: None,
            error: Some("timed out\n\"quoted\"".into()),
            after: None,
            verified: false,
        }),
        note("drift: keySource is \"Microsoft.Keyvault\"\nsecond line"),
        Record::Note(Note {
            resource: None,
            playbook: None,
            message: String::new(),
        }),
        run_end(1),
    ]
}

pub fn sources() -> Vec<(String, String)> {
    vec![(PLAYBOOK_ID.to_string(), PLAYBOOK_SOURCE.to_string())]
}

/// A finished apply run with one change done and one failed; returns the run id.
pub fn finished_apply(state: &StateDir) -> String {
    let lock = state.lock().unwrap();
    let mut journal = lock
        .create_run(start_of(RunKind::Apply, None), &sources())
        .unwrap();
    let first = journal.append(Record::Intent(intent())).unwrap();
    journal
        .append(Record::Outcome(outcome(first, StepStatus::Done)))
        .unwrap();
    let second = journal.append(Record::Intent(intent())).unwrap();
    journal
        .append(Record::Outcome(outcome(second, StepStatus::Failed)))
        .unwrap();
    journal.append(run_end(1)).unwrap();
    journal.run_id().to_string()
}
