//! `azbook plan` and `azbook apply` (ARCHITECTURE.md, "The data flow of apply and backout").

use super::output;
use super::plan_file;
use super::{Global, Prompt, Selection, start_session};
use crate::apply;
use crate::evaluate::KeepTargets;
use crate::exit::{self, Failure};
use crate::fsutil::write_atomic;
use crate::journal::{Journal, PlaybookRef, RunKind, RunStart, StateDir, StateLock};
use crate::model::{
    Change, ChangeReport, ChangeStatus, ReportContext, RunCommand, Status, TestResult,
};
use crate::plan::{self, PlanFile, PlanKind};
use crate::playbook::Playbook;
use crate::progress::Bar;
use crate::report::{self, ChangeFormat, ChangeView, ReportFile};
use crate::runner::INTERRUPTED;
use crate::timefmt;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub struct PlanOptions {
    pub selection: Selection,
    pub output: ChangeFormat,
    pub reports: Vec<ReportFile<ChangeFormat>>,
    /// Save the plan here, for `apply FILE`.
    pub out: Option<PathBuf>,
}

pub struct ApplyOptions {
    /// Apply exactly this saved plan instead of planning from the selection.
    pub plan_file: Option<PathBuf>,
    pub selection: Selection,
    pub output: ChangeFormat,
    pub reports: Vec<ReportFile<ChangeFormat>>,
    pub yes: bool,
    /// Plan only (`apply --dry-run` is `plan`).
    pub dry_run: bool,
    pub max_changes: usize,
    pub max_age: Duration,
    /// Run steps that delete, purge, revoke, regenerate keys or grant access.
    pub allow_destructive: bool,
}

fn playbook_refs(playbooks: &[Playbook]) -> Vec<PlaybookRef> {
    playbooks
        .iter()
        .map(|p| PlaybookRef {
            id: p.id.clone(),
            origin: p.origin.clone(),
            sha256: p.sha256(),
        })
        .collect()
}

fn scope_json(selection: &Selection) -> Value {
    let f = &selection.filters;
    json!({
        "playbooks": selection.playbooks,
        "subscriptions": selection.subscriptions,
        "allSubscriptions": selection.all_subscriptions,
        "resourceGroup": f.resource_group,
        "tags": f.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "names": f.names.iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>(),
        "excludes": f.excludes.iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>(),
    })
}

fn print_report(
    report: &ChangeReport,
    ctx: &ReportContext,
    (format, view): (ChangeFormat, ChangeView),
    files: &[ReportFile<ChangeFormat>],
    colour: bool,
    out: &mut dyn Write,
) -> Result<()> {
    output::emit_changes(out, (format, view), colour, files, report, ctx)
}

/// `azbook plan`: what `apply` would do, without changing anything.
pub fn plan(
    global: &Global,
    options: &PlanOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    output::check_report_files(&options.reports)?;
    let bar = Bar::new(global.progress, global.verbose, "planning");
    let session = start_session(global, &options.selection, &bar, RunCommand::Plan, err)?;
    let findings = session.assess(
        global,
        &options.selection,
        &bar,
        false,
        KeepTargets::Noncompliant,
        err,
    )?;
    let (mut changes, errors) = plan::from_findings(findings);
    sort_changes(&mut changes, &session.playbooks);
    let report = ChangeReport::new(None, changes, errors);
    // An interrupted plan is not the whole plan: it is shown, never saved for apply.
    let save = options
        .out
        .as_ref()
        .filter(|_| !session.az.stopped_by_signal());
    if let Some(path) = save {
        let file = PlanFile {
            schema_version: 1,
            kind: PlanKind::AzbookPlan,
            azbook_version: env!("CARGO_PKG_VERSION").into(),
            created_at: timefmt::now_rfc3339(),
            tenant_id: session.account.tenant_id.clone(),
            user: session.account.user.clone(),
            subscriptions: session.subscriptions.clone(),
            playbooks: playbook_refs(&session.playbooks),
            scope: scope_json(&options.selection),
            changes: report.changes.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file)?;
        write_atomic(path, &bytes)
            .with_context(|| format!("cannot write the plan file {}", path.display()))?;
    }
    let ctx = session.report_context(RunCommand::Plan, &options.selection, None);
    print_report(
        &report,
        &ctx,
        (options.output, ChangeView::Plan),
        &options.reports,
        global.colour,
        out,
    )?;
    if !global.quiet {
        writeln!(err, "plan: {}", report::summary_line(&report.changes))?;
        if let Some(path) = save {
            writeln!(
                err,
                "saved to {}; apply it with: azbook apply {}",
                path.display(),
                path.display()
            )?;
        }
    }
    super::report_usage(global, err)?;
    if session.az.stopped_by_signal() {
        writeln!(
            err,
            "interrupted: the plan above holds only the targets read before the signal, and was not saved"
        )?;
        return Ok(exit::INTERRUPTED);
    }
    Ok(if report.errors.is_empty() {
        exit::OK
    } else {
        exit::INCOMPLETE
    })
}

/// `azbook apply`: plan (or load a saved plan), confirm, then change with a change log.
pub fn apply(
    global: &Global,
    options: &ApplyOptions,
    prompt: &dyn Prompt,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    if options.dry_run {
        return apply_dry_run(global, options, out, err);
    }
    output::check_report_files(&options.reports)?;
    // A change run: the first Ctrl-C stops new changes and waits for the running ones.
    let global = &super::changing(global);
    // The lock first: two applies planning the same targets at once would both change them,
    // and a state directory that cannot be written must stop the run before anything changes.
    let state = StateDir::new(&global.state_dir);
    let lock = state.lock()?;
    let bar = Bar::new(global.progress, global.verbose, "planning");
    let long_step = super::long_step_announcer(global, &bar);
    let Prepared {
        session,
        changes,
        errors,
        recheck,
        scope,
    } = prepare(global, options, &bar, err)?;
    let actionable = changes.iter().filter(|c| c.has_az_steps()).count();
    if actionable == 0 {
        return nothing_to_change(global, options, &session, changes, errors, out, err);
    }
    if actionable > options.max_changes {
        bail!(
            "this run would change {actionable} resources, more than --max-changes ({}): narrow the scope (--name, --resource-group, --tag, --playbook) to run in batches, or raise --max-changes",
            options.max_changes
        );
    }
    if !options.allow_destructive {
        refuse_destructive(&changes)?;
    }
    if !options.yes && !confirmed(global, prompt, &changes, err)? {
        writeln!(err, "nothing changed")?;
        return Ok(exit::NOTHING_RAN);
    }
    let journal = Mutex::new(open_apply_run(global, &session, &lock, scope, err)?);
    session.az.share_with_children(lock.raw_fd());
    bar.restart("applying");
    let runner = super::change_runner(&session.az, Some(&journal), &long_step);
    let (done, stopped) = apply::execute(
        &runner,
        &session.playbooks,
        changes,
        global.jobs,
        recheck,
        &bar,
    );
    bar.finish();
    let run_id = journal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .run_id()
        .to_string();
    let report = ChangeReport::new(Some(run_id), done, errors);
    let code = match () {
        _ if runner.interrupted() => exit::INTERRUPTED,
        _ if stopped.is_some() || report.has_failures() || !report.errors.is_empty() => {
            exit::INCOMPLETE
        }
        _ => exit::OK,
    };
    // The log ends properly even when the run stopped early, so that it reads as a whole story.
    let ending = Ending {
        logged: runner.end(&report, stopped.is_some()),
        stopped,
    };
    drop(lock);
    report_apply(global, options, &session, &report, ending, out, err)?;
    super::report_usage(global, err)?;
    Ok(code)
}

/// How an apply run ended: why it stopped early, if it did, and whether its run-end was logged.
struct Ending {
    stopped: Option<String>,
    logged: Result<()>,
}

/// The results of an apply run, and how to go on or undo it. Once changes were attempted, a
/// failure here (the run-end, a report file) exits 3 after saying which changes are in place.
fn report_apply(
    global: &Global,
    options: &ApplyOptions,
    session: &super::Session,
    report: &ChangeReport,
    ending: Ending,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let run_id = report.run.as_deref().unwrap_or_default();
    let ctx = session.report_context(RunCommand::Apply, &options.selection, report.run.clone());
    let printed = print_report(
        report,
        &ctx,
        (options.output, ChangeView::Results),
        &options.reports,
        global.colour,
        out,
    );
    match ending.stopped.as_deref() {
        Some(INTERRUPTED) => writeln!(
            err,
            "apply was interrupted: it started no change after the signal and recorded every one that ran.\nTo go on: `azbook apply` again does what is left; `azbook backout {run_id}` undoes what this run did."
        )?,
        Some(reason) => writeln!(
            err,
            "apply stopped starting new changes: {reason}\nTo go on: fix that, then run `azbook apply` again (it picks up what is left); `azbook backout {run_id}` undoes what this run did."
        )?,
        None => {}
    }
    if !global.quiet {
        writeln!(err, "run {run_id}: {}", report.summary_text())?;
        let attempted = report
            .changes
            .iter()
            .any(|c| matches!(c.status, ChangeStatus::Done | ChangeStatus::Failed));
        if attempted {
            writeln!(err, "to undo it: azbook backout {run_id}")?;
        } else {
            writeln!(
                err,
                "run {run_id} changed nothing: there is nothing to back out"
            )?;
        }
    }
    if ending.logged.is_err() || printed.is_err() {
        writeln!(err, "{}", in_place(report))?;
    }
    ending.logged.map_err(Failure::after_changes)?;
    printed.map_err(Failure::after_changes)
}

/// After a failure that came after the changes: which of them are in place, and how to undo them.
fn in_place(report: &ChangeReport) -> String {
    let run_id = report.run.as_deref().unwrap_or_default();
    let done: Vec<&str> = report
        .changes
        .iter()
        .filter(|c| c.status == ChangeStatus::Done)
        .map(|c| c.resource.rsplit('/').next().unwrap_or(&c.resource))
        .collect();
    let named = match done.len() {
        0 => "no change of this run is in place".to_string(),
        n if n <= 5 => format!(
            "{n} change(s) of run {run_id} are in place ({})",
            done.join(", ")
        ),
        n => format!(
            "{n} change(s) of run {run_id} are in place ({}, ...)",
            done[..5].join(", ")
        ),
    };
    format!(
        "{named}; a change that failed may be in place too (see its message): `azbook backout {run_id}` restores everything this run changed"
    )
}

/// `apply --dry-run` is `plan`; `apply FILE --dry-run` is `show FILE`.
fn apply_dry_run(
    global: &Global,
    options: &ApplyOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    if let Some(path) = &options.plan_file {
        let show_options = ShowOptions {
            plan_file: path.clone(),
            output: options.output,
            reports: options.reports.clone(),
            max_age: options.max_age,
        };
        return show(global, &show_options, out, err);
    }
    let plan_options = PlanOptions {
        selection: options.selection.clone(),
        output: options.output,
        reports: options.reports.clone(),
        out: None,
    };
    plan(global, &plan_options, out, err)
}

pub struct ShowOptions {
    pub plan_file: PathBuf,
    pub output: ChangeFormat,
    pub reports: Vec<ReportFile<ChangeFormat>>,
    pub max_age: Duration,
}

/// `azbook show FILE`: a saved plan, checked exactly as `apply FILE` checks it (tenant,
/// subscriptions, playbooks, age, every field re-derived, scope) and rendered as a plan, so that
/// a person can read what they approve. Nothing is changed and no target is read: whether each
/// target still holds its recorded state is decided when the plan is applied.
pub fn show(
    global: &Global,
    options: &ShowOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    output::check_report_files(&options.reports)?;
    let bar = Bar::new(global.progress, global.verbose, "checking");
    let path = &options.plan_file;
    let prepared = from_plan_file(global, (RunCommand::Plan, options.max_age), path, &bar, err)?;
    bar.finish();
    let Prepared {
        session,
        changes,
        errors,
        ..
    } = set_waived_aside(prepared);
    let report = ChangeReport::new(None, changes, errors);
    let ctx = session.report_context(RunCommand::Plan, &Selection::default(), None);
    print_report(
        &report,
        &ctx,
        (options.output, ChangeView::Plan),
        &options.reports,
        global.colour,
        out,
    )?;
    if !global.quiet {
        writeln!(
            err,
            "plan {} is valid here and now: {}; apply it with: azbook apply {}",
            path.display(),
            report::summary_line(&report.changes),
            path.display()
        )?;
    }
    Ok(exit::OK)
}

/// What apply is about to change, and where it came from.
struct Prepared<'b> {
    session: super::Session<'b>,
    changes: Vec<Change>,
    /// Targets no change is derived for: errors, and (after `set_waived_aside`) waived ones.
    errors: Vec<TestResult>,
    /// A saved plan's targets are read again first, and skipped as drifted if they moved.
    recheck: bool,
    /// What the change log records as the run's scope.
    scope: Value,
}

/// What apply will change: a saved plan, checked, or a plan made now from the filters; waived
/// targets set aside either way.
fn prepare<'b>(
    global: &Global,
    options: &ApplyOptions,
    bar: &'b Bar,
    err: &mut dyn Write,
) -> Result<Prepared<'b>> {
    let prepared = match &options.plan_file {
        Some(path) => from_plan_file(global, (RunCommand::Apply, options.max_age), path, bar, err)?,
        None => from_filters(global, options, bar, err)?,
    };
    bar.finish();
    Ok(set_waived_aside(prepared))
}

/// The changes of a saved plan, after checking that it belongs here, now, with these playbooks.
fn from_plan_file<'b>(
    global: &Global,
    (command, max_age): (RunCommand, Duration),
    path: &Path,
    bar: &'b Bar,
    err: &mut dyn Write,
) -> Result<Prepared<'b>> {
    let (file, digest) = plan_file::read(path)?;
    let playbooks = plan_file::playbooks(&file)?;
    // Before any az call: a waiver for an unknown playbook stops the run here.
    let waivers = global.waivers(&playbooks)?;
    let az = crate::az::Az::new(global.az.clone(), Some(bar));
    let (account, visible) = super::signed_in_with_visible_subscriptions(&az)?;
    plan_file::check(&file, &account, &visible, &playbooks, max_age)?;
    if !global.quiet {
        let scope = super::scope_line(
            command,
            &playbooks,
            &file.subscriptions,
            &account,
            &Selection::default(),
            &waivers,
        );
        writeln!(
            err,
            "{scope} (plan {} sha256 {digest}, made {} by {})",
            path.display(),
            file.created_at,
            file.user
        )?;
    }
    for warning in waivers.expiry_warnings() {
        writeln!(err, "warning: {warning}")?;
    }
    let scope = json!({"planFile": path.display().to_string(), "planSha256": digest,
                       "planCreatedAt": file.created_at, "planScope": file.scope});
    let session = super::Session {
        waivers,
        az,
        account,
        subscriptions: file.subscriptions.clone(),
        playbooks,
        plan_sha256: Some(digest),
    };
    Ok(Prepared {
        session,
        changes: file.changes,
        errors: Vec::new(),
        recheck: true,
        scope,
    })
}

/// The changes planned now from the filters.
fn from_filters<'b>(
    global: &Global,
    options: &ApplyOptions,
    bar: &'b Bar,
    err: &mut dyn Write,
) -> Result<Prepared<'b>> {
    let session = start_session(global, &options.selection, bar, RunCommand::Apply, err)?;
    let findings = session.assess(
        global,
        &options.selection,
        bar,
        false,
        KeepTargets::Noncompliant,
        err,
    )?;
    let (mut changes, errors) = plan::from_findings(findings);
    sort_changes(&mut changes, &session.playbooks);
    Ok(Prepared {
        session,
        changes,
        errors,
        recheck: false,
        scope: scope_json(&options.selection),
    })
}

/// A waiver made after a plan was saved still holds: a waived target is never changed.
fn set_waived_aside(prepared: Prepared) -> Prepared {
    let Prepared {
        session,
        changes,
        mut errors,
        recheck,
        scope,
    } = prepared;
    let (changes, waived): (Vec<Change>, Vec<Change>) = changes
        .into_iter()
        .partition(|c| session.waivers.find(&c.playbook, &c.resource).is_none());
    errors.extend(waived.iter().map(|c| {
        TestResult {
            playbook: c.playbook.clone(),
            resource: c.resource.clone(),
            status: Status::Waived,
            evidence: Default::default(),
            message: session
                .waivers
                .find(&c.playbook, &c.resource)
                .map(|w| w.describe())
                .unwrap_or_default(),
        }
    }));
    Prepared {
        session,
        changes,
        errors,
        recheck,
        scope,
    }
}

/// Nothing azbook can change: the report says why (errors, waivers, manual steps only).
fn nothing_to_change(
    global: &Global,
    options: &ApplyOptions,
    session: &super::Session,
    changes: Vec<Change>,
    errors: Vec<TestResult>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    let report = ChangeReport::new(None, changes, errors);
    let ctx = session.report_context(RunCommand::Apply, &options.selection, None);
    print_report(
        &report,
        &ctx,
        (options.output, ChangeView::Results),
        &options.reports,
        global.colour,
        out,
    )?;
    if !global.quiet {
        writeln!(err, "nothing for azbook to change")?;
    }
    Ok(if report.errors.is_empty() {
        exit::OK
    } else {
        exit::INCOMPLETE
    })
}

/// A plan that holds steps which delete, purge, revoke, regenerate keys or grant access runs only
/// when the operator said so with `--allow-destructive`: checked before confirmation, so that
/// neither `--yes` nor a hasty answer at the prompt lets one through, and before any change.
fn refuse_destructive(changes: &[Change]) -> Result<()> {
    let steps: Vec<String> = changes
        .iter()
        .flat_map(|c| {
            let resource = c.resource.rsplit('/').next().unwrap_or(&c.resource);
            c.destructive_steps().map(move |(step, what)| {
                let command: Vec<&str> = step
                    .argv
                    .iter()
                    .map(String::as_str)
                    .take_while(|w| !w.starts_with('-'))
                    .collect();
                format!(
                    "{} on {resource} ({}: `{}` {what})",
                    crate::report::one_line(&step.name),
                    crate::report::one_line(&c.playbook),
                    crate::report::one_line(&command.join(" "))
                )
            })
        })
        .collect();
    if steps.is_empty() {
        return Ok(());
    }
    let shown = if steps.len() > 5 {
        format!("{}, and {} more", steps[..5].join("; "), steps.len() - 5)
    } else {
        steps.join("; ")
    };
    bail!(
        "this plan holds {} destructive step(s), which delete, purge, revoke, regenerate keys or grant access and cannot be undone: {shown}. Nothing was changed. Review them in `azbook plan` (marked `!! DESTRUCTIVE`), then run again with --allow-destructive to run them",
        steps.len()
    );
}

/// Asks on the terminal, after showing the plan; refuses when nobody is there to answer.
fn confirmed(
    global: &Global,
    prompt: &dyn Prompt,
    changes: &[Change],
    err: &mut dyn Write,
) -> Result<bool> {
    if !prompt.interactive() {
        bail!(
            "apply changes Azure resources and needs confirmation: review with `azbook plan`, then run again with --yes (stdin is not a terminal, so azbook cannot ask)"
        );
    }
    let preview = ChangeReport::new(None, changes.to_vec(), Vec::new());
    writeln!(err, "{}", report::render_plan(&preview, global.colour))?;
    let question = format!("Apply: {}? [y/N] ", report::summary_line(changes));
    let _asking = global.az.interrupt.asking();
    Ok(prompt.confirm(&question))
}

/// The apply run in the change log: its directory, playbook copies and `run-start`.
fn open_apply_run(
    global: &Global,
    session: &super::Session,
    lock: &StateLock,
    scope: Value,
    err: &mut dyn Write,
) -> Result<Journal> {
    let az_version = session
        .az
        .run(
            &["az".into(), "version".into()],
            None,
            crate::az::CallKind::Read,
        )
        .ok()
        .and_then(|v| v["azure-cli"].as_str().map(String::from));
    let start = RunStart {
        run_id: String::new(),
        kind: RunKind::Apply,
        azbook_version: env!("CARGO_PKG_VERSION").into(),
        az_version,
        tenant_id: session.account.tenant_id.clone(),
        user: session.account.user.clone(),
        subscriptions: session.subscriptions.clone(),
        playbooks: playbook_refs(&session.playbooks),
        command_line: global.command_line.clone(),
        scope,
        reverts: None,
    };
    let sources: Vec<(String, String)> = session
        .playbooks
        .iter()
        .map(|p| (p.id.clone(), p.source.clone()))
        .collect();
    let journal = lock.create_run(start, &sources)?;
    if !global.quiet {
        writeln!(err, "change log: {}", journal.dir().display())?;
    }
    Ok(journal)
}

/// Parses `--max-age`: `90s`, `30m`, `24h`, `2d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30m, 24h or 2d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

/// Sorts changes the way reports show them: by playbook order, then resource.
pub fn sort_changes(changes: &mut [Change], playbooks: &[Playbook]) {
    let rank = |id: &str| {
        playbooks
            .iter()
            .position(|p| p.id == id)
            .unwrap_or(usize::MAX)
    };
    changes.sort_by(|a, b| {
        rank(&a.playbook)
            .cmp(&rank(&b.playbook))
            .then_with(|| a.resource.to_lowercase().cmp(&b.resource.to_lowercase()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
    }
}
