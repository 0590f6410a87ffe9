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
pub use change::{ApplyOptions, PlanOptions, ShowOptions, apply, parse_duration, plan, show};
pub use history::{log, runs};
pub use output::print;

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
    /// `~/.local/state/azbook` (or none: the commands that need one refuse).
    pub state_dir: crate::journal::StateLocation,
    /// The command line, recorded in every change log.
    pub command_line: Vec<String>,
    /// `--waivers FILE` (or `AZBOOK_WAIVERS`); None: see [`Global::waivers_file`].
    pub waivers: Option<PathBuf>,
    /// The working directory: where `azbook.toml` is looked for first, and what relative
    /// `--waivers` and `--state-dir` paths start from when waivers are looked for.
    pub working_dir: PathBuf,
}

impl Global {
    /// The waivers file of this run, and how messages name it. The rule, first found wins:
    /// `--waivers FILE` (or `AZBOOK_WAIVERS`), which must exist; `azbook.toml` in the working
    /// directory; `azbook.toml` in the state directory; else none.
    pub fn waivers_file(&self) -> Result<Option<(PathBuf, String)>> {
        // Anything at the path counts (a directory or a dangling link too), so that a file
        // that is there but unreadable stops the run instead of being passed over.
        let present = |path: &PathBuf| std::fs::symlink_metadata(path).is_ok();
        if let Some(given) = &self.waivers {
            let path = self.working_dir.join(given);
            if !present(&path) {
                anyhow::bail!(
                    "the waivers file {} (--waivers or AZBOOK_WAIVERS) does not exist",
                    given.display()
                );
            }
            return Ok(Some((path, given.display().to_string())));
        }
        let here = self.working_dir.join("azbook.toml");
        if present(&here) {
            return Ok(Some((here, "./azbook.toml".to_string())));
        }
        if let Some(state) = self.state_dir.path() {
            let in_state = self.working_dir.join(state).join("azbook.toml");
            if present(&in_state) {
                let shown = state.join("azbook.toml").display().to_string();
                return Ok(Some((in_state, shown)));
            }
        }
        Ok(None)
    }

    /// The waivers of this run (see [`Global::waivers_file`]), refused when one names a
    /// playbook that is neither built in nor among `playbooks`, the ones loaded in the run.
    pub fn waivers(&self, playbooks: &[Playbook]) -> Result<Waivers> {
        let Some((path, shown)) = self.waivers_file()? else {
            return Ok(Waivers::default());
        };
        let mut waivers = Waivers::load(&path, &shown, std::time::SystemTime::now())?;
        let builtin = playbook::builtin();
        let mut known: Vec<&str> = builtin.iter().map(|p| p.id.as_str()).collect();
        for p in playbooks {
            if !known.contains(&p.id.as_str()) {
                known.push(&p.id);
            }
        }
        waivers.check_playbooks(&known)?;
        let types = builtin.iter().chain(playbooks);
        waivers.know_types(types.map(|p| (p.id.as_str(), p.resource_type.as_str())));
        Ok(waivers)
    }
}

/// The options of a run that changes Azure: the first Ctrl-C or SIGTERM stops it from starting
/// new changes and lets the running ones finish and be recorded; only a second kills az.
pub(crate) fn changing(global: &Global) -> Global {
    let mut global = global.clone();
    global.az.kill_at_signal = 2;
    global
}

/// Said on stderr when the first interrupt reaches a change run.
pub(crate) fn announce_interrupt(running: &[String]) {
    let names: Vec<&str> = running
        .iter()
        .map(|r| r.rsplit('/').next().unwrap_or(r))
        .collect();
    if names.is_empty() {
        eprintln!("interrupted: starting no new change");
    } else {
        eprintln!(
            "interrupted: starting no new change; waiting for the {} still running ({}). Ctrl-C again kills them: backout then reads their state from Azure",
            names.len(),
            names.join(", ")
        );
    }
}

/// The step runner of a change run (apply, backout): it announces interrupts and long-running
/// steps on stderr.
pub(crate) fn change_runner<'a>(
    az: &'a Az<'a>,
    journal: Option<&'a std::sync::Mutex<crate::journal::Journal>>,
    long_step: &'a crate::runner::LongStep<'a>,
) -> crate::runner::Runner<'a> {
    crate::runner::Runner::new(az, journal)
        .on_interrupt(&announce_interrupt)
        .on_long_step(long_step)
}

/// What apply and backout say when a long-running step starts (a managed instance's protector):
/// which resource, why it takes minutes, and how long azbook waits before it stops az.
pub(crate) fn long_step_announcer<'b>(
    global: &Global,
    bar: &'b Bar,
) -> impl Fn(&str, &str, &str) + Sync + use<'b> {
    let quiet = global.quiet;
    let timeout = global.az.change_timeout.as_secs();
    move |resource: &str, step: &str, why: &str| {
        if quiet {
            return;
        }
        let name = crate::report::printable(resource.rsplit('/').next().unwrap_or(resource));
        let limit = if timeout.is_multiple_of(60) {
            format!("{} min", timeout / 60)
        } else {
            format!("{timeout} s")
        };
        bar.say(&format!(
            "{name}: {step}: long-running ({why}); azbook waits up to {limit} for it (--change-timeout)"
        ));
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

/// The subscriptions a run covers, as ids, once each: with `--all-subscriptions` every enabled
/// one; else each `--subscription` value, an id or a name resolved against `listed` (what
/// `az account list` gave: asked for whenever either option is given), so that every az call
/// carries an id; else az's current one. A name that several subscriptions share stops the
/// run, naming their ids. A value that names no visible subscription is left out here:
/// [`Session::assess`] reports it as an `error` result (see [`unknown_subscriptions`]).
fn resolve_subscriptions(
    selection: &Selection,
    account: &account::Account,
    listed: Option<&[account::Subscription]>,
) -> Result<Vec<String>> {
    if selection.all_subscriptions {
        let subs = listed.unwrap_or_default();
        if subs.is_empty() {
            anyhow::bail!(
                "`az account list` shows no enabled subscription for the signed-in identity"
            );
        }
        return Ok(subs.iter().map(|s| s.id.clone()).collect());
    }
    if selection.subscriptions.is_empty() {
        return Ok(vec![account.subscription_id.clone()]);
    }
    let mut subs: Vec<String> = Vec::new();
    let mut ambiguous = Vec::new();
    for given in &selection.subscriptions {
        match account::find_named(given, listed.unwrap_or_default()) {
            account::Named::One(s) => {
                if !subs.iter().any(|k| k.eq_ignore_ascii_case(&s.id)) {
                    subs.push(s.id.clone());
                }
            }
            account::Named::None => {}
            account::Named::Several(several) => {
                let ids: Vec<&str> = several.iter().map(|s| s.id.as_str()).collect();
                ambiguous.push(format!(
                    "--subscription {given:?} names {} subscriptions: {}",
                    several.len(),
                    ids.join(", ")
                ));
            }
        }
    }
    if !ambiguous.is_empty() {
        anyhow::bail!(
            "{}\n  hint: give the subscription's id instead of its name",
            ambiguous.join("\n")
        );
    }
    Ok(subs)
}

/// The `--subscription` values that name no enabled subscription the signed-in identity can
/// see (`az account list`), each once, as given: no az call is made in them, and each is an
/// `error` result of the run.
fn unknown_subscriptions(selection: &Selection, account: &account::Account) -> Vec<String> {
    let Some(visible) = &account.visible else {
        return Vec::new();
    };
    let mut unknown: Vec<String> = Vec::new();
    for given in &selection.subscriptions {
        if account::find_named(given, visible) == account::Named::None
            && !unknown.iter().any(|u| u.eq_ignore_ascii_case(given))
        {
            unknown.push(given.clone());
        }
    }
    unknown
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
    waivers: &Waivers,
) -> String {
    let ids: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
    let name_of = |id: &str| {
        if id.eq_ignore_ascii_case(&account.subscription_id) {
            return Some(account.subscription_name.as_str());
        }
        account
            .visible
            .iter()
            .flatten()
            .find(|s| s.id.eq_ignore_ascii_case(id))
            .map(|s| s.name.as_str())
    };
    let mut shown: Vec<String> = subscriptions
        .iter()
        .map(|id| match name_of(id) {
            Some(name) if !name.is_empty() => format!("{id} ({name})"),
            _ => id.clone(),
        })
        .collect();
    shown.extend(
        unknown_subscriptions(selection, account)
            .iter()
            .map(|given| format!("{given:?} (not an enabled subscription of this identity)")),
    );
    let subs = match shown.as_slice() {
        [one] => format!("subscription {one}"),
        many => format!("subscriptions {}", many.join(", ")),
    };
    let filters = scope_items(selection);
    let filters = if filters.is_empty() {
        String::new()
    } else {
        format!("; {}", filters.join(", "))
    };
    // Names and identities come from Azure and file names from the user: the line is escaped
    // whole, so that no control or bidirectional character reaches the terminal raw.
    crate::report::one_line(&format!(
        "azbook {}: {} in {subs}, signed in as {} (tenant {}){filters}; {}",
        command.as_str(),
        ids.join(", "),
        account.user,
        account.tenant_id,
        waivers.describe_source()
    ))
}

/// What every command that reads Azure starts with: the playbooks, who is signed in (once, so
/// that not being signed in is one message), the subscriptions, and the scope line.
pub(crate) struct Session<'b> {
    pub az: Az<'b>,
    pub waivers: Waivers,
    pub account: account::Account,
    pub subscriptions: Vec<String>,
    pub playbooks: Vec<Playbook>,
    /// The sha256 of the saved plan this run applies or shows, if it does.
    pub plan_sha256: Option<String>,
}

pub(crate) fn start_session<'b>(
    global: &Global,
    selection: &Selection,
    bar: &'b Bar,
    command: RunCommand,
    err: &mut dyn Write,
) -> Result<Session<'b>> {
    let playbooks = playbook::select(&selection.playbooks)?;
    let waivers = global.waivers(&playbooks)?;
    let az = Az::new(global.az.clone(), Some(bar));
    // Names given with --subscription become ids here, once: every call then carries an id.
    let list = selection.all_subscriptions || !selection.subscriptions.is_empty();
    let (account, listed) = account::account_and_subscriptions(&az, list);
    let mut account = account.map_err(fatal)?;
    let listed = listed.transpose().map_err(fatal)?;
    let subscriptions = resolve_subscriptions(selection, &account, listed.as_deref())?;
    account.visible = listed;
    if !global.quiet {
        writeln!(
            err,
            "{}",
            scope_line(
                command,
                &playbooks,
                &subscriptions,
                &account,
                selection,
                &waivers
            )
        )?;
    }
    for warning in waivers.expiry_warnings() {
        writeln!(err, "warning: {warning}")?;
    }
    Ok(Session {
        az,
        waivers,
        account,
        subscriptions,
        playbooks,
        plan_sha256: None,
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
        let mut ctx = output::context(
            command,
            &self.account,
            &self.subscriptions,
            &self.playbooks,
            selection,
            run,
        );
        ctx.plan_sha256 = self.plan_sha256.clone();
        ctx
    }

    pub fn assess<'s>(
        &'s self,
        global: &Global,
        selection: &Selection,
        bar: &Bar,
        evidence: bool,
        keep: KeepTargets,
        err: &mut dyn Write,
    ) -> Result<Vec<Finding<'s>>> {
        let run = RunOptions {
            evidence,
            keep,
            playbooks: &self.playbooks,
            subscriptions: &self.subscriptions,
            filters: &selection.filters,
            jobs: global.jobs,
        };
        let assessed = evaluate::assess(&self.az, &run, bar);
        bar.finish();
        let assessed = assessed.map_err(fatal)?;
        let mut outcomes = assessed.findings;
        for given in unknown_subscriptions(selection, &self.account) {
            let message = format!(
                "subscription {given:?} is not among the enabled subscriptions the signed-in identity can see (`az account list`), so nothing in it was tested: check the id or name given with --subscription"
            );
            for playbook in &self.playbooks {
                outcomes.push(evaluate::scope_error(
                    playbook,
                    format!("/subscriptions/{given}"),
                    message.clone(),
                ));
            }
        }
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
        for warning in self.unmatched_waivers(&outcomes, selection) {
            writeln!(err, "warning: {warning}")?;
        }
        let searched = self
            .subscriptions
            .len()
            .saturating_sub(assessed.groups_missing);
        if let Some(warning) = nothing_left(selection, assessed.found, searched, &outcomes) {
            writeln!(err, "warning: {warning}")?;
        }
        Ok(outcomes)
    }

    /// A warning for each active waiver that matches no target this run found (compliant,
    /// noncompliant, error or skipped), among the waivers it could have used.
    fn unmatched_waivers(&self, outcomes: &[Finding], selection: &Selection) -> Vec<String> {
        let ids: Vec<&str> = self.playbooks.iter().map(|p| p.id.as_str()).collect();
        let targets = outcomes
            .iter()
            .map(|o| (o.playbook.id.as_str(), o.resource.as_str()));
        let narrowed = scope_items(selection);
        self.waivers
            .unmatched(targets, &ids, &self.subscriptions)
            .into_iter()
            .map(|w| {
                let errors = outcomes
                    .iter()
                    .filter(|o| o.assessment.status == Status::Error)
                    .filter(|o| w.playbook == "*" || w.playbook == o.playbook.id)
                    .count();
                let mut why = Vec::new();
                if !narrowed.is_empty() {
                    why.push(format!("this run is narrowed to {}", narrowed.join(", ")));
                }
                if errors > 0 {
                    why.push(format!(
                        "{errors} result(s) of its playbook are errors, so a target may not have been seen"
                    ));
                }
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", why.join("; "))
                };
                format!(
                    "{} matches no target of this run{why}: check its resource pattern `{}` and playbook `{}`",
                    w.at,
                    w.resource.as_str(),
                    w.playbook
                )
            })
            .collect()
    }
}

/// The warning for filters that leave no target, in a run that searched `searched` scopes
/// (subscriptions, less those without the `--resource-group` group, which are errors of their
/// own) and found `found` targets and skipped items. An empty result can be legitimate, so it
/// is a warning, not an error; but a CI gate must not go green on a mistyped name unnoticed.
fn nothing_left(
    selection: &Selection,
    found: usize,
    searched: usize,
    outcomes: &[Finding],
) -> Option<String> {
    let filters = scope_items(selection);
    if filters.is_empty() || found > 0 || searched == 0 {
        return None;
    }
    let errors = outcomes
        .iter()
        .filter(|o| o.assessment.status == Status::Error)
        .count();
    let why = if errors > 0 {
        format!(" ({errors} result(s) are errors, so a target may not have been seen)")
    } else {
        String::new()
    };
    Some(format!(
        "the filters of this run ({}) leave no target{why}: nothing was tested; check them if targets were expected",
        filters.join(", ")
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    const WAIVER: &str = r#"
[[waiver]]
resource = "*/storageAccounts/st1"
playbook = "storage-account-mmk"
reason = "r"
approver = "a"
expires = 2099-01-01
"#;

    fn global(dir: &std::path::Path, waivers: Option<&str>, state_dir: &str) -> Global {
        Global {
            az: AzConfig::default(),
            jobs: 1,
            quiet: false,
            verbose: false,
            colour: false,
            progress: false,
            state_dir: crate::journal::StateLocation::Named(PathBuf::from(state_dir)),
            command_line: Vec::new(),
            waivers: waivers.map(PathBuf::from),
            working_dir: dir.to_path_buf(),
        }
    }

    fn shown(global: &Global) -> Option<String> {
        global.waivers_file().unwrap().map(|(_, shown)| shown)
    }

    #[test]
    fn the_waivers_file_is_given_else_in_the_working_directory_else_in_the_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("state")).unwrap();
        assert_eq!(shown(&global(root, None, "state")), None);
        // Beside the state directory is not a place waivers are looked for.
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(outside.path().join("state")).unwrap();
        std::fs::write(outside.path().join("azbook.toml"), WAIVER).unwrap();
        let state = outside.path().join("state");
        assert_eq!(
            shown(&global(root, None, state.to_str().unwrap())),
            None,
            "azbook.toml beside the state directory is not read"
        );
        // Third: in the state directory (a relative one starts from the working directory).
        std::fs::write(root.join("state/azbook.toml"), WAIVER).unwrap();
        assert_eq!(
            shown(&global(root, None, "state")).as_deref(),
            Some("state/azbook.toml")
        );
        // Second: the working directory wins over the state directory.
        std::fs::write(root.join("azbook.toml"), WAIVER).unwrap();
        let g = global(root, None, "state");
        assert_eq!(shown(&g).as_deref(), Some("./azbook.toml"));
        assert_eq!(
            g.waivers_file().unwrap().unwrap().0,
            root.join("azbook.toml")
        );
        // First: the file named, relative to the working directory.
        std::fs::write(root.join("mine.toml"), WAIVER).unwrap();
        let g = global(root, Some("mine.toml"), "state");
        assert_eq!(shown(&g).as_deref(), Some("mine.toml"));
        assert_eq!(g.waivers_file().unwrap().unwrap().0, root.join("mine.toml"));
        // A named file that does not exist is an error, not no waivers.
        let e = global(root, Some("missing.toml"), "state")
            .waivers_file()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.toml") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn waivers_for_unknown_playbooks_stop_the_run_but_those_for_loaded_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let text = WAIVER.replace("storage-account-mmk", "custom-control");
        std::fs::write(dir.path().join("azbook.toml"), &text).unwrap();
        let g = global(dir.path(), None, ".azbook");
        let builtin = playbook::builtin();
        let e = g.waivers(&builtin).unwrap_err().to_string();
        assert!(
            e.contains("./azbook.toml:4: waiver 1 names the playbook `custom-control`"),
            "{e}"
        );
        let source = builtin
            .iter()
            .find(|p| p.id == "storage-account-mmk")
            .unwrap()
            .source
            .replacen("id = \"storage-account-mmk\"", "id = \"custom-control\"", 1);
        let custom = playbook::parse("custom.toml", &source, "custom.toml").unwrap();
        assert_eq!(custom.id, "custom-control");
        let w = g.waivers(&[custom]).unwrap();
        assert_eq!(w.active.len(), 1);
    }

    #[test]
    fn the_scope_line_says_which_waivers_file_is_in_use() {
        let account = account::Account {
            tenant_id: "T".into(),
            subscription_id: "S".into(),
            subscription_name: "Production".into(),
            user: "ops@contoso.com".into(),
            visible: None,
        };
        let playbooks = playbook::builtin();
        let line = |waivers: &Waivers| {
            scope_line(
                RunCommand::Test,
                &playbooks[..1],
                &["S".to_string()],
                &account,
                &Selection::default(),
                waivers,
            )
        };
        assert!(
            line(&Waivers::default()).ends_with("(tenant T); no waivers file"),
            "{}",
            line(&Waivers::default())
        );
        let waivers =
            Waivers::parse(WAIVER, "./azbook.toml", std::time::SystemTime::now()).unwrap();
        assert!(
            line(&waivers).ends_with("(tenant T); waivers: ./azbook.toml (1 active, 0 expired)"),
            "{}",
            line(&waivers)
        );
    }

    fn signed_in(visible: Option<&[(&str, &str)]>) -> account::Account {
        account::Account {
            tenant_id: "T".into(),
            subscription_id: "S-A".into(),
            subscription_name: "Production".into(),
            user: "ops@contoso.com".into(),
            visible: visible.map(|subs| {
                subs.iter()
                    .map(|(id, name)| account::Subscription {
                        id: id.to_string(),
                        name: name.to_string(),
                    })
                    .collect()
            }),
        }
    }

    const VISIBLE: &[(&str, &str)] = &[
        ("S-A", "Production"),
        ("S-B", "Contoso Finance"),
        ("S-C", "Shared"),
        ("S-D", "shared"),
    ];

    fn given(subscriptions: &[&str]) -> Selection {
        Selection {
            subscriptions: subscriptions.iter().map(|s| s.to_string()).collect(),
            ..Selection::default()
        }
    }

    #[test]
    fn subscription_names_become_ids_once_each_and_unknown_ones_are_left_out() {
        let account = signed_in(Some(VISIBLE));
        let listed = account.visible.clone().unwrap();
        let resolve = |selection: &Selection| {
            resolve_subscriptions(selection, &account, Some(&listed)).map_err(|e| e.to_string())
        };
        assert_eq!(
            resolve(&given(&["contoso finance", "S-B", "s-a", "nosuch"])),
            Ok(vec!["S-B".to_string(), "S-A".to_string()])
        );
        assert_eq!(
            unknown_subscriptions(&given(&["contoso finance", "nosuch", "NOSUCH"]), &account),
            ["nosuch"]
        );
        assert_eq!(resolve(&given(&[])), Ok(vec!["S-A".to_string()]));
        let all = Selection {
            all_subscriptions: true,
            ..Selection::default()
        };
        assert_eq!(resolve(&all).unwrap().len(), 4);
        let e = resolve(&given(&["Production", "SHARED"])).unwrap_err();
        assert!(
            e.starts_with("--subscription \"SHARED\" names 2 subscriptions: S-C, S-D\n"),
            "{e}"
        );
        assert_eq!(
            resolve_subscriptions(&all, &account, Some(&[])).map_err(|e| e.to_string()),
            Err(
                "`az account list` shows no enabled subscription for the signed-in identity".into()
            )
        );
        // Without a list (a saved plan's run) nothing is unknown.
        assert!(unknown_subscriptions(&given(&["nosuch"]), &signed_in(None)).is_empty());
    }

    #[test]
    fn the_scope_line_names_each_subscription_and_those_that_are_not_there() {
        let account = signed_in(Some(VISIBLE));
        let playbooks = playbook::builtin();
        let line = |subs: &[&str], selection: &Selection| {
            let subs: Vec<String> = subs.iter().map(|s| s.to_string()).collect();
            scope_line(
                RunCommand::Test,
                &playbooks[..1],
                &subs,
                &account,
                selection,
                &Waivers::default(),
            )
        };
        let one = line(&["S-B"], &given(&["contoso finance"]));
        assert!(
            one.contains(" in subscription S-B (Contoso Finance), signed in as "),
            "{one}"
        );
        let two = line(&["S-A", "S-B"], &given(&["S-A", "S-B", "Nosuch"]));
        assert!(
            two.contains(
                " in subscriptions S-A (Production), S-B (Contoso Finance), \"Nosuch\" (not an enabled subscription of this identity), signed in as "
            ),
            "{two}"
        );
    }

    fn finding(playbook: &Playbook, status: Status) -> Finding<'_> {
        let mut f = evaluate::scope_error(playbook, "/subscriptions/S".into(), String::new());
        f.assessment.status = status;
        f
    }

    #[test]
    fn filters_that_leave_no_target_are_named_in_a_warning() {
        let playbooks = playbook::builtin();
        let mut narrowed = Selection::default();
        narrowed.filters.names = vec![crate::discover::Filters::parse_glob("nosuch*").unwrap()];
        narrowed.filters.resource_group = Some("rg-sql".into());
        let warning = nothing_left(&narrowed, 0, 1, &[]).unwrap();
        assert_eq!(
            warning,
            "the filters of this run (resource group rg-sql, name nosuch*) leave no target: nothing was tested; check them if targets were expected"
        );
        let errors = [finding(&playbooks[0], Status::Error)];
        assert!(nothing_left(&narrowed, 0, 1, &errors).unwrap().contains(
            "leave no target (1 result(s) are errors, so a target may not have been seen)"
        ));
        assert_eq!(nothing_left(&narrowed, 1, 1, &[]), None, "a target found");
        assert_eq!(
            nothing_left(&narrowed, 0, 0, &errors),
            None,
            "no scope was searched: the errors say why"
        );
        assert_eq!(
            nothing_left(&Selection::default(), 0, 1, &[]),
            None,
            "no filter"
        );
    }
}
