//! `azbook backout`: restore what a run changed, from its change log (DESIGN section 4).

use super::output;
use super::{Global, Prompt, fatal};
use crate::az::Az;
use crate::backout::{Reverter, changed_targets};
use crate::evaluate::Progress;
use crate::exit;
use crate::journal::{Record, RunEnd, RunEndStatus, RunKind, RunStart, StateDir};
use crate::model::{Change, ChangeReport, ChangeStatus};
use crate::playbook::{self, Playbook};
use crate::progress::Bar;
use crate::report::{ChangeFormat, ChangeView, ReportFile};
use crate::session;
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::io::Write;
use std::sync::Mutex;

pub struct BackoutOptions {
    /// The run to revert; None: the latest apply run.
    pub run: Option<String>,
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
    let state = StateDir::new(&global.state_dir);
    let run_id = match &options.run {
        Some(id) => id.clone(),
        None => state.latest(RunKind::Apply)?.with_context(|| {
            format!("there is no apply run in {} to back out (see azbook runs; --state-dir chooses another state directory)", state.root().display())
        })?,
    };
    let log = state.read_run(&run_id)?;
    for warning in &log.warnings {
        writeln!(err, "warning: {warning}")?;
    }
    if let Some(tampered) = &log.tampered {
        if !options.force {
            bail!(
                "the change log of run {run_id} was altered ({tampered}); azbook will not act on it. Check it with `azbook log {run_id}`; --force backs out from the records before the alteration"
            );
        }
        writeln!(
            err,
            "warning: the change log was altered ({tampered}); using the records before it, as --force asks"
        )?;
    }
    let start = log
        .start()
        .with_context(|| format!("run {run_id} has no readable run-start record"))?
        .clone();
    if start.kind != RunKind::Apply {
        bail!(
            "run {run_id} is a {:?} run; back out the apply run it reverted instead (see azbook runs)",
            start.kind
        );
    }
    // The playbooks as they were when the change was made.
    let mut playbooks: Vec<Playbook> = Vec::new();
    for p in &start.playbooks {
        let source = log.playbook_source(&p.id)?;
        playbooks.push(
            playbook::parse(
                &format!("{}/playbooks/{}.toml", log.dir.display(), p.id),
                &source,
                &p.origin,
            )
            .map_err(anyhow::Error::new)?,
        );
    }
    let bar = Bar::new(global.progress, global.verbose, "backing out");
    let az = Az::new(global.az.clone(), Some(&bar));
    let (account, listed) = session::account_and_subscriptions(&az, true);
    let account = account.map_err(fatal)?;
    if !account.tenant_id.eq_ignore_ascii_case(&start.tenant_id) {
        bail!(
            "run {run_id} changed tenant {}, but az is signed in to tenant {}: sign in to that tenant (az login --tenant {}) and run backout again",
            start.tenant_id,
            account.tenant_id,
            start.tenant_id
        );
    }
    let visible: Vec<String> = listed
        .unwrap_or_else(|| session::enabled_subscriptions(&az))
        .map_err(fatal)?
        .into_iter()
        .map(|s| s.id)
        .collect();
    for sub in &start.subscriptions {
        if !visible.iter().any(|v| v.eq_ignore_ascii_case(sub)) {
            bail!(
                "run {run_id} changed subscription {sub}, which the signed-in identity ({}) cannot see",
                account.user
            );
        }
    }
    let made_at = log.entries.first().map(|e| e.time.clone());
    // The targets take what backout needs from the log, which is not kept through the run.
    let targets = changed_targets(log);
    if !global.quiet {
        writeln!(
            err,
            "azbook backout of run {run_id} (made {} by {}): {} changed target(s), newest first, signed in as {}",
            made_at.as_deref().unwrap_or("?"),
            start.user,
            targets.len(),
            account.user
        )?;
    }
    if !options.dry_run && !options.yes && !targets.is_empty() {
        if !prompt.interactive() {
            bail!(
                "backout changes Azure resources and needs confirmation: check with `azbook backout --dry-run`, then run again with --yes"
            );
        }
        if !prompt.confirm(&format!(
            "Back out run {run_id}: restore {} target(s)? [y/N] ",
            targets.len()
        )) {
            writeln!(err, "nothing changed")?;
            return Ok(exit::NOTHING_RAN);
        }
    }
    let lock;
    let journal = if options.dry_run {
        None
    } else {
        lock = state.lock()?;
        az.share_with_children(lock.raw_fd());
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
            scope: json!({"reverts": run_id, "force": options.force}),
            reverts: Some(run_id.clone()),
        };
        let sources: Vec<(String, String)> = playbooks
            .iter()
            .map(|p| (p.id.clone(), p.source.clone()))
            .collect();
        Some(Mutex::new(lock.create_run(run_start, &sources)?))
    };
    let reverter = Reverter {
        az: &az,
        journal: journal.as_ref(),
        force: options.force,
    };
    let mut work = Vec::new();
    for target in targets {
        let Some(p) = playbooks.iter().find(|p| p.id == target.playbook) else {
            bail!(
                "run {run_id} changed {} with playbook {}, which its run-start does not list",
                target.resource,
                target.playbook
            );
        };
        work.push((p, target));
    }
    // Targets are independent resources: they are restored `--jobs` at a time, the newest
    // change starting first (the scheduler runs the last job spawned first); a target's own
    // steps run in order inside its job.
    let slots: Vec<std::sync::Mutex<Option<Change>>> =
        work.iter().map(|_| std::sync::Mutex::new(None)).collect();
    bar.found(work.len() as u64);
    crate::scheduler::run(global.jobs, |spawner| {
        // Each job owns its target, so that what the log said of it is freed once restored.
        for ((p, target), slot) in work.into_iter().zip(&slots).rev() {
            let reverter = &reverter;
            let bar = &bar;
            spawner.spawn(move |_| {
                *slot.lock().expect("backout slot") = Some(reverter.revert(p, &target));
                bar.assessed();
            });
        }
    });
    let changes: Vec<Change> = slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .expect("backout slot")
                .expect("every target ran")
        })
        .collect();
    bar.finish();
    let own_run = journal
        .as_ref()
        .map(|j| j.lock().expect("journal lock").run_id().to_string());
    let report = ChangeReport::new(own_run.clone(), changes, Vec::new());
    let incomplete = report
        .changes
        .iter()
        .any(|c| matches!(c.status, ChangeStatus::Failed | ChangeStatus::Drifted));
    if let Some(journal) = &journal {
        journal
            .lock()
            .expect("journal lock")
            .append(Record::RunEnd(RunEnd {
                status: if incomplete {
                    RunEndStatus::Incomplete
                } else {
                    RunEndStatus::Finished
                },
                summary: report.summary,
            }))?;
    }
    let selection = super::Selection::default();
    let ctx = output::context(
        "backout",
        &account,
        &start.subscriptions,
        &playbooks,
        &selection,
        own_run.clone(),
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
        &report,
        &ctx,
    )?;
    if !global.quiet {
        if let Some(id) = &own_run {
            writeln!(err, "backout run {id}: {}", report.summary_text())?;
        }
        if incomplete {
            writeln!(
                err,
                "some targets were not restored: see the details above, and `azbook log {run_id}`"
            )?;
        }
    }
    super::report_usage(global, err)?;
    Ok(if incomplete {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}
