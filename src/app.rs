//! The commands, as functions of plain option structs: no clap, no environment, no globals, so
//! that each is testable without a process. People's prose goes to `err`, results to `out`.

use crate::az::{Az, AzConfig, AzError};
use crate::discover::Filters;
use crate::evaluate::{self, RunOptions};
use crate::exit;
use crate::playbook::{self, Playbook};
use crate::progress::Bar;
use crate::report::{self, PlaybookInfo, TestReport};
use crate::session;
use anyhow::{Context, Result, anyhow};
use std::io::Write;
use std::time::Instant;

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
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

pub struct TestOptions {
    pub selection: Selection,
    pub output: Format,
}

/// `azbook list`: the playbooks available (built-in, plus any files named).
pub fn list(playbooks: &[String], output: Format, out: &mut dyn Write) -> Result<i32> {
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
            origin: p.origin.clone(),
        })
        .collect();
    match output {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&infos)?)?,
        Format::Table => write!(out, "{}", report::render_playbook_list(&infos))?,
    }
    Ok(exit::OK)
}

/// A condition that stops a run before or during it, said once with what to do next.
fn fatal(error: AzError) -> anyhow::Error {
    anyhow!("{error}\n  hint: {}", error.hint())
}

/// `azbook test`: audit every target, print the results, exit by what was found.
pub fn test(
    global: &Global,
    options: &TestOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    let started = Instant::now();
    let playbooks = playbook::select(&options.selection.playbooks)?;
    let bar = Bar::new(global.progress, global.verbose, "testing");
    let az = Az::new(global.az.clone(), Some(&bar));
    let account = session::current_account(&az).map_err(fatal)?;
    let subscriptions = resolve_subscriptions(&az, &options.selection, &account)?;
    if !global.quiet {
        writeln!(
            err,
            "{}",
            scope_line(
                "test",
                &playbooks,
                &subscriptions,
                &account,
                &options.selection
            )
        )?;
    }
    let run = RunOptions {
        playbooks: &playbooks,
        subscriptions: &subscriptions,
        filters: &options.selection.filters,
        jobs: global.jobs,
    };
    let outcomes = evaluate::assess(&az, &run, &bar);
    bar.finish();
    let outcomes = outcomes.map_err(fatal)?;
    let order: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
    let report = TestReport::new(outcomes.iter().map(|o| o.to_result()).collect(), &order);
    match options.output {
        Format::Json => out.write_all(report.to_json().as_bytes())?,
        Format::Table => {
            out.write_all(report::render_test_table(&report, global.colour).as_bytes())?
        }
    }
    out.flush().context("writing the results")?;
    let s = &report.summary;
    if !global.quiet {
        writeln!(
            err,
            "{} results: {} compliant, {} noncompliant, {} error, {} skipped ({} az calls, {:.1}s)",
            report.results.len(),
            s.compliant,
            s.noncompliant,
            s.error,
            s.skipped,
            az.calls_made(),
            started.elapsed().as_secs_f64()
        )?;
    }
    Ok(if s.error > 0 {
        exit::INCOMPLETE
    } else if s.noncompliant > 0 {
        exit::NONCOMPLIANT
    } else {
        exit::OK
    })
}

fn resolve_subscriptions(
    az: &Az,
    selection: &Selection,
    account: &session::Account,
) -> Result<Vec<String>> {
    if selection.all_subscriptions {
        let subs = session::enabled_subscriptions(az).map_err(fatal)?;
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

/// The first line of every run: what it covers, as whom. It goes in logs and change tickets.
fn scope_line(
    command: &str,
    playbooks: &[Playbook],
    subscriptions: &[String],
    account: &session::Account,
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
    let f = &selection.filters;
    let mut filters = Vec::new();
    if let Some(rg) = &f.resource_group {
        filters.push(format!("resource group {rg}"));
    }
    for (k, v) in &f.tags {
        filters.push(format!("tag {k}={v}"));
    }
    for n in &f.names {
        filters.push(format!("name {}", n.as_str()));
    }
    for n in &f.excludes {
        filters.push(format!("excluding {}", n.as_str()));
    }
    let filters = if filters.is_empty() {
        String::new()
    } else {
        format!("; {}", filters.join(", "))
    };
    format!(
        "azbook {command}: {} in {subs}, signed in as {} (tenant {}){filters}",
        ids.join(", "),
        account.user,
        account.tenant_id
    )
}
