//! What every report says about its run besides the results: who ran it, where, when, with
//! which playbooks. Results alone do not make an audit or a change record; a reader must be able
//! to tell which tenant, identity and scope they cover, and what each playbook tested.

use super::TestResult;
use crate::playbook::Playbook;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportContext {
    /// Which command produced the report (absent only in a context built for a test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<RunCommand>,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub azbook_version: String,
    pub tenant_id: String,
    /// The signed-in identity.
    pub user: String,
    pub subscriptions: Vec<String>,
    /// The filters as people read them: `tag data-classification=critical`.
    pub scope: Vec<String>,
    pub playbooks: Vec<PlaybookDoc>,
    /// apply and backout: the change-log run id.
    pub run: Option<String>,
    /// A saved plan applied or shown: the sha256 of its file, so that an approved change
    /// record can be tied to the file applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_sha256: Option<String>,
}

/// The commands whose results a report holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunCommand {
    Test,
    Plan,
    Apply,
    Backout,
}

impl RunCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            RunCommand::Test => "test",
            RunCommand::Plan => "plan",
            RunCommand::Apply => "apply",
            RunCommand::Backout => "backout",
        }
    }
}

/// A playbook as a report describes it: what control it implements and what it tests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaybookDoc {
    pub id: String,
    pub title: String,
    pub resource_type: String,
    pub control_id: String,
    pub control_title: String,
    pub benchmark: Option<String>,
    /// The verdict expression: for a change record, the test plan.
    pub compliant_when: String,
    pub sha256: String,
}

impl PlaybookDoc {
    /// The description of a loaded playbook, so that callers do not assemble it field by field.
    pub fn from_playbook(playbook: &Playbook) -> PlaybookDoc {
        PlaybookDoc {
            id: playbook.id.clone(),
            title: playbook.title.clone(),
            resource_type: playbook.resource_type.clone(),
            control_id: playbook.control.id.clone(),
            control_title: playbook.control.title.clone(),
            benchmark: playbook.control.benchmark.clone(),
            compliant_when: playbook.test.compliant.source().to_string(),
            sha256: playbook.sha256(),
        }
    }
}

impl ReportContext {
    pub fn playbook(&self, id: &str) -> Option<&PlaybookDoc> {
        self.playbooks.iter().find(|p| p.id == id)
    }
}

/// The playbooks a report covers, in the context's order, then any that only the results name
/// (a merged report, or a playbook missing from the context), in the order they appear. A
/// playbook that found no targets still belongs in the report: "nothing found" is a finding.
pub fn playbook_ids<'a>(ctx: &'a ReportContext, results: &'a [TestResult]) -> Vec<&'a str> {
    let mut ids: Vec<&str> = ctx.playbooks.iter().map(|p| p.id.as_str()).collect();
    for r in results {
        if !ids.contains(&r.playbook.as_str()) {
            ids.push(&r.playbook);
        }
    }
    ids
}

/// One playbook as `azbook list` shows it.
#[derive(Serialize, Clone, Debug)]
pub struct PlaybookInfo {
    pub id: String,
    pub title: String,
    #[serde(rename = "resourceType")]
    pub resource_type: String,
    pub control: String,
    /// The benchmark's profile level (CIS: 1 or 2), when the playbook names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<i64>,
    pub origin: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, Status};
    use crate::playbook::builtin;

    #[test]
    fn a_builtin_playbook_is_described_from_its_definition() {
        let p = builtin()
            .into_iter()
            .find(|p| p.id == "storage-account-mmk")
            .unwrap();
        let doc = PlaybookDoc::from_playbook(&p);
        assert_eq!(doc.control_id, "2.1.1.1.1");
        assert_eq!(
            doc.benchmark.as_deref(),
            Some("CIS Microsoft Azure Foundations Benchmark v4.0.0")
        );
        assert!(doc.compliant_when.contains("encryption.keySource"));
        assert_eq!(doc.sha256, p.sha256());
    }

    #[test]
    fn serializes_in_camel_case() {
        let ctx = ReportContext {
            generated_at: "2025-01-01T00:00:00Z".into(),
            playbooks: vec![PlaybookDoc {
                compliant_when: "x".into(),
                ..PlaybookDoc::default()
            }],
            ..ReportContext::default()
        };
        let v = serde_json::to_value(&ctx).unwrap();
        assert_eq!(v["generatedAt"], "2025-01-01T00:00:00Z");
        assert_eq!(v["playbooks"][0]["compliantWhen"], "x");
        let back: ReportContext = serde_json::from_value(v).unwrap();
        assert_eq!(back, ctx);
    }

    #[test]
    fn playbooks_known_only_from_results_come_last() {
        let ctx = ReportContext {
            playbooks: vec![PlaybookDoc {
                id: "b".into(),
                ..PlaybookDoc::default()
            }],
            ..ReportContext::default()
        };
        let result = |p: &str| TestResult {
            playbook: p.into(),
            resource: "/r".into(),
            status: Status::Compliant,
            evidence: Evidence::default(),
            message: String::new(),
        };
        let results = [result("c"), result("b"), result("a"), result("c")];
        assert_eq!(playbook_ids(&ctx, &results), ["b", "c", "a"]);
    }
}
