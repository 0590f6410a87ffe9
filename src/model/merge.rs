//! `azbook report merge`: one report from the JSON reports of a run sharded by subscription
//! across CI jobs (README.md, "Workflow: audit in CI").
//!
//! Shards must not disagree silently: the same resource tested by the same playbook in two
//! shards is kept once when both say the same, and is an error naming both files otherwise. An
//! empty merge is an error too, since a report with nothing in it would pass any gate.

use super::{TestContext, TestReport, TestResult};
use std::collections::HashMap;

/// The schema version every input must have: a later one may mean something this build cannot
/// read.
const SCHEMA_VERSION: u32 = 1;

/// Merges `(source name, report)` pairs; results are ordered by playbook, then resource (both
/// case-insensitive), and the summary is counted again from them.
pub fn merge_test_reports(reports: Vec<(String, TestReport)>) -> Result<TestReport, String> {
    if reports.is_empty() {
        return Err("no reports to merge".into());
    }
    for (source, report) in &reports {
        if report.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "{source}: schemaVersion {} is not one this azbook reads (it reads {SCHEMA_VERSION})",
                report.schema_version
            ));
        }
    }
    let context = merged_context(&reports)?;
    let mut merged = Merged::default();
    for (source, report) in reports {
        for result in report.results {
            merged.add(source.clone(), result)?;
        }
    }
    let mut playbooks: Vec<String> = merged
        .kept
        .iter()
        .map(|(_, r)| r.playbook.clone())
        .collect();
    playbooks.sort_by_key(|p| p.to_lowercase());
    playbooks.dedup();
    let order: Vec<&str> = playbooks.iter().map(String::as_str).collect();
    let mut report = TestReport::new(merged.kept.into_iter().map(|(_, r)| r).collect(), &order);
    report.context = context;
    Ok(report)
}

/// The shards' contexts as one: the tenant (shards of two tenants are refused), every identity
/// and subscription, the newest time. None when no shard recorded one.
fn merged_context(reports: &[(String, TestReport)]) -> Result<Option<TestContext>, String> {
    let mut merged: Option<(TestContext, String)> = None;
    for (source, report) in reports {
        let Some(c) = &report.context else {
            continue;
        };
        let Some((m, first)) = &mut merged else {
            merged = Some((c.clone(), source.clone()));
            continue;
        };
        if !m.tenant_id.eq_ignore_ascii_case(&c.tenant_id) {
            return Err(format!(
                "{first} is for tenant {} but {source} for tenant {}: merge the shards of one tenant",
                m.tenant_id, c.tenant_id
            ));
        }
        if !m.user.split(", ").any(|u| u == c.user) {
            m.user = format!("{}, {}", m.user, c.user);
        }
        for s in &c.subscriptions {
            if !m.subscriptions.iter().any(|k| k.eq_ignore_ascii_case(s)) {
                m.subscriptions.push(s.clone());
            }
        }
        if c.generated_at > m.generated_at {
            m.generated_at = c.generated_at.clone();
        }
    }
    Ok(merged.map(|(m, _)| m))
}

/// The results kept so far, each with the file it came from, and an index by target so that a
/// tenant's worth of results merges in linear time.
#[derive(Default)]
struct Merged {
    kept: Vec<(String, TestResult)>,
    /// (playbook, lower-cased resource: ARM ids are case-insensitive) -> position in `kept`.
    index: HashMap<(String, String), usize>,
}

impl Merged {
    /// Adds a result unless one for the same target is already kept: then it must say the same.
    fn add(&mut self, source: String, result: TestResult) -> Result<(), String> {
        let key = (result.playbook.clone(), result.resource.to_lowercase());
        let Some(&at) = self.index.get(&key) else {
            self.index.insert(key, self.kept.len());
            self.kept.push((source, result));
            return Ok(());
        };
        let (first, kept) = &self.kept[at];
        if identical(kept, &result) {
            return Ok(());
        }
        Err(format!(
            "{} {}: {first} says {} ({}), {source} says {} ({}); a resource must be in one shard only",
            result.playbook,
            result.resource,
            kept.status.as_str(),
            kept.message,
            result.status.as_str(),
            result.message
        ))
    }
}

/// The same verdict, evidence and message; the resource may differ only in case.
fn identical(a: &TestResult, b: &TestResult) -> bool {
    a.status == b.status && a.message == b.message && a.evidence == b.evidence
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, Status, Summary};
    use serde_json::json;

    fn result(playbook: &str, resource: &str, status: Status) -> TestResult {
        TestResult {
            playbook: playbook.into(),
            resource: resource.into(),
            status,
            evidence: Evidence(vec![("k".into(), json!("v"))]),
            message: format!("{status:?}"),
        }
    }

    fn shard(results: Vec<TestResult>) -> TestReport {
        TestReport::new(results, &[])
    }

    #[test]
    fn disjoint_shards_are_concatenated_sorted_and_counted() {
        let a = shard(vec![
            result(
                "storage-account-mmk",
                "/subscriptions/s1/b",
                Status::Noncompliant,
            ),
            result(
                "sql-database-tde-mmk",
                "/subscriptions/s1/z",
                Status::Skipped,
            ),
        ]);
        let b = shard(vec![
            result(
                "storage-account-mmk",
                "/subscriptions/S2/A",
                Status::Compliant,
            ),
            result("sql-database-tde-mmk", "/subscriptions/s2/a", Status::Error),
        ]);
        let merged = merge_test_reports(vec![("a.json".into(), a), ("b.json".into(), b)]).unwrap();
        let order: Vec<(&str, &str)> = merged
            .results
            .iter()
            .map(|r| (r.playbook.as_str(), r.resource.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("sql-database-tde-mmk", "/subscriptions/s1/z"),
                ("sql-database-tde-mmk", "/subscriptions/s2/a"),
                ("storage-account-mmk", "/subscriptions/s1/b"),
                ("storage-account-mmk", "/subscriptions/S2/A"),
            ]
        );
        assert_eq!(merged.schema_version, 1);
        assert_eq!(
            merged.summary,
            Summary {
                compliant: 1,
                noncompliant: 1,
                error: 1,
                skipped: 1,
                waived: 0
            }
        );
    }

    #[test]
    fn identical_duplicates_are_kept_once() {
        let r = result("p", "/subscriptions/s1/x", Status::Noncompliant);
        let mut upper = r.clone();
        upper.resource = upper.resource.to_uppercase();
        let merged = merge_test_reports(vec![
            ("a.json".into(), shard(vec![r.clone()])),
            ("b.json".into(), shard(vec![upper])),
        ])
        .unwrap();
        assert_eq!(merged.results, [r]);
        assert_eq!(merged.summary.noncompliant, 1);
    }

    #[test]
    fn conflicting_duplicates_name_both_files() {
        let a = result("p", "/subscriptions/s1/x", Status::Noncompliant);
        let b = result("p", "/subscriptions/S1/X", Status::Compliant);
        let err = merge_test_reports(vec![
            ("shard-1.json".into(), shard(vec![a.clone()])),
            ("shard-2.json".into(), shard(vec![b])),
        ])
        .unwrap_err();
        assert!(err.contains("shard-1.json says noncompliant"), "{err}");
        assert!(err.contains("shard-2.json says compliant"), "{err}");
        assert!(err.contains("/subscriptions/S1/X"), "{err}");

        let mut other_evidence = a.clone();
        other_evidence.evidence = Evidence(vec![("k".into(), json!(null))]);
        let err = merge_test_reports(vec![
            ("shard-1.json".into(), shard(vec![a])),
            ("shard-2.json".into(), shard(vec![other_evidence])),
        ])
        .unwrap_err();
        assert!(
            err.contains("shard-1.json") && err.contains("shard-2.json"),
            "{err}"
        );
    }

    #[test]
    fn the_same_resource_under_two_playbooks_is_no_conflict() {
        let merged = merge_test_reports(vec![
            (
                "a.json".into(),
                shard(vec![result("p1", "/x", Status::Compliant)]),
            ),
            (
                "b.json".into(),
                shard(vec![result("p2", "/x", Status::Error)]),
            ),
        ])
        .unwrap();
        assert_eq!(merged.results.len(), 2);
    }

    #[test]
    fn another_schema_version_or_nothing_is_refused() {
        let mut future = shard(vec![result("p", "/x", Status::Compliant)]);
        future.schema_version = 2;
        let err = merge_test_reports(vec![
            ("ok.json".into(), shard(Vec::new())),
            ("future.json".into(), future),
        ])
        .unwrap_err();
        assert!(err.starts_with("future.json: schemaVersion 2"), "{err}");
        assert!(merge_test_reports(Vec::new()).is_err());
    }
}
