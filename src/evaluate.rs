//! The test plan: reads each target's state, applies the playbook's verdict, keeps evidence.

use crate::az::{Az, AzError, CallKind};
use crate::discover::{
    self, Abort, CallRecord, Discovery, Filters, Found, Sink, Target, render_error,
};
use crate::fieldpath::FieldPath;
use crate::model::{Evidence, Status, TestResult};
use crate::playbook::{Argv, NamedRead, Playbook, Reads};
use crate::scheduler::{self, Spawner};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Hears about a run's progress; the engine itself never prints.
pub trait Progress: Sync {
    fn found(&self, _targets: u64) {}
    fn assessed(&self) {}
}

/// The verdict on one target's state.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub status: Status,
    pub evidence: Evidence,
    pub message: String,
}

/// One result of a run: the assessment, with the target and its state when they are known
/// (a plan needs both to derive changes).
pub struct Finding<'p> {
    pub playbook: &'p Playbook,
    pub resource: String,
    pub target: Option<Target<'p>>,
    pub state: Option<Value>,
    pub assessment: Assessment,
}

impl Finding<'_> {
    pub fn to_result(&self) -> TestResult {
        TestResult {
            playbook: self.playbook.id.clone(),
            resource: self.resource.clone(),
            status: self.assessment.status,
            evidence: self.assessment.evidence.clone(),
            message: self.assessment.message.clone(),
        }
    }
}

/// Applies the playbook's verdict to a state: pure, so that it is tested against what real az
/// printed without starting a process.
pub fn verdict(playbook: &Playbook, state: &Value) -> Assessment {
    let test = &playbook.test;
    let evidence = Evidence(
        test.evidence
            .iter()
            .map(|p| {
                (
                    p.to_string(),
                    crate::redact::redact_at(&p.to_string(), p.get(state)),
                )
            })
            .collect(),
    );
    let document = match crate::playbook::Document::new(state) {
        Ok(d) => d,
        Err(message) => {
            return Assessment {
                status: Status::Error,
                evidence,
                message,
            };
        }
    };
    let compliant = match test.compliant.test_prepared(&document) {
        Ok(c) => c,
        Err(message) => {
            return Assessment {
                status: Status::Error,
                evidence,
                message: format!("the playbook's verdict could not be evaluated: {message}"),
            };
        }
    };
    let explained = test
        .explain
        .iter()
        .find(|e| e.when.test_prepared(&document).unwrap_or(false))
        .map(|e| e.text.clone());
    let (status, message) = if compliant {
        (
            Status::Compliant,
            explained.unwrap_or_else(|| "compliant".into()),
        )
    } else {
        (
            Status::Noncompliant,
            explained.unwrap_or_else(|| format!("`{}` is false", test.compliant.source())),
        )
    };
    Assessment {
        status,
        evidence,
        message,
    }
}

fn error_assessment(error: &AzError) -> Assessment {
    Assessment {
        status: Status::Error,
        evidence: Evidence::default(),
        message: format!("{error}. {}", error.hint()),
    }
}

/// Reads one target's current state as the test sees it, from the target's recorded context:
/// apply's read-back and backout's look at the world both use it.
pub fn read_state(
    az: &Az,
    playbook: &Playbook,
    context: &Value,
    subscription: &str,
) -> Result<Value, AzError> {
    read_parts(az, playbook, context, subscription, &|_| None)
}

/// Reads back what a change can have altered. Of named reads, only those holding one of the
/// `changed` fields run, and those whose fields the verdict reads beyond what `record` keeps;
/// every other part is taken from `known`, the recorded state from just before. After
/// `az sql db tde set` that is one `tde show`, not also a `db show` of a key it cannot change.
pub fn read_back(
    az: &Az,
    playbook: &Playbook,
    context: &Value,
    subscription: &str,
    changed: &[&FieldPath],
    known: &Value,
) -> Result<Value, AzError> {
    read_parts(az, playbook, context, subscription, &|part| {
        let needed =
            changed.iter().any(|f| f.first() == part) || !playbook.test.verdict_is_recorded(part);
        (!needed).then(|| known.get(part).cloned().unwrap_or(Value::Null))
    })
}

/// `reuse(part)` gives a named part's value without reading it, or `None` to read it.
fn read_parts(
    az: &Az,
    playbook: &Playbook,
    context: &Value,
    subscription: &str,
    reuse: &dyn Fn(&str) -> Option<Value>,
) -> Result<Value, AzError> {
    let run = |argv: &Argv| {
        let rendered = argv
            .render(context)
            .map_err(|m| render_error(&argv.command_words(), m))?;
        az.run(&rendered, Some(subscription), CallKind::Read)
    };
    match (&playbook.test.reads, &playbook.test.refresh) {
        (Reads::One(argv), _) | (Reads::None, Some(argv)) => run(argv),
        (Reads::Named(named), refresh) => {
            let target = match (reuse("target"), refresh) {
                (Some(known), _) => known,
                (None, Some(argv)) => run(argv)?,
                (None, None) => context.get("target").cloned().unwrap_or(Value::Null),
            };
            // A conditional read is judged on the target as it is now (a database that has
            // its own key again after backout is read for it).
            let mut fresh = context.clone();
            fresh["target"] = target.clone();
            let mut state = Map::from_iter([("target".to_string(), target)]);
            for read in named {
                let value = match reuse(&read.name) {
                    Some(known) => known,
                    None if !applies(read, &fresh)? => Value::Null,
                    None => run(&read.argv)?,
                };
                state.insert(read.name.clone(), value);
            }
            Ok(Value::Object(state))
        }
        (Reads::None, None) => Err(render_error(
            &[],
            format!(
                "playbook {} has no per-target read (`refresh`)",
                playbook.id
            ),
        )),
    }
}

/// Whether a conditional read runs for the target in `context`; a condition that cannot be
/// judged is an error, never a read silently left out.
fn applies(read: &NamedRead, context: &Value) -> Result<bool, AzError> {
    read.applies(context)
        .map_err(|m| render_error(&read.argv.command_words(), m))
}

/// Which outcomes keep their target and state once judged: a test of ten thousand accounts
/// needs only the results, a plan only what it will change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepTargets {
    All,
    Noncompliant,
    None,
}

pub struct RunOptions<'p, 'a> {
    /// Keep, per target, every call behind its verdict (`--evidence-dir`).
    pub evidence: bool,
    pub keep: KeepTargets,
    pub playbooks: &'p [Playbook],
    pub subscriptions: &'a [String],
    pub filters: &'a Filters,
    pub jobs: usize,
}

/// What a run found.
pub struct Assessed<'p> {
    /// One per target, skipped item, failed listing, and scope that could not be searched.
    pub findings: Vec<Finding<'p>>,
    /// How many targets and skipped items discovery found (what the filters left).
    pub found: usize,
    /// How many subscriptions hold no resource group of the `--resource-group` name.
    pub groups_missing: usize,
}

/// Discovers and assesses every target. A failing resource becomes an `error` outcome and the
/// others go on; only a condition that no call can survive (signed out, az gone) ends the run,
/// returned as `Err` so that it is said once.
///
/// With `--resource-group`, `az group exists` runs once per subscription, beside the first
/// lists: a group that is not there is an `error` outcome per playbook (a filter matching
/// nothing would otherwise pass as a clean, empty run), and so is a check that failed.
pub fn assess<'p>(
    az: &Az,
    options: &RunOptions<'p, '_>,
    progress: &dyn Progress,
) -> Result<Assessed<'p>, AzError> {
    let abort = Abort::default();
    let discovery = Discovery::new(
        az,
        options.filters,
        &abort,
        options.playbooks,
        options.evidence,
    );
    let outcomes: Mutex<Vec<Finding<'p>>> = Mutex::new(Vec::new());
    let engine = Engine {
        az,
        evidence: options.evidence,
        keep: options.keep,
        abort: &abort,
        outcomes: &outcomes,
        progress,
        found: AtomicUsize::new(0),
    };
    let checks: Mutex<Vec<(&str, Result<bool, AzError>)>> = Mutex::new(Vec::new());
    let sink: &Sink<'_, 'p> = &|spawner, found| engine.found(spawner, found);
    scheduler::run(options.jobs, |spawner| {
        for subscription in options.subscriptions {
            for playbook in options.playbooks {
                discovery.start(spawner, playbook, subscription, sink);
            }
            if let Some(group) = &options.filters.resource_group {
                let (abort, checks) = (&abort, &checks);
                // Spawned last, so taken first: the newest job runs first.
                spawner.spawn(move |_| {
                    if abort.is_set() {
                        return;
                    }
                    let exists = discover::group_exists(az, subscription, group);
                    if let Err(error) = &exists
                        && abort.check(error)
                    {
                        return;
                    }
                    checks
                        .lock()
                        .expect("checks lock")
                        .push((subscription.as_str(), exists));
                });
            }
        }
    });
    if let Some(error) = abort.take() {
        return Err(error);
    }
    let found = engine.found.into_inner();
    let mut findings = outcomes.into_inner().expect("outcomes lock");
    let mut groups_missing = 0;
    if let Some(group) = &options.filters.resource_group {
        for (subscription, exists) in checks.into_inner().expect("checks lock") {
            let Some(message) = group_problem(group, subscription, &exists) else {
                continue;
            };
            groups_missing += usize::from(matches!(exists, Ok(false)));
            let resource = format!("/subscriptions/{subscription}/resourceGroups/{group}");
            findings.extend(
                options
                    .playbooks
                    .iter()
                    .map(|playbook| scope_error(playbook, resource.clone(), message.clone())),
            );
        }
    }
    Ok(Assessed {
        findings,
        found,
        groups_missing,
    })
}

/// What is wrong with the scope `--resource-group` names in `subscription`, if anything: the
/// group is not there, or whether it is could not be read.
fn group_problem(
    group: &str,
    subscription: &str,
    exists: &Result<bool, AzError>,
) -> Option<String> {
    match exists {
        Ok(true) => None,
        Ok(false) => Some(format!(
            "resource group {group} does not exist in subscription {subscription} \
             (`az group exists` printed false), so nothing in it was tested: check the name \
             given with --resource-group (resource groups are per subscription)"
        )),
        Err(error) => Some(format!(
            "whether resource group {group} exists in subscription {subscription} could not be \
             read, so its targets may not all have been seen: {error}. {}",
            error.hint()
        )),
    }
}

/// An `error` outcome for a scope of the run that could not be searched (a subscription or
/// resource group that is not there): no target of `playbook` in it was tested.
pub fn scope_error<'p>(playbook: &'p Playbook, resource: String, message: String) -> Finding<'p> {
    Finding {
        playbook,
        resource,
        target: None,
        state: None,
        assessment: Assessment {
            status: Status::Error,
            evidence: Evidence::default(),
            message,
        },
    }
}

struct Engine<'e, 'p> {
    az: &'e Az<'e>,
    evidence: bool,
    keep: KeepTargets,
    abort: &'e Abort,
    outcomes: &'e Mutex<Vec<Finding<'p>>>,
    progress: &'e dyn Progress,
    /// Targets and skipped items found so far.
    found: AtomicUsize,
}

impl<'e, 'p> Engine<'e, 'p> {
    fn push(&self, mut outcome: Finding<'p>) {
        self.progress.assessed();
        let kept = match self.keep {
            KeepTargets::All => true,
            KeepTargets::Noncompliant => outcome.assessment.status == Status::Noncompliant,
            KeepTargets::None => false,
        };
        if !kept {
            outcome.target = None;
            outcome.state = None;
        }
        self.outcomes.lock().expect("outcomes lock").push(outcome);
    }

    fn found<'s>(&'s self, spawner: &Spawner<'s>, found: Found<'p>)
    where
        'p: 's,
    {
        match found {
            Found::Failed {
                playbook,
                resource,
                error,
            } => self.push(Finding {
                playbook,
                resource,
                target: None,
                state: None,
                assessment: error_assessment(&error),
            }),
            Found::Skipped(target, reason) => {
                self.progress.found(1);
                self.found.fetch_add(1, Ordering::Relaxed);
                self.push(Finding {
                    playbook: target.playbook,
                    resource: target.id(),
                    target: Some(target),
                    state: None,
                    assessment: Assessment {
                        status: Status::Skipped,
                        evidence: Evidence::default(),
                        message: reason,
                    },
                })
            }
            Found::Target(target) => {
                self.progress.found(1);
                self.found.fetch_add(1, Ordering::Relaxed);
                self.read_state(spawner, target);
            }
        }
    }

    fn conclude(&self, target: Target<'p>, state: Result<Value, AzError>) {
        let outcome = match state {
            Ok(state) => Finding {
                playbook: target.playbook,
                resource: target.id(),
                assessment: verdict(target.playbook, &state),
                state: Some(state),
                target: Some(target),
            },
            Err(error) => {
                if self.abort.check(&error) {
                    return;
                }
                Finding {
                    playbook: target.playbook,
                    resource: target.id(),
                    assessment: error_assessment(&error),
                    state: None,
                    target: Some(target),
                }
            }
        };
        self.push(outcome);
    }

    /// Reads one part of a target's state; with evidence on, the call joins `calls`.
    fn read(
        &self,
        target: &Target<'p>,
        argv: &crate::playbook::Argv,
        calls: &mut Vec<CallRecord>,
    ) -> Result<Value, AzError> {
        let rendered = argv
            .render(&target.context(None))
            .map_err(|m| render_error(&argv.command_words(), m))?;
        let time = crate::timefmt::now_rfc3339();
        let result = self
            .az
            .run(&rendered, Some(&target.subscription), CallKind::Read);
        if self.evidence
            && let Ok(output) = &result
        {
            calls.push(CallRecord {
                argv: Az::full_argv(&rendered, Some(&target.subscription)),
                time,
                output: output.clone(),
            });
        }
        result
    }

    /// Each read is a job of its own, so that a target's reads run in parallel and count
    /// against `--jobs` like every other call; the last to finish concludes.
    fn read_state<'s>(&'s self, spawner: &Spawner<'s>, target: Target<'p>)
    where
        'p: 's,
    {
        match &target.playbook.test.reads {
            Reads::None => {
                let state = target.item().clone();
                self.conclude(target, Ok(state));
            }
            Reads::One(argv) => spawner.spawn(move |_| {
                if self.abort.is_set() {
                    return;
                }
                let mut target = target;
                let mut calls = std::mem::take(&mut target.calls);
                let state = self.read(&target, argv, &mut calls);
                target.calls = calls;
                self.conclude(target, state);
            }),
            Reads::Named(reads) if reads.is_empty() => {
                let state = Map::from_iter([("target".to_string(), target.item().clone())]);
                self.conclude(target, Ok(Value::Object(state)));
            }
            Reads::Named(reads) => {
                let context = target.context(None);
                let mut state = Map::from_iter([("target".to_string(), target.item().clone())]);
                let mut wanted = Vec::new();
                for read in reads {
                    match applies(read, &context) {
                        Ok(true) => wanted.push(read),
                        Ok(false) => {
                            state.insert(read.name.clone(), Value::Null);
                        }
                        Err(e) => return self.conclude(target, Err(e)),
                    }
                }
                if wanted.is_empty() {
                    return self.conclude(target, Ok(Value::Object(state)));
                }
                let join = Arc::new(Mutex::new(Join {
                    remaining: wanted.len(),
                    state,
                    error: None,
                    target: Some(target.clone()),
                }));
                for read in wanted {
                    self.spawn_read(spawner, &join, &target, read);
                }
            }
        }
    }

    /// One read of several for a target; the last to finish concludes the target.
    fn spawn_read<'s>(
        &'s self,
        spawner: &Spawner<'s>,
        join: &Arc<Mutex<Join<'p>>>,
        target: &Target<'p>,
        read: &'p NamedRead,
    ) where
        'p: 's,
    {
        let join = join.clone();
        let target = target.clone();
        spawner.spawn(move |_| {
            if self.abort.is_set() {
                return;
            }
            let mut calls = Vec::new();
            let result = self.read(&target, &read.argv, &mut calls);
            let mut j = join.lock().expect("join lock");
            if let Some(t) = j.target.as_mut() {
                t.calls.extend(calls);
            }
            match result {
                Ok(v) => {
                    j.state.insert(read.name.clone(), v);
                }
                Err(e) => {
                    j.error.get_or_insert(e);
                }
            }
            j.remaining -= 1;
            if j.remaining == 0 {
                let target = j.target.take().expect("concluded once");
                let state = match j.error.take() {
                    Some(e) => Err(e),
                    None => Ok(Value::Object(std::mem::take(&mut j.state))),
                };
                drop(j);
                self.conclude(target, state);
            }
        });
    }
}

struct Join<'p> {
    remaining: usize,
    state: Map<String, Value>,
    error: Option<AzError>,
    target: Option<Target<'p>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::builtin;
    use serde_json::json;

    fn printed(name: &str) -> Value {
        let path = format!(
            "{}/tests/reference/az_cli_2.91/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        serde_json::from_str(v["stdout"].as_str().unwrap()).unwrap()
    }

    fn playbook(id: &str) -> Playbook {
        builtin().into_iter().find(|p| p.id == id).unwrap()
    }

    #[test]
    fn storage_verdicts_on_what_az_printed() {
        let p = playbook("storage-account-mmk");
        let list = printed("storage_account_list");
        let cmk = verdict(&p, &list[0]);
        assert_eq!(cmk.status, Status::Noncompliant);
        assert_eq!(
            cmk.evidence.0[0],
            ("encryption.keySource".into(), json!("Microsoft.Keyvault"))
        );
        assert_eq!(cmk.evidence.0[1].1, json!("https://kv1.vault.azure.net/"));
        assert_eq!(cmk.evidence.0[3].1, json!(""));
        assert_eq!(verdict(&p, &list[1]).status, Status::Compliant);
        assert_eq!(
            verdict(&p, &printed("storage_account_update_to_mmk")).status,
            Status::Compliant
        );
    }

    #[test]
    fn storage_edge_cases() {
        let p = playbook("storage-account-mmk");
        let no_block = verdict(&p, &json!({"name": "x"}));
        assert_eq!(no_block.status, Status::Compliant);
        assert!(
            no_block.message.contains("platform default"),
            "{}",
            no_block.message
        );
        assert_eq!(
            verdict(
                &p,
                &json!({"encryption": {"keySource": "microsoft.storage"}})
            )
            .status,
            Status::Compliant
        );
        assert_eq!(
            verdict(
                &p,
                &json!({"encryption": {"keySource": "microsoft.keyvault"}})
            )
            .status,
            Status::Noncompliant
        );
        assert_eq!(
            verdict(&p, &json!({"encryption": null})).status,
            Status::Compliant
        );
        let no_source = verdict(&p, &json!({"encryption": {"services": {}}}));
        assert_eq!(no_source.status, Status::Compliant);
        assert!(
            no_source.message.contains("platform default"),
            "{}",
            no_source.message
        );
    }

    #[test]
    fn server_protector_verdicts() {
        let p = playbook("sql-server-tde-protector-mmk");
        let akv = verdict(&p, &printed("sql_server_tde_key_show_akv"));
        assert_eq!(akv.status, Status::Noncompliant);
        assert_eq!(
            akv.evidence.0[2].1,
            json!("https://kv1.vault.azure.net/keys/sqlkey/0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            verdict(&p, &printed("sql_server_tde_key_show_servicemanaged")).status,
            Status::Compliant
        );
    }

    #[test]
    fn database_verdicts_cover_state_status_and_database_keys() {
        let p = playbook("sql-database-tde-mmk");
        let db = printed("sql_db_show");
        let on = json!({"tde": printed("sql_db_tde_show"), "target": db});
        assert_eq!(verdict(&p, &on).status, Status::Compliant);
        let off = json!({"tde": printed("sql_db_tde_set_disabled"), "target": db});
        assert_eq!(verdict(&p, &off).status, Status::Noncompliant);
        let legacy_on = json!({"tde": {"status": "Enabled"}, "target": db});
        assert_eq!(verdict(&p, &legacy_on).status, Status::Compliant);
        let legacy_off = json!({"tde": {"status": "Disabled"}, "target": db});
        assert_eq!(verdict(&p, &legacy_off).status, Status::Noncompliant);
        let mut cmk_db = db.clone();
        cmk_db["encryptionProtector"] = json!("https://kv1.vault.azure.net/keys/dbkey/abc");
        let own_key = verdict(
            &p,
            &json!({"tde": printed("sql_db_tde_show"), "target": cmk_db}),
        );
        assert_eq!(own_key.status, Status::Noncompliant);
        assert!(
            own_key.message.contains("database-level"),
            "{}",
            own_key.message
        );
        assert_eq!(
            own_key.evidence.0[2].1,
            json!("https://kv1.vault.azure.net/keys/dbkey/abc")
        );
    }

    /// Every state in the reference corpus that a playbook reads, with the verdict it must get.
    #[test]
    fn every_reference_state_gets_its_verdict() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference");
        let file = |path: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(format!("{root}/{path}")).unwrap())
                .unwrap()
        };
        let cases: &[(&str, Value, Status)] = &[
            (
                "storage-account-mmk",
                printed("storage_account_list")[0].clone(),
                Status::Noncompliant,
            ),
            (
                "storage-account-mmk",
                printed("storage_account_list")[1].clone(),
                Status::Compliant,
            ),
            (
                "storage-account-mmk",
                printed("storage_account_show_cmk_uai"),
                Status::Noncompliant,
            ),
            (
                "storage-account-mmk",
                printed("storage_account_show_mmk_infra"),
                Status::Compliant,
            ),
            (
                "storage-account-mmk",
                printed("storage_account_update_to_mmk"),
                Status::Compliant,
            ),
            (
                "storage-account-mmk",
                file("az_printed/storage_account_create_mmk_systemassigned.az2026.json"),
                Status::Compliant,
            ),
            (
                "storage-account-mmk",
                file("az_printed/storage_account_update_cmk_systemassigned.az2026.json"),
                Status::Noncompliant,
            ),
            (
                "sql-server-tde-protector-mmk",
                printed("sql_server_tde_key_show_akv"),
                Status::Noncompliant,
            ),
            (
                "sql-server-tde-protector-mmk",
                printed("sql_server_tde_key_show_servicemanaged"),
                Status::Compliant,
            ),
            (
                "sql-server-tde-protector-mmk",
                printed("sql_server_tde_key_set_servicemanaged"),
                Status::Compliant,
            ),
            (
                "sql-database-tde-mmk",
                json!({"tde": printed("sql_db_tde_show"), "target": printed("sql_db_show")}),
                Status::Compliant,
            ),
            (
                "sql-database-tde-mmk",
                json!({"tde": printed("sql_db_tde_set_disabled"), "target": printed("sql_db_list")[0]}),
                Status::Noncompliant,
            ),
        ];
        for (id, state, expected) in cases {
            let got = verdict(&playbook(id), state);
            assert_eq!(got.status, *expected, "{id} on {state}: {}", got.message);
        }
        // Every capture of a state the playbooks read is among the cases above.
        let covered = [
            "storage_account_list",
            "storage_account_show_cmk_uai",
            "storage_account_show_mmk_infra",
            "storage_account_update_to_mmk",
            "sql_server_tde_key_show_akv",
            "sql_server_tde_key_show_servicemanaged",
            "sql_server_tde_key_set_servicemanaged",
            "sql_db_tde_show",
            "sql_db_show",
            "sql_db_tde_set_disabled",
            "sql_db_list",
        ];
        for entry in std::fs::read_dir(format!("{root}/az_cli_2.91")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let stem = name.trim_end_matches(".json");
            let is_state = ["storage_account_", "sql_server_tde_key", "sql_db_"]
                .iter()
                .any(|p| stem.starts_with(p));
            assert!(
                !is_state || covered.contains(&stem),
                "{stem} is not checked"
            );
        }
    }

    #[test]
    fn a_missing_or_unreadable_group_is_a_problem_naming_it() {
        assert_eq!(group_problem("rg-data", "S1", &Ok(true)), None);
        let missing = group_problem("rg-nosuch", "S1", &Ok(false)).unwrap();
        assert!(
            missing.starts_with("resource group rg-nosuch does not exist in subscription S1 "),
            "{missing}"
        );
        assert!(missing.contains("--resource-group"), "{missing}");
        let denied = AzError {
            kind: crate::az::ErrorKind::Authorization,
            code: Some("AuthorizationFailed".into()),
            message: "no read".into(),
            command: "az group exists --name=rg-data --subscription=S1 --output=json".into(),
            exit_code: Some(1),
        };
        let failed = group_problem("rg-data", "S1", &Err(denied.clone())).unwrap();
        assert!(
            failed.starts_with(
                "whether resource group rg-data exists in subscription S1 could not be read"
            ),
            "{failed}"
        );
        assert!(failed.contains(&denied.to_string()), "{failed}");
        assert!(failed.ends_with(denied.hint()), "{failed}");
    }

    #[test]
    fn master_is_skipped_by_the_discovery_rule() {
        let p = playbook("sql-database-tde-mmk");
        let rule = &p.discover[1].skip[0];
        assert!(
            rule.when
                .test(&json!({"name": "master", "kind": "v12.0,system", "sku": {"tier": "System"}}))
                .unwrap()
        );
        assert!(!rule.when.test(&printed("sql_db_list")[0]).unwrap());
    }
}
