//! `azbook list` and `azbook test`.

use super::output;
use super::{Global, Selection, start_session};
use crate::evaluate::KeepTargets;
use crate::exit;
use crate::model::{
    self, PlaybookDoc, PlaybookInfo, ReportContext, RunCommand, TestContext, TestReport,
};
use crate::playbook;
use crate::progress::Bar;
use crate::report::{self, ListFormat, ReportFile, TestFormat};
use anyhow::Result;
use std::io::Write;
use std::time::Instant;

pub struct TestOptions {
    pub selection: Selection,
    pub output: TestFormat,
    /// `--report FILE`s, each written atomically.
    pub reports: Vec<ReportFile<TestFormat>>,
    /// Write, per resource, the calls and raw output behind its verdict, with a manifest.
    pub evidence_dir: Option<std::path::PathBuf>,
}

/// `azbook list`: the playbooks available (built-in, plus any files named).
pub fn list(playbooks: &[String], output: ListFormat, out: &mut dyn Write) -> Result<i32> {
    let selected = if playbooks.is_empty() {
        playbook::builtin()
    } else {
        playbook::select(playbooks)?
    };
    let infos: Vec<PlaybookInfo> = selected
        .iter()
        .map(|p| PlaybookInfo {
            id: p.id.clone(),
            title: p.title.clone(),
            resource_type: p.resource_type.clone(),
            control: match &p.control.benchmark {
                Some(b) => format!("{} {}", b, p.control.id),
                None => p.control.id.clone(),
            },
            level: p.control.level,
            origin: p.origin.clone(),
        })
        .collect();
    match output {
        ListFormat::Json => output::print(out, &(serde_json::to_string_pretty(&infos)? + "\n"))?,
        ListFormat::Table => output::print(out, &report::render_playbook_list(&infos))?,
    }
    Ok(exit::OK)
}

/// `azbook test`: audit every target, print the results, exit by what was found.
pub fn test(
    global: &Global,
    options: &TestOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    let started = Instant::now();
    output::check_report_files(&options.reports)?;
    let bar = Bar::new(global.progress, global.verbose, "testing");
    let session = start_session(global, &options.selection, &bar, RunCommand::Test, err)?;
    // Evidence needs every target's calls; a plain test needs only the results.
    let evidence = options.evidence_dir.is_some();
    let keep = if evidence {
        KeepTargets::All
    } else {
        KeepTargets::None
    };
    let outcomes = session.assess(global, &options.selection, &bar, evidence, keep, err)?;
    let playbooks = &session.playbooks;
    let az = &session.az;
    let order: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
    let mut report = TestReport::new(outcomes.iter().map(|o| o.to_result()).collect(), &order);
    let ctx = session.report_context(RunCommand::Test, &options.selection, None);
    report.context = Some(TestContext {
        tenant_id: ctx.tenant_id.clone(),
        user: ctx.user.clone(),
        subscriptions: ctx.subscriptions.clone(),
        generated_at: ctx.generated_at.clone(),
    });
    if let Some(dir) = &options.evidence_dir {
        let files = super::evidence::write(dir, &outcomes, &ctx)?;
        if !global.quiet {
            writeln!(
                err,
                "evidence: {files} files and manifest.json in {}",
                dir.display()
            )?;
        }
    }
    output::emit_test(
        out,
        options.output,
        global.colour,
        &options.reports,
        &report,
        &ctx,
    )?;
    let s = &report.summary;
    if !global.quiet {
        writeln!(
            err,
            "{} results: {} compliant, {} noncompliant, {} error, {} skipped, {} waived ({} az calls, {:.1}s)",
            report.results.len(),
            s.compliant,
            s.noncompliant,
            s.error,
            s.skipped,
            s.waived,
            az.calls_made(),
            started.elapsed().as_secs_f64()
        )?;
    }
    super::report_usage(global, err)?;
    if az.stopped_by_signal() {
        writeln!(
            err,
            "interrupted: the results above are those read before the signal; the rest say `interrupted`"
        )?;
        return Ok(exit::INTERRUPTED);
    }
    Ok(if s.error > 0 {
        exit::INCOMPLETE
    } else if s.noncompliant > 0 {
        exit::NONCOMPLIANT
    } else {
        exit::OK
    })
}

/// `azbook report merge`: the JSON reports of runs sharded by subscription, as one report.
pub fn merge_reports(
    files: &[std::path::PathBuf],
    format: TestFormat,
    reports: &[ReportFile<TestFormat>],
    colour: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    output::check_report_files(reports)?;
    let mut inputs = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let report: TestReport = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is not an azbook test report (`azbook test --output json`): {e}",
                path.display()
            )
        })?;
        inputs.push((path.display().to_string(), report));
    }
    let merged = model::merge_test_reports(inputs).map_err(anyhow::Error::msg)?;
    let playbooks = playbook::builtin();
    let shards = merged.context.clone().unwrap_or_default();
    let ctx = ReportContext {
        command: Some(RunCommand::Test),
        generated_at: crate::timefmt::now_rfc3339(),
        azbook_version: env!("CARGO_PKG_VERSION").into(),
        tenant_id: shards.tenant_id,
        user: shards.user,
        subscriptions: shards.subscriptions,
        scope: vec![format!("merged from {} shard report(s)", files.len())],
        playbooks: playbooks.iter().map(PlaybookDoc::from_playbook).collect(),
        ..Default::default()
    };
    output::emit_test(out, format, colour, reports, &merged, &ctx)?;
    let s = &merged.summary;
    Ok(if s.error > 0 {
        exit::INCOMPLETE
    } else if s.noncompliant > 0 {
        exit::NONCOMPLIANT
    } else {
        exit::OK
    })
}
