//! What `azbook test` finds, as data: a verdict and its evidence per target, and the summary
//! a CI gate reads. Renderers (`crate::report`) only read these types; the JSON form is the
//! contract in README.md (schema version 1).

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Compliant,
    Noncompliant,
    Error,
    Skipped,
    Waived,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Compliant => "compliant",
            Status::Noncompliant => "noncompliant",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Waived => "waived",
        }
    }
}

/// Evidence fields in the order the playbook declares them (an auditor reads them in that
/// order), serialized as a JSON object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence(pub Vec<(String, Value)>);

/// Read back in the order written (a merged report keeps the playbook's order), which a JSON
/// map type without insertion order would lose.
impl<'de> Deserialize<'de> for Evidence {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Evidence;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of evidence fields")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Evidence, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    fields.push((k, v));
                }
                Ok(Evidence(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

impl Serialize for Evidence {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TestResult {
    pub playbook: String,
    /// The ARM id of the account, server or database (or of the subscription or server whose
    /// listing failed, for an `error` that stopped discovery below it).
    pub resource: String,
    pub status: Status,
    pub evidence: Evidence,
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub compliant: usize,
    pub noncompliant: usize,
    pub error: usize,
    pub skipped: usize,
    pub waived: usize,
}

impl Summary {
    pub fn of(results: &[TestResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            *match r.status {
                Status::Compliant => &mut s.compliant,
                Status::Noncompliant => &mut s.noncompliant,
                Status::Error => &mut s.error,
                Status::Skipped => &mut s.skipped,
                Status::Waived => &mut s.waived,
            } += 1;
        }
        s
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TestReport {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// Where, as whom and when the results were read (absent in reports of older azbooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<TestContext>,
    pub results: Vec<TestResult>,
    pub summary: Summary,
}

/// What a test report says about its run, so that a report read alone (or merged from shards)
/// still tells which tenant and subscriptions it covers, as whom, and when.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TestContext {
    pub tenant_id: String,
    /// The signed-in identity (for a merged report, every shard's, comma-separated).
    pub user: String,
    pub subscriptions: Vec<String>,
    /// RFC 3339, UTC: when the report was made (for a merged report, the newest shard's).
    pub generated_at: String,
}

impl TestReport {
    pub fn new(mut results: Vec<TestResult>, playbook_order: &[&str]) -> TestReport {
        let rank = |id: &str| {
            playbook_order
                .iter()
                .position(|p| *p == id)
                .unwrap_or(usize::MAX)
        };
        results.sort_by(|a, b| {
            rank(&a.playbook)
                .cmp(&rank(&b.playbook))
                .then_with(|| a.resource.to_lowercase().cmp(&b.resource.to_lowercase()))
        });
        let summary = Summary::of(&results);
        TestReport {
            schema_version: 1,
            context: None,
            results,
            summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(playbook: &str, resource: &str, status: Status) -> TestResult {
        TestResult {
            playbook: playbook.into(),
            resource: resource.into(),
            status,
            evidence: Evidence(vec![("b".into(), json!(1)), ("a".into(), json!(null))]),
            message: String::new(),
        }
    }

    #[test]
    fn json_follows_the_contract() {
        let report = TestReport::new(
            vec![
                result("p2", "/x/B", Status::Error),
                result("p1", "/x/b", Status::Noncompliant),
                result("p1", "/x/a", Status::Compliant),
            ],
            &["p1", "p2"],
        );
        let text = serde_json::to_string_pretty(&report).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schemaVersion"], 1);
        assert_eq!(v["results"][0]["resource"], "/x/a");
        assert_eq!(v["results"][1]["status"], "noncompliant");
        assert_eq!(v["results"][2]["playbook"], "p2");
        assert_eq!(v["results"][0]["evidence"], json!({"b": 1, "a": null}));
        assert_eq!(
            v["summary"],
            json!({"compliant": 1, "noncompliant": 1, "error": 1, "skipped": 0, "waived": 0})
        );
        assert!(
            text.find("\"b\"").unwrap() < text.find("\"a\"").unwrap(),
            "declared order kept"
        );
        let back: TestReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back.summary, report.summary);
        assert_eq!(
            back.results[0].evidence.0[0].0, "b",
            "evidence order survives a round trip"
        );
    }
}
