//! `azbook backout`: restore what a run changed, from its change log (ARCHITECTURE.md, "The
//! change log (journal) format").

use super::output;
use super::{Global, Prompt};
use crate::account::Account;
use crate::az::Az;
use crate::backout::{self, Changed, changed_targets};
use crate::exit::{self, Failure};
use crate::journal::{Journal, RunKind, RunLog, RunStart, StateDir, StateLock};
use crate::model::{ChangeReport, RunCommand};
use crate::playbook::{self, Playbook};
use crate::progress::Bar;
use crate::report::{ChangeFormat, ChangeView, ReportFile};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::io::Write;
use std::sync::Mutex;

pub struct BackoutOptions {
    /// The run to revert; None: the latest apply run that changed something and is not yet
    /// reverted (or every such run, with `all_unreverted`).
    pub run: Option<String>,
    /// Back out every apply run whose changes may still be in place, newest first.
    pub all_unreverted: bool,
    pub yes: bool,
    pub dry_run: bool,
    /// Restore targets whose state drifted since the change, and read a tampered log.
    pub force: bool,
    pub output: ChangeFormat,
    pub reports: Vec<ReportFile<ChangeFormat>>,
}

pub fn backout(
    global: &Global,
    options: &BackoutOptions,
    prompt: &dyn Prompt,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    output::check_report_files(&options.reports)?;
    let changing;
    let global = if options.dry_run {
        global
    } else {
        changing = super::changing(global);
        &changing
    };
    let state = StateDir::new(&global.state_dir);
    let runs = match &options.run {
        Some(id) => vec![id.clone()],
        None => change_window(&state, options.all_unreverted, err)?,
    };
    let mut code = exit::OK;
    for run_id in runs {
        match backout_run(global, options, &state, run_id, prompt, out, err)? {
            exit::NOTHING_RAN => return Ok(exit::NOTHING_RAN),
            exit::INTERRUPTED => return Ok(exit::INTERRUPTED),
            ran => code = code.max(ran),
        }
    }
    Ok(code)
}

/// The apply runs a backout without a run id undoes: the newest whose changes may still be in
/// place, or (`all`) every such run, newest first. Older ones left behind are named, so that a
/// change window's earlier runs are not forgotten.
fn change_window(state: &StateDir, all: bool, err: &mut dyn Write) -> Result<Vec<String>> {
    let unreverted = state.unreverted()?;
    if unreverted.is_empty() {
        bail!(
            "no apply run in {} has changes that are not yet backed out (azbook runs lists them; --state-dir chooses another state directory)",
            state.root().display()
        );
    }
    let ids: Vec<String> = unreverted.into_iter().map(|r| r.id).collect();
    if all {
        return Ok(ids);
    }
    if ids.len() > 1 {
        writeln!(
            err,
            "warning: older apply runs have changes that are not backed out either: {}; `azbook backout --all-unreverted` backs out every one, newest first",
            ids[1..].join(", ")
        )?;
    }
    Ok(vec![ids[0].clone()])
}

/// Backs out one apply run.
fn backout_run(
    global: &Global,
    options: &BackoutOptions,
    state: &StateDir,
    run_id: String,
    prompt: &dyn Prompt,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    let log = read_apply_run(state, &run_id, options.force, err)?;
    let start = log.start().expect("checked by read_apply_run").clone();
    let playbooks = recorded_playbooks(&log, &start)?;
    let bar = Bar::new(global.progress, global.verbose, "backing out");
    let long_step = super::long_step_announcer(global, &bar);
    let az = Az::new(global.az.clone(), Some(&bar));
    let account = signed_in_where_it_ran(&az, &start, &run_id)?;
    let made_at = log.entries.first().map(|e| e.time.clone());
    // The targets take what backout needs from the log, which is not kept through the run.
    let targets = changed_targets(log);
    if !global.quiet {
        let made = (made_at.as_deref(), start.user.as_str());
        writeln!(err, "{}", header(&run_id, made, targets.len(), &account))?;
    }
    if !options.dry_run
        && !options.yes
        && !targets.is_empty()
        && !confirmed(prompt, global.az.interrupt, &run_id, targets.len())?
    {
        writeln!(err, "nothing changed")?;
        return Ok(exit::NOTHING_RAN);
    }
    let work = pair_with_playbooks(&run_id, targets, &playbooks)?;
    let mut lock = None;
    let journal = if options.dry_run {
        None
    } else {
        let held = lock.insert(state.lock()?);
        az.share_with_children(held.raw_fd());
        Some(Mutex::new(open_backout_run(
            held,
            global,
            &start,
            &account,
            &run_id,
            options.force,
            &playbooks,
        )?))
    };
    let runner = super::change_runner(&az, journal.as_ref(), &long_step);
    let (changes, stopped) = backout::execute(&runner, work, global.jobs, options.force, &bar);
    bar.finish();
    let own_run = journal.as_ref().map(|j| {
        j.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .run_id()
            .to_string()
    });
    let report = ChangeReport::new(own_run.clone(), changes, Vec::new());
    let incomplete = stopped.is_some() || report.has_failures();
    let logged = runner.end(&report, stopped.is_some());
    drop(lock);
    let printed = report_backout(
        global,
        options,
        (&account, &start, &playbooks),
        &report,
        (&run_id, stopped.as_deref(), incomplete),
        out,
        err,
    );
    after_changes(&report, &run_id, logged, printed, err)?;
    super::report_usage(global, err)?;
    Ok(if runner.interrupted() {
        exit::INTERRUPTED
    } else if incomplete {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

/// Once restores were attempted, a failure of the run-end or of a report exits 3, after saying
/// how far the backout got.
fn after_changes(
    report: &ChangeReport,
    run_id: &str,
    logged: Result<()>,
    printed: Result<()>,
    err: &mut dyn Write,
) -> Result<()> {
    if report.run.is_none() {
        // A dry run changed nothing: its failures are failures before any change.
        return logged.and(printed);
    }
    if logged.is_err() || printed.is_err() {
        writeln!(
            err,
            "{} target(s) of run {run_id} were restored before this failure; `azbook backout {run_id}` again goes on with the rest",
            report.summary.restored
        )?;
    }
    logged.map_err(Failure::after_changes)?;
    printed.map_err(Failure::after_changes)
}

/// The first line of a backout: which run, made when and by whom, as whom it is undone.
fn header(
    run_id: &str,
    (made_at, by): (Option<&str>, &str),
    targets: usize,
    account: &Account,
) -> String {
    crate::report::one_line(&format!(
        "azbook backout of run {run_id} (made {} by {by}): {targets} changed target(s), newest first, signed in as {}",
        made_at.unwrap_or("?"),
        account.user
    ))
}

/// The results of a backout, and what is left to look at.
fn report_backout(
    global: &Global,
    options: &BackoutOptions,
    (account, start, playbooks): (&Account, &RunStart, &[Playbook]),
    report: &ChangeReport,
    (run_id, stopped, incomplete): (&str, Option<&str>, bool),
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let ctx = output::context(
        RunCommand::Backout,
        account,
        &start.subscriptions,
        playbooks,
        &super::Selection::default(),
        report.run.clone(),
    );
    let view = if options.dry_run {
        ChangeView::Plan
    } else {
        ChangeView::Results
    };
    output::emit_changes(
        out,
        (options.output, view),
        global.colour,
        &options.reports,
        report,
        &ctx,
    )?;
    if let Some(reason) = stopped {
        writeln!(
            err,
            "backout stopped starting new restores: {reason}; `azbook backout {run_id}` again goes on with the rest"
        )?;
    }
    if !global.quiet {
        if let Some(id) = &report.run {
            writeln!(err, "backout run {id}: {}", report.summary_text())?;
        }
        if incomplete {
            writeln!(
                err,
                "some targets were not restored: see the details above, and `azbook log {run_id}`"
            )?;
        }
    }
    Ok(())
}

/// The run to back out (the latest apply run unless one is named), read and checked: an
/// altered log is refused unless `--force`, and only apply runs are backed out.
fn read_apply_run(
    state: &StateDir,
    run_id: &str,
    force: bool,
    err: &mut dyn Write,
) -> Result<RunLog> {
    let log = state.read_run(run_id)?;
    for warning in &log.warnings {
        writeln!(err, "warning: {warning}")?;
    }
    if let Some(tampered) = &log.tampered {
        if !force {
            bail!(
                "the change log of run {run_id} was altered ({tampered}); azbook will not act on it. Check it with `azbook log {run_id}`; --force backs out from the records before the alteration"
            );
        }
        writeln!(
            err,
            "warning: the change log was altered ({tampered}); using its readable records, as --force asks (those after the alteration cannot be verified)"
        )?;
    }
    let start = log
        .start()
        .with_context(|| format!("run {run_id} has no readable run-start record"))?;
    if start.kind != RunKind::Apply {
        bail!(
            "run {run_id} is a {:?} run; back out the apply run it reverted instead (see azbook runs)",
            start.kind
        );
    }
    Ok(log)
}

/// The playbooks as they were when the change was made, from the run's own copies.
fn recorded_playbooks(log: &RunLog, start: &RunStart) -> Result<Vec<Playbook>> {
    let mut playbooks = Vec::new();
    for p in &start.playbooks {
        let source = log.playbook_source(&p.id)?;
        let path = format!("{}/playbooks/{}.toml", log.dir.display(), p.id);
        playbooks.push(playbook::parse(&path, &source, &p.origin).map_err(anyhow::Error::new)?);
    }
    Ok(playbooks)
}

/// Backout acts only where the run acted: the same tenant, and subscriptions the signed-in
/// identity can see.
fn signed_in_where_it_ran(az: &Az, start: &RunStart, run_id: &str) -> Result<Account> {
    let (account, visible) = super::signed_in_with_visible_subscriptions(az)?;
    if !account.tenant_id.eq_ignore_ascii_case(&start.tenant_id) {
        bail!(
            "run {run_id} changed tenant {}, but az is signed in to tenant {}: sign in to that tenant (az login --tenant {}) and run backout again",
            start.tenant_id,
            account.tenant_id,
            start.tenant_id
        );
    }
    for sub in &start.subscriptions {
        if !visible.iter().any(|v| v.eq_ignore_ascii_case(sub)) {
            bail!(
                "run {run_id} changed subscription {sub}, which the signed-in identity ({}) cannot see",
                account.user
            );
        }
    }
    Ok(account)
}

fn confirmed(
    prompt: &dyn Prompt,
    interrupt: crate::interrupt::Interrupt,
    run_id: &str,
    targets: usize,
) -> Result<bool> {
    if !prompt.interactive() {
        bail!(
            "backout changes Azure resources and needs confirmation: check with `azbook backout --dry-run`, then run again with --yes"
        );
    }
    let _asking = interrupt.asking();
    Ok(prompt.confirm(&format!(
        "Back out run {run_id}: restore {targets} target(s)? [y/N] "
    )))
}

/// Each target with the playbook that changed it.
fn pair_with_playbooks<'p>(
    run_id: &str,
    targets: Vec<Changed>,
    playbooks: &'p [Playbook],
) -> Result<Vec<(&'p Playbook, Changed)>> {
    targets
        .into_iter()
        .map(
            |target| match playbooks.iter().find(|p| p.id == target.playbook) {
                Some(p) => Ok((p, target)),
                None => bail!(
                    "run {run_id} changed {} with playbook {}, which its run-start does not list",
                    target.resource,
                    target.playbook
                ),
            },
        )
        .collect()
}

/// The backout's own run in the change log, naming the run it reverts.
fn open_backout_run(
    lock: &StateLock,
    global: &Global,
    start: &RunStart,
    account: &Account,
    run_id: &str,
    force: bool,
    playbooks: &[Playbook],
) -> Result<Journal> {
    let run_start = RunStart {
        run_id: String::new(),
        kind: RunKind::Backout,
        azbook_version: env!("CARGO_PKG_VERSION").into(),
        az_version: None,
        tenant_id: account.tenant_id.clone(),
        user: account.user.clone(),
        subscriptions: start.subscriptions.clone(),
        playbooks: start.playbooks.clone(),
        command_line: global.command_line.clone(),
        scope: json!({"reverts": run_id, "force": force}),
        reverts: Some(run_id.to_string()),
    };
    let sources: Vec<(String, String)> = playbooks
        .iter()
        .map(|p| (p.id.clone(), p.source.clone()))
        .collect();
    lock.create_run(run_start, &sources)
}
