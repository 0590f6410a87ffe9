//! The commands, as functions of plain option structs: no clap, no environment, no globals, so
//! that each is testable without a process. People's prose goes to `err`, results to `out`.

mod audit;
mod backout;
mod change;
mod evidence;
mod history;
mod output;
mod plan_file;

pub use audit::{TestOptions, list, merge_reports, test};
pub use backout::{BackoutOptions, backout};
pub use change::{ApplyOptions, PlanOptions, apply, parse_duration, plan};
pub use history::{log, runs};

use crate::account;
use crate::az::{Az, AzConfig, AzError};
use crate::discover::Filters;
use crate::evaluate::{self, Finding, KeepTargets, RunOptions};
use crate::model::{ReportContext, RunCommand, Status};
use crate::playbook::{self, Playbook};
use crate::progress::Bar;
use crate::waivers::Waivers;
use anyhow::{Result, anyhow};
use std::io::Write;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct Global {
    pub az: AzConfig,
    /// Most az processes alive at once.
    pub jobs: usize,
    pub quiet: bool,
    pub verbose: bool,
    /// Colour in tables written to `out`.
    pub colour: bool,
    /// A progress bar on stderr.
    pub progress: bool,
    /// Where change logs live: `--state-dir` or `AZBOOK_STATE_DIR`, else an `.azbook` left in
    /// the working directory by an older azbook, else `$XDG_STATE_HOME/azbook` or
    /// `~/.local/state/azbook` (or none: the commands that need one refuse). Its `parent()` is
    /// where `azbook.toml` is looked for: beside a named (or `.azbook`) state directory, else the
    /// working directory.
    pub state_dir: crate::journal::StateLocation,
    /// The command line, recorded in every change log.
    pub command_line: Vec<String>,
    /// `--waivers FILE`; None: `azbook.toml` beside the state directory, if it exists.
    pub waivers: Option<PathBuf>,
}

impl Global {
    /// The waivers in effect: from `--waivers`, else from `azbook.toml` beside the state
    /// directory when there is one. Expired waivers are ignored with a warning.
    pub fn waivers(&self, err: &mut dyn Write) -> Result<Waivers> {
        let default = self
            .state_dir
            .parent()
            .map(|p| p.join("azbook.toml"))
            .unwrap_or_else(|| PathBuf::from("azbook.toml"));
        let path = match &self.waivers {
            Some(path) => path.clone(),
            None if default.is_file() => default,
            None => return Ok(Waivers::default()),
        };
        let waivers = Waivers::load(&path, std::time::SystemTime::now())?;
        for warning in &waivers.warnings {
            writeln!(err, "warning: {warning}")?;
        }
        Ok(waivers)
    }
}

/// Asks a person to confirm; the CLI answers from the terminal, tests answer directly.
pub trait Prompt {
    /// True only when a person is there to answer (stdin is a terminal).
    fn interactive(&self) -> bool;
    fn confirm(&self, question: &str) -> bool;
}

/// Which playbooks, subscriptions and resources a run covers.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Built-in ids or playbook files; none means every built-in playbook.
    pub playbooks: Vec<String>,
    /// None means az's current subscription.
    pub subscriptions: Vec<String>,
    pub all_subscriptions: bool,
    pub filters: Filters,
}

/// A condition that stops a run before or during it, said once with what to do next.
pub(crate) fn fatal(error: AzError) -> anyhow::Error {
    anyhow!("{error}\n  hint: {}", error.hint())
}

/// Who is signed in, and every enabled subscription they can see: what a saved plan and a
/// backout are checked against before they act.
pub(crate) fn signed_in_with_visible_subscriptions(
    az: &Az,
) -> Result<(account::Account, Vec<String>)> {
    let (signed_in, listed) = account::account_and_subscriptions(az, true);
    let signed_in = signed_in.map_err(fatal)?;
    let visible = listed
        .unwrap_or_else(|| account::enabled_subscriptions(az))
        .map_err(fatal)?
        .into_iter()
        .map(|s| s.id)
        .collect();
    Ok((signed_in, visible))
}

/// `listed`: what `az account list` gave, asked for only with `--all-subscriptions`.
fn resolve_subscriptions(
    selection: &Selection,
    account: &account::Account,
    listed: Option<account::Listed>,
) -> Result<Vec<String>> {
    if let Some(listed) = listed {
        let subs = listed.map_err(fatal)?;
        if subs.is_empty() {
            anyhow::bail!(
                "`az account list` shows no enabled subscription for the signed-in identity"
            );
        }
        return Ok(subs.into_iter().map(|s| s.id).collect());
    }
    if selection.subscriptions.is_empty() {
        return Ok(vec![account.subscription_id.clone()]);
    }
    let mut subs: Vec<String> = Vec::new();
    for s in &selection.subscriptions {
        if !subs.iter().any(|k| k.eq_ignore_ascii_case(s)) {
            subs.push(s.clone());
        }
    }
    Ok(subs)
}

/// The filters of a run as people read them: `tag data-classification=critical`.
pub(crate) fn scope_items(selection: &Selection) -> Vec<String> {
    let f = &selection.filters;
    let mut items = Vec::new();
    if let Some(rg) = &f.resource_group {
        items.push(format!("resource group {rg}"));
    }
    for (k, v) in &f.tags {
        items.push(format!("tag {k}={v}"));
    }
    for n in &f.names {
        items.push(format!("name {}", n.as_str()));
    }
    for n in &f.excludes {
        items.push(format!("excluding {}", n.as_str()));
    }
    items
}

/// The first line of every run: what it covers, as whom. It goes in logs and change tickets.
pub(crate) fn scope_line(
    command: RunCommand,
    playbooks: &[Playbook],
    subscriptions: &[String],
    account: &account::Account,
    selection: &Selection,
) -> String {
    let ids: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
    let subs = if subscriptions.len() == 1 && subscriptions[0] == account.subscription_id {
        format!(
            "subscription {} ({})",
            account.subscription_id, account.subscription_name
        )
    } else {
        format!("subscriptions {}", subscriptions.join(", "))
    };
    let filters = scope_items(selection);
    let filters = if filters.is_empty() {
        String::new()
    } else {
        format!("; {}", filters.join(", "))
    };
    format!(
        "azbook {}: {} in {subs}, signed in as {} (tenant {}){filters}",
        command.as_str(),
        ids.join(", "),
        account.user,
        account.tenant_id
    )
}

/// What every command that reads Azure starts with: the playbooks, who is signed in (once, so
/// that not being signed in is one message), the subscriptions, and the scope line.
pub(crate) struct Session<'b> {
    pub az: Az<'b>,
    pub waivers: Waivers,
    pub account: account::Account,
    pub subscriptions: Vec<String>,
    pub playbooks: Vec<Playbook>,
}

pub(crate) fn start_session<'b>(
    global: &Global,
    selection: &Selection,
    bar: &'b Bar,
    command: RunCommand,
    err: &mut dyn Write,
) -> Result<Session<'b>> {
    let playbooks = playbook::select(&selection.playbooks)?;
    let waivers = global.waivers(err)?;
    let az = Az::new(global.az.clone(), Some(bar));
    let (account, listed) = account::account_and_subscriptions(&az, selection.all_subscriptions);
    let account = account.map_err(fatal)?;
    let subscriptions = resolve_subscriptions(selection, &account, listed)?;
    if !global.quiet {
        writeln!(
            err,
            "{}",
            scope_line(command, &playbooks, &subscriptions, &account, selection)
        )?;
    }
    Ok(Session {
        az,
        waivers,
        account,
        subscriptions,
        playbooks,
    })
}

impl Session<'_> {
    /// What the reports of this run say besides their results.
    pub fn report_context(
        &self,
        command: RunCommand,
        selection: &Selection,
        run: Option<String>,
    ) -> ReportContext {
        output::context(
            command,
            &self.account,
            &self.subscriptions,
            &self.playbooks,
            selection,
            run,
        )
    }

    pub fn assess<'s>(
        &'s self,
        global: &Global,
        selection: &Selection,
        bar: &Bar,
        evidence: bool,
        keep: KeepTargets,
    ) -> Result<Vec<Finding<'s>>> {
        let run = RunOptions {
            evidence,
            keep,
            playbooks: &self.playbooks,
            subscriptions: &self.subscriptions,
            filters: &selection.filters,
            jobs: global.jobs,
        };
        let outcomes = evaluate::assess(&self.az, &run, bar);
        bar.finish();
        let mut outcomes = outcomes.map_err(fatal)?;
        for outcome in &mut outcomes {
            let verdict = matches!(
                outcome.assessment.status,
                Status::Compliant | Status::Noncompliant
            );
            if verdict && let Some(w) = self.waivers.find(&outcome.playbook.id, &outcome.resource) {
                outcome.assessment.status = Status::Waived;
                outcome.assessment.message = w.describe();
            }
        }
        Ok(outcomes)
    }
}

/// With `-v`, the last line of a run: azbook's own CPU time and peak memory, without az's.
pub(crate) fn report_usage(global: &Global, err: &mut dyn Write) -> Result<()> {
    if global.verbose
        && let Some(usage) = crate::usage::OwnUsage::now()
    {
        writeln!(err, "{}", usage.describe())?;
    }
    Ok(())
}
