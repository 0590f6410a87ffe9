//! What `plan`, `apply` and `backout` produce, as data: per target, the exact steps, the state
//! before and after, how to undo it, and a status. The JSON form is the contract in README.md
//! (schema version 1); the engine fills these in and the renderers only read them.

use super::{Status, TestResult};
use crate::fieldpath::{FieldPath, same_value};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Az,
    Manual,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PlannedStep {
    /// The step's position in the playbook's `implement` list.
    pub index: usize,
    pub name: String,
    pub kind: StepKind,
    /// Exactly what runs, `--subscription` and `--output` included; empty for a manual step.
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    pub reversible: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Why the step can take minutes (the playbook's `long_running`); absent for most steps.
    #[serde(
        default,
        rename = "longRunning",
        skip_serializing_if = "Option::is_none"
    )]
    pub long_running: Option<String>,
}

impl PlannedStep {
    /// What the step's az command does that nothing can take back (`deletes`, `grants access`),
    /// judged from the command words of its argv as `playbook::destructive_command` judges a
    /// playbook's step (the loader accepts such a step only with `reversible = false` and a
    /// `warning`). Plans mark these steps and apply runs them only with `--allow-destructive`.
    pub fn destructive(&self) -> Option<&'static str> {
        if self.kind != StepKind::Az {
            return None;
        }
        let words: Vec<&str> = self
            .argv
            .iter()
            .skip(1)
            .map(String::as_str)
            .take_while(|w| !w.starts_with('-'))
            .collect();
        crate::playbook::destructive_command(&words)
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    /// plan: azbook would run the steps.
    Pending,
    /// plan: only steps a person must do.
    Manual,
    Done,
    Failed,
    /// The target's state is no longer what the plan or change log recorded.
    Drifted,
    Skipped,
    Restored,
    Unchanged,
}

impl ChangeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Pending => "pending",
            ChangeStatus::Manual => "manual",
            ChangeStatus::Done => "done",
            ChangeStatus::Failed => "failed",
            ChangeStatus::Drifted => "drifted",
            ChangeStatus::Skipped => "skipped",
            ChangeStatus::Restored => "restored",
            ChangeStatus::Unchanged => "unchanged",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Change {
    pub playbook: String,
    pub resource: String,
    pub subscription: String,
    pub steps: Vec<PlannedStep>,
    /// The recorded fields before the change.
    pub before: Value,
    /// Predicted (plan) or read back (apply, backout).
    pub after: Value,
    pub backout: Vec<Vec<String>>,
    pub status: ChangeStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// What apply found worth a warning before changing it (a customer key it cannot confirm).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The target fields the templates need (a plan file re-derives every argv: README.md, "Remediation").
    pub context: Value,
    /// Why a target is `drifted` or failed its verification: each field that is not what azbook
    /// expected, with both values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<FieldDifference>,
}

/// A recorded field that does not hold what azbook expected there.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FieldDifference {
    pub field: String,
    /// What azbook expected: the recorded prior state (drift, backout) or what a step wrote.
    pub expected: Value,
    /// What the resource holds now.
    pub found: Value,
}

impl FieldDifference {
    /// The fields among `paths` where `found` differs from `expected` under the equality rules.
    pub fn between(paths: &[FieldPath], expected: &Value, found: &Value) -> Vec<FieldDifference> {
        paths
            .iter()
            .filter(|p| !same_value(p.get(expected), p.get(found)))
            .map(|p| FieldDifference {
                field: p.to_string(),
                expected: p.get(expected).clone(),
                found: p.get(found).clone(),
            })
            .collect()
    }

    /// `field is X (expected Y)`, joined for a message.
    pub fn describe(differences: &[FieldDifference]) -> String {
        differences
            .iter()
            .map(|d| format!("{} is {} (expected {})", d.field, d.found, d.expected))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Change {
    pub fn has_az_steps(&self) -> bool {
        self.steps.iter().any(|s| s.kind == StepKind::Az)
    }

    /// The steps that delete, purge, revoke, regenerate keys or grant access.
    pub fn destructive_steps(&self) -> impl Iterator<Item = (&PlannedStep, &'static str)> {
        self.steps
            .iter()
            .filter_map(|s| s.destructive().map(|what| (s, what)))
    }
}

/// What `plan`, `apply` and `backout` print with `--output json` (schema version 1).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ChangeReport {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The change log of this run, for apply and backout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub changes: Vec<Change>,
    /// Targets that could not be read, so no change could be derived for them.
    pub errors: Vec<TestResult>,
    /// Noncompliant or not, targets an active waiver exempts: never changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waived: Vec<TestResult>,
    pub summary: ChangeSummary,
}

impl ChangeReport {
    /// `results` are the targets no change was derived for: errors and waived ones.
    pub fn new(run: Option<String>, changes: Vec<Change>, results: Vec<TestResult>) -> Self {
        let (waived, errors): (Vec<TestResult>, Vec<TestResult>) = results
            .into_iter()
            .partition(|r| r.status == Status::Waived);
        let summary = ChangeSummary::of(&changes, errors.len(), waived.len());
        ChangeReport {
            schema_version: 1,
            run,
            changes,
            errors,
            waived,
            summary,
        }
    }

    /// `12 done, 1 skipped`: the summary for people.
    pub fn summary_text(&self) -> String {
        self.summary.text()
    }

    /// Some change failed, or was not made because its target drifted.
    pub fn has_failures(&self) -> bool {
        self.summary.failed + self.summary.drifted > 0
    }
}

/// How many targets ended in each state. On disk and in JSON it is an object holding only the
/// states that occurred, keys in alphabetical order (`{"done": 2, "error": 1}`), as the first
/// change logs wrote it; the fields are declared in that order so that serde keeps it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct ChangeSummary {
    #[serde(skip_serializing_if = "is_zero")]
    pub done: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub drifted: usize,
    /// Targets that could not be read, so no change was derived for them.
    #[serde(skip_serializing_if = "is_zero")]
    pub error: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub failed: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub manual: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub pending: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub restored: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub unchanged: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub waived: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ChangeSummary {
    pub fn of(changes: &[Change], errors: usize, waived: usize) -> ChangeSummary {
        let mut s = ChangeSummary {
            error: errors,
            waived,
            ..ChangeSummary::default()
        };
        for c in changes {
            *s.count_mut(c.status) += 1;
        }
        s
    }

    fn count_mut(&mut self, status: ChangeStatus) -> &mut usize {
        match status {
            ChangeStatus::Pending => &mut self.pending,
            ChangeStatus::Manual => &mut self.manual,
            ChangeStatus::Done => &mut self.done,
            ChangeStatus::Failed => &mut self.failed,
            ChangeStatus::Drifted => &mut self.drifted,
            ChangeStatus::Skipped => &mut self.skipped,
            ChangeStatus::Restored => &mut self.restored,
            ChangeStatus::Unchanged => &mut self.unchanged,
        }
    }

    /// The states that occurred with their counts, in the order the JSON form lists them.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        [
            ("done", self.done),
            ("drifted", self.drifted),
            ("error", self.error),
            ("failed", self.failed),
            ("manual", self.manual),
            ("pending", self.pending),
            ("restored", self.restored),
            ("skipped", self.skipped),
            ("unchanged", self.unchanged),
            ("waived", self.waived),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }

    /// `12 done, 1 skipped`, or `nothing to do`.
    pub fn text(&self) -> String {
        let counts = self.counts();
        if counts.is_empty() {
            return "nothing to do".into();
        }
        counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summary_keeps_the_form_change_logs_have_always_had() {
        let s = ChangeSummary {
            waived: 1,
            done: 2,
            error: 3,
            ..ChangeSummary::default()
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"done":2,"error":3,"waived":1}"#
        );
        let old: ChangeSummary =
            serde_json::from_value(json!({"restored": 4, "failed": 1})).unwrap();
        assert_eq!(old.restored, 4);
        assert_eq!(old.failed, 1);
        assert_eq!(old.text(), "1 failed, 4 restored");
        assert_eq!(ChangeSummary::default().text(), "nothing to do");
    }
}
