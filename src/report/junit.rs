//! The test report as JUnit XML, so that a CI system (GitHub Actions, Azure Pipelines, Jenkins)
//! can gate on the audit and show each resource as a test case.
//!
//! The layout follows the Ant JUnit schema those systems read: `<testsuites>` holding one
//! `<testsuite>` per playbook, each with its `<properties>` first, then one `<testcase>` per
//! result. Every value comes from Azure or a playbook, so all of it is escaped: control and
//! bidirectional characters are shown as `\u{1b}`, `\u{202e}` (as in every format for people,
//! and XML 1.0 cannot carry most C0 controls at all), then markup is escaped; the two
//! noncharacters XML refuses besides (U+FFFE, U+FFFF) are dropped.

use super::{TestRenderer, printable};
use crate::model::{
    Evidence, ReportContext, RunCommand, Status, Summary, TestReport, TestResult, playbook_ids,
};
use std::io::{self, Write};

pub fn render_test_junit(report: &TestReport, ctx: &ReportContext) -> String {
    let total = &report.summary;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{}\"{}>\n",
        attr(&format!("azbook {}", command(ctx))),
        counts(report.results.len(), total)
    ));
    for id in playbook_ids(ctx, &report.results) {
        // Cloned so the suite's counts come from `Summary::of`, the report's own tally.
        let results: Vec<TestResult> = report
            .results
            .iter()
            .filter(|r| r.playbook == id)
            .cloned()
            .collect();
        suite(&mut out, id, &results, ctx);
    }
    out.push_str("</testsuites>\n");
    out
}

fn command(ctx: &ReportContext) -> &'static str {
    ctx.command.unwrap_or(RunCommand::Test).as_str()
}

/// `tests`, `failures` (noncompliant), `errors` and `skipped` (skipped and waived) attributes.
fn counts(tests: usize, s: &Summary) -> String {
    format!(
        " tests=\"{tests}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
        s.noncompliant,
        s.error,
        s.skipped + s.waived
    )
}

fn suite(out: &mut String, id: &str, results: &[TestResult], ctx: &ReportContext) {
    let timestamp = if ctx.generated_at.is_empty() {
        String::new()
    } else {
        format!(" timestamp=\"{}\"", attr(&ctx.generated_at))
    };
    out.push_str(&format!(
        "  <testsuite name=\"{}\"{}{timestamp}>\n",
        attr(id),
        counts(results.len(), &Summary::of(results))
    ));
    out.push_str("    <properties>\n");
    for (name, value) in properties(id, ctx)
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
    {
        out.push_str(&format!(
            "      <property name=\"{}\" value=\"{}\"/>\n",
            attr(name),
            attr(&value)
        ));
    }
    out.push_str("    </properties>\n");
    for r in results {
        testcase(out, r);
    }
    out.push_str("  </testsuite>\n");
}

/// Who ran the audit, where and against what: a CI page shows these beside the results. Empty
/// ones are left out by the caller.
fn properties(id: &str, ctx: &ReportContext) -> Vec<(&'static str, String)> {
    let mut props = vec![
        ("tenant", ctx.tenant_id.clone()),
        ("user", ctx.user.clone()),
        ("subscriptions", ctx.subscriptions.join(", ")),
        ("scope", ctx.scope.join(", ")),
        ("azbookVersion", ctx.azbook_version.clone()),
        ("generatedAt", ctx.generated_at.clone()),
    ];
    if let Some(run) = &ctx.run {
        props.push(("run", run.clone()));
    }
    if let Some(p) = ctx.playbook(id) {
        props.extend([
            ("title", p.title.clone()),
            ("resourceType", p.resource_type.clone()),
            ("benchmark", p.benchmark.clone().unwrap_or_default()),
            ("control", p.control_id.clone()),
            ("controlTitle", p.control_title.clone()),
            ("compliantWhen", p.compliant_when.clone()),
            ("playbookSha256", p.sha256.clone()),
        ]);
    }
    props
}

fn testcase(out: &mut String, r: &TestResult) {
    let evidence = evidence_lines(&r.evidence);
    let inner = match r.status {
        Status::Noncompliant => verdict("failure", "noncompliant", r, &evidence),
        Status::Error => verdict("error", "error", r, &evidence),
        Status::Skipped | Status::Waived => format!(
            "      <skipped message=\"{}\"/>\n{}",
            attr(&skip_message(r)),
            system_out(&evidence)
        ),
        Status::Compliant => system_out(&evidence),
    };
    let open = format!(
        "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
        attr(&r.playbook),
        attr(&r.resource)
    );
    if inner.is_empty() {
        out.push_str(&format!("{open}/>\n"));
    } else {
        out.push_str(&format!("{open}>\n{inner}    </testcase>\n"));
    }
}

/// `<failure>` or `<error>`: the message, and in the body the evidence behind the verdict.
fn verdict(element: &str, kind: &str, r: &TestResult, evidence: &str) -> String {
    let message = if r.message.is_empty() {
        r.status.as_str()
    } else {
        &r.message
    };
    let body = if evidence.is_empty() {
        message.to_string()
    } else {
        format!("{message}\n{evidence}")
    };
    format!(
        "      <{element} message=\"{}\" type=\"{kind}\">{}</{element}>\n",
        attr(message),
        text(&body)
    )
}

/// CI systems show `skipped` and `waived` alike, so the message names a waiver as one.
fn skip_message(r: &TestResult) -> String {
    let status = r.status.as_str();
    if r.message.is_empty() {
        status.to_string()
    } else if r.status == Status::Waived && !r.message.starts_with(status) {
        format!("{status}: {}", r.message)
    } else {
        r.message.clone()
    }
}

/// The evidence of a case that has no failure body to carry it.
fn system_out(evidence: &str) -> String {
    if evidence.is_empty() {
        String::new()
    } else {
        format!("      <system-out>{}</system-out>\n", text(evidence))
    }
}

/// `field: value` per line, the value as az printed it (JSON, so `null` and `""` differ).
fn evidence_lines(evidence: &Evidence) -> String {
    evidence
        .0
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// XML 1.0 allows tab, LF, CR and everything from U+0020 except U+FFFE and U+FFFF (Rust chars
/// are never surrogates).
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Element text: control characters shown, markup escaped; the CR of a CR LF line break as a
/// reference, since parsers turn a literal CR into LF.
fn text(value: &str) -> String {
    let value = printable(value);
    let mut out = String::with_capacity(value.len());
    for c in value.chars().filter(|c| allowed(*c)) {
        match c {
            '\r' => out.push_str("&#13;"),
            c => push_escaped(&mut out, c),
        }
    }
    out
}

/// An attribute value: as text, and line breaks as references, since parsers turn literal ones
/// in attributes into spaces.
fn attr(value: &str) -> String {
    let value = printable(value);
    let mut out = String::with_capacity(value.len());
    for c in value.chars().filter(|c| allowed(*c)) {
        match c {
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => push_escaped(&mut out, c),
        }
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&apos;"),
        c => out.push(c),
    }
}

pub struct Junit;

impl TestRenderer for Junit {
    fn render_test(
        &self,
        report: &TestReport,
        ctx: &ReportContext,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        out.write_all(render_test_junit(report, ctx).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PlaybookDoc;
    use roxmltree::{Document, Node};
    use serde_json::json;

    const HOSTILE: &str =
        "a <b> & \"c\" 'd' ]]> \u{0}\u{1b}[31m\u{8}\u{9b}\u{202e}\u{FFFE} tab\there\r\nnext";
    /// Control and bidirectional characters shown escaped, the noncharacter dropped, the line
    /// break kept.
    const CLEAN: &str = concat!(
        r#"a <b> & "c" 'd' ]]> \u{0}\u{1b}[31m\u{8}\u{9b}\u{202e} tab\there"#,
        "\r\nnext"
    );

    fn result(playbook: &str, resource: &str, status: Status, message: &str) -> TestResult {
        TestResult {
            playbook: playbook.into(),
            resource: resource.into(),
            status,
            evidence: Evidence(vec![
                ("encryption.keySource".into(), json!("Microsoft.Keyvault")),
                ("x".into(), json!(HOSTILE)),
                ("n".into(), json!(null)),
            ]),
            message: message.into(),
        }
    }

    fn ctx() -> ReportContext {
        ReportContext {
            command: Some(RunCommand::Test),
            generated_at: "2025-06-01T10:00:00Z".into(),
            tenant_id: "t-1".into(),
            user: "ops@example.com".into(),
            subscriptions: vec!["s1".into(), "s2".into()],
            scope: vec!["tag data-classification=critical".into()],
            playbooks: vec![
                PlaybookDoc {
                    id: "p1".into(),
                    control_id: "2.1.1.1.1".into(),
                    compliant_when: "a && b < 'c'".into(),
                    ..PlaybookDoc::default()
                },
                PlaybookDoc {
                    id: "empty".into(),
                    ..PlaybookDoc::default()
                },
            ],
            ..ReportContext::default()
        }
    }

    fn report() -> TestReport {
        TestReport::new(
            vec![
                result("p1", "/subscriptions/s1/a", Status::Compliant, "ok"),
                result("p1", "/subscriptions/s1/b&<", Status::Noncompliant, HOSTILE),
                result("p1", "/subscriptions/s1/c", Status::Error, "az failed"),
                result("p1", "/subscriptions/s1/master", Status::Skipped, "system"),
                result("p2", "/subscriptions/s2/d", Status::Waived, "until 2026"),
                result("p2", "/subscriptions/s2/e", Status::Noncompliant, ""),
                result(
                    "p2",
                    "/subscriptions/s2/w",
                    Status::Waived,
                    "waived: ok (approved by x)",
                ),
            ],
            &["p1", "p2"],
        )
    }

    /// `tests`, `failures`, `errors`, `skipped`.
    fn counts<'a>(node: Node<'a, '_>) -> [&'a str; 4] {
        ["tests", "failures", "errors", "skipped"].map(|a| node.attribute(a).unwrap_or("missing"))
    }

    fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Node<'a, 'i> {
        node.children()
            .find(|n| n.has_tag_name(name))
            .unwrap_or_else(|| panic!("no <{name}>"))
    }

    #[test]
    fn is_valid_xml_with_the_counts() {
        let xml = render_test_junit(&report(), &ctx());
        let doc = Document::parse(&xml).expect("valid XML");
        let root = doc.root_element();
        assert!(root.has_tag_name("testsuites"));
        assert_eq!(counts(root), ["7", "2", "1", "3"]);
        let suites: Vec<Node> = root.children().filter(|n| n.is_element()).collect();
        let names: Vec<&str> = suites
            .iter()
            .map(|s| s.attribute("name").unwrap())
            .collect();
        assert_eq!(names, ["p1", "empty", "p2"]);
        assert_eq!(counts(suites[0]), ["4", "1", "1", "1"]);
        assert_eq!(counts(suites[1]), ["0", "0", "0", "0"]);
        assert_eq!(counts(suites[2]), ["3", "1", "0", "2"]);
        assert_eq!(
            suites[0].attribute("timestamp"),
            Some("2025-06-01T10:00:00Z")
        );
        let cases: Vec<Node> = suites[0]
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 4);
        assert!(cases.iter().all(|c| c.attribute("classname") == Some("p1")));
        assert_eq!(cases[1].attribute("name"), Some("/subscriptions/s1/b&<"));
    }

    #[test]
    fn hostile_strings_survive_as_text() {
        let xml = render_test_junit(&report(), &ctx());
        let doc = Document::parse(&xml).expect("valid XML");
        let case = doc
            .descendants()
            .find(|n| n.attribute("name") == Some("/subscriptions/s1/b&<"))
            .unwrap();
        let failure = child(case, "failure");
        assert_eq!(failure.attribute("type"), Some("noncompliant"));
        assert_eq!(failure.attribute("message"), Some(CLEAN));
        let body = failure.text().unwrap();
        assert!(body.starts_with(CLEAN), "{body:?}");
        assert!(body.contains("encryption.keySource: \"Microsoft.Keyvault\""));
        assert!(body.contains("n: null"));
        // In the evidence the control characters are JSON escapes, so they arrive intact.
        assert!(body.contains(r"\u0000\u001b[31m\b"), "{body:?}");
    }

    #[test]
    fn error_skipped_waived_and_properties() {
        let xml = render_test_junit(&report(), &ctx());
        let doc = Document::parse(&xml).expect("valid XML");
        let case = |name: &str| {
            doc.descendants()
                .find(|n| n.attribute("name") == Some(name))
                .unwrap()
        };
        assert_eq!(
            child(case("/subscriptions/s1/c"), "error").attribute("message"),
            Some("az failed")
        );
        assert_eq!(
            child(case("/subscriptions/s1/master"), "skipped").attribute("message"),
            Some("system")
        );
        assert_eq!(
            child(case("/subscriptions/s2/d"), "skipped").attribute("message"),
            Some("waived: until 2026")
        );
        assert_eq!(
            child(case("/subscriptions/s2/w"), "skipped").attribute("message"),
            Some("waived: ok (approved by x)"),
            "a message that names the waiver is not prefixed again"
        );
        let unexplained = child(case("/subscriptions/s2/e"), "failure");
        assert_eq!(unexplained.attribute("message"), Some("noncompliant"));
        assert!(
            unexplained
                .text()
                .unwrap()
                .starts_with("noncompliant\nencryption.keySource")
        );
        let ok = case("/subscriptions/s1/a");
        assert!(!ok.children().any(|n| {
            ["failure", "error", "skipped"]
                .iter()
                .any(|t| n.has_tag_name(*t))
        }));
        assert!(child(ok, "system-out").text().unwrap().contains("n: null"));

        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        let props: Vec<(&str, &str)> = child(suite, "properties")
            .children()
            .filter(|n| n.is_element())
            .map(|n| (n.attribute("name").unwrap(), n.attribute("value").unwrap()))
            .collect();
        for expected in [
            ("tenant", "t-1"),
            ("user", "ops@example.com"),
            ("subscriptions", "s1, s2"),
            ("scope", "tag data-classification=critical"),
            ("control", "2.1.1.1.1"),
            ("compliantWhen", "a && b < 'c'"),
        ] {
            assert!(props.contains(&expected), "{expected:?} in {props:?}");
        }
        assert!(
            !props.iter().any(|(name, _)| *name == "azbookVersion"),
            "empty properties are left out"
        );
        let first = suite.children().find(|n| n.is_element()).unwrap();
        assert!(first.has_tag_name("properties"), "properties come first");
    }
}
