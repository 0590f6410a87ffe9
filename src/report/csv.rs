//! The test report as CSV (RFC 4180), for spreadsheets and the tools auditors already use.
//!
//! Values are written exactly (no formula-guard prefix): the file must read back to the same
//! results, and a prefix would change resource names and messages. The one exception is what a
//! person must never be shown raw, as in every format for people: control characters other than
//! line breaks and bidirectional controls are written escaped (`\u{1b}`, `\u{202e}`), since
//! a CSV is as often printed to a terminal or opened in an editor as read by a program. The JSON
//! report is the one that keeps them.

use super::table::short_resource;
use super::{TestRenderer, printable};
use crate::model::{ReportContext, TestReport, TestResult};
use std::io::{self, Write};

const HEADER: [&str; 9] = [
    "playbook",
    "control",
    "resource",
    "subscription",
    "resource_group",
    "name",
    "status",
    "message",
    "evidence",
];

/// One row per result; the evidence column is the compact JSON object, in declared order.
pub fn render_test_csv(report: &TestReport, ctx: &ReportContext) -> String {
    let mut out = record(&HEADER);
    for r in &report.results {
        out.push_str(&record(&row(r, ctx)));
    }
    out
}

fn row(r: &TestResult, ctx: &ReportContext) -> [String; 9] {
    let parts = ArmParts::of(&r.resource);
    [
        r.playbook.clone(),
        ctx.playbook(&r.playbook)
            .map(|p| p.control_id.clone())
            .unwrap_or_default(),
        r.resource.clone(),
        parts.subscription,
        parts.resource_group,
        parts.name,
        r.status.as_str().to_string(),
        r.message.clone(),
        serde_json::to_string(&r.evidence).expect("evidence serializes"),
    ]
}

/// One CSV record, CRLF-terminated as RFC 4180 says.
fn record<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields
        .iter()
        .map(|f| field(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// A field quoted only when it must be: it holds a comma, a quote or a line break.
fn field(value: &str) -> String {
    let value = printable(value);
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// The subscription, resource group and name an ARM id holds, each empty when the id has none
/// (an `error` result can name a subscription whose listing failed). A child resource's name is
/// its parent's and its own joined by `/`, as ARM writes it (`sql1/db1`).
pub(super) struct ArmParts {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

impl ArmParts {
    pub fn of(id: &str) -> ArmParts {
        let subscription = segment_after(id, "subscriptions");
        let resource_group = segment_after(id, "resourceGroups");
        // short_resource writes `RG/NAME[/CHILD]` when the id has a group, else the id itself.
        let name = if resource_group.is_empty() {
            String::new()
        } else {
            short_resource(id, false)
                .strip_prefix(&format!("{resource_group}/"))
                .unwrap_or_default()
                .to_string()
        };
        ArmParts {
            subscription,
            resource_group,
            name,
        }
    }
}

/// The segment after `key` (ARM ids are case-insensitive), or "".
fn segment_after(id: &str, key: &str) -> String {
    let mut parts = id.split('/');
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case(key) {
            return parts.next().unwrap_or_default().to_string();
        }
    }
    String::new()
}

pub struct Csv;

impl TestRenderer for Csv {
    fn render_test(
        &self,
        report: &TestReport,
        ctx: &ReportContext,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        out.write_all(render_test_csv(report, ctx).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, PlaybookDoc, Status};
    use serde_json::{Value, json};

    /// An RFC 4180 reader, independent of the writer: quoted fields may hold commas, doubled
    /// quotes and line breaks; records end in CRLF.
    fn parse(text: &str) -> Vec<Vec<String>> {
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut field = String::new();
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') if field.is_empty() => quoted = true,
                (false, ',') => record.push(std::mem::take(&mut field)),
                (false, '\r') => {
                    assert_eq!(chars.next(), Some('\n'), "a bare CR ends no record");
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                (false, c) => {
                    assert_ne!(c, '\n', "a bare LF outside quotes");
                    assert_ne!(c, '"', "a quote inside an unquoted field");
                    field.push(c);
                }
            }
        }
        assert!(!quoted, "unterminated quote");
        assert!(
            record.is_empty() && field.is_empty(),
            "the last record ends in CRLF"
        );
        records
    }

    fn result(resource: &str, status: Status, message: &str, evidence: Evidence) -> TestResult {
        TestResult {
            playbook: "sql-database-tde-mmk".into(),
            resource: resource.into(),
            status,
            evidence,
            message: message.into(),
        }
    }

    fn ctx() -> ReportContext {
        ReportContext {
            playbooks: vec![PlaybookDoc {
                id: "sql-database-tde-mmk".into(),
                control_id: "2.1.1.1.1".into(),
                ..PlaybookDoc::default()
            }],
            ..ReportContext::default()
        }
    }

    #[test]
    fn hostile_values_round_trip() {
        let evidence = Evidence(vec![
            ("tde.state".into(), json!("Dis,abled \"x\"\r\nline")),
            ("db.encryptionProtector".into(), json!(null)),
            ("empty".into(), json!("")),
        ]);
        let results = vec![
            result(
                "/subscriptions/S1/resourceGroups/-rg.ops(1)/providers/Microsoft.Sql/servers/sql1/databases/db1",
                Status::Noncompliant,
                "TDE is \"Disabled\", so data, at rest,\nis not encrypted\r\n",
                evidence.clone(),
            ),
            result(
                "/subscriptions/s2",
                Status::Error,
                "listing failed\r\nsee az",
                Evidence::default(),
            ),
        ];
        let report = TestReport::new(results.clone(), &["sql-database-tde-mmk"]);
        let text = render_test_csv(&report, &ctx());
        let records = parse(&text);
        assert_eq!(records[0], HEADER);
        assert_eq!(records.len(), 3);
        let db = &records[1];
        assert_eq!(db[0], "sql-database-tde-mmk");
        assert_eq!(db[1], "2.1.1.1.1");
        assert_eq!(db[2], results[0].resource);
        assert_eq!(db[3..6], ["S1", "-rg.ops(1)", "sql1/db1"]);
        assert_eq!(db[6], "noncompliant");
        assert_eq!(db[7], results[0].message);
        assert_eq!(
            db[8],
            r#"{"tde.state":"Dis,abled \"x\"\r\nline","db.encryptionProtector":null,"empty":""}"#,
            "compact JSON in declared order"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&db[8]).unwrap(),
            serde_json::to_value(&evidence).unwrap(),
            "values and nulls survive"
        );
        assert_eq!(
            records[2][2..9],
            [
                "/subscriptions/s2",
                "s2",
                "",
                "",
                "error",
                "listing failed\r\nsee az",
                "{}"
            ]
        );
    }

    #[test]
    fn plain_fields_are_not_quoted_and_unknown_playbooks_have_no_control() {
        let mut r = result(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st",
            Status::Compliant,
            "ok",
            Evidence::default(),
        );
        r.playbook = "other".into();
        let text = render_test_csv(&TestReport::new(vec![r], &[]), &ctx());
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "other,,/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st,s,rg,st,compliant,ok,{}"
        );
    }

    #[test]
    fn control_and_bidirectional_characters_are_shown_escaped() {
        let r = result(
            "/subscriptions/s/resourceGroups/rg-\u{1b}[31m/providers/Microsoft.Storage/storageAccounts/st\u{202e}",
            Status::Error,
            "az said\r\n\u{9b}2J\tdone\rover",
            Evidence(vec![("tags.owner".into(), json!("a\u{2066}b\u{85}"))]),
        );
        let text = render_test_csv(&TestReport::new(vec![r], &[]), &ctx());
        let records = parse(&text);
        assert_eq!(
            records[1][2],
            r"/subscriptions/s/resourceGroups/rg-\u{1b}[31m/providers/Microsoft.Storage/storageAccounts/st\u{202e}"
        );
        assert_eq!(records[1][4..6], [r"rg-\u{1b}[31m", r"st\u{202e}"]);
        assert_eq!(
            records[1][7], "az said\r\n\\u{9b}2J\\tdone\\rover",
            "line breaks kept in the quoted field, a lone CR shown"
        );
        assert_eq!(records[1][8], r#"{"tags.owner":"a\u{2066}b\u{85}"}"#);
    }
}
