//! Targets from list calls: each playbook's discovery levels, run per subscription, filtered.

use crate::az::{Az, AzError, CallKind, ErrorKind};
use crate::fieldtree::FieldTree;
use crate::memo::Memo;
use crate::playbook::{DiscoverLevel, Playbook};
use crate::scheduler::Spawner;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Which targets a run covers, beyond the playbooks and subscriptions.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub resource_group: Option<String>,
    /// KEY=VALUE pairs, all of which must hold. Keys compare case-insensitively, as Azure
    /// treats tag names; values exactly.
    pub tags: Vec<(String, String)>,
    /// Globs over the target's name (or its ARM id, for a glob containing `/`); any may match.
    pub names: Vec<glob::Pattern>,
    /// Globs as for `names`; a target matching any is left out.
    pub excludes: Vec<glob::Pattern>,
}

const GLOB: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl Filters {
    pub fn parse_tag(text: &str) -> Result<(String, String), String> {
        match text.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(format!(
                "`{text}` is not KEY=VALUE (for example data-classification=critical)"
            )),
        }
    }

    pub fn parse_glob(text: &str) -> Result<glob::Pattern, String> {
        glob::Pattern::new(text).map_err(|e| format!("`{text}` is not a valid glob: {e}"))
    }

    /// Which of these filters leaves out a target known only by its ARM id and the context a
    /// saved plan recorded for it, if one does. Tags are judged only where the context holds
    /// them (a plan records only what its templates need).
    pub fn excluding(&self, id: &str, context: &Value) -> Option<String> {
        let target = &context["target"];
        let from_id = |key: &str| {
            let mut parts = id.split('/').skip_while(|p| !p.eq_ignore_ascii_case(key));
            parts.next().and(parts.next())
        };
        let name = target["name"]
            .as_str()
            .unwrap_or_else(|| id.rsplit('/').next().unwrap_or(""));
        let group = target["resourceGroup"]
            .as_str()
            .or_else(|| from_id("resourceGroups"))
            .unwrap_or("");
        if let Some(wanted) = &self.resource_group
            && !wanted.eq_ignore_ascii_case(group)
        {
            return Some(format!("resource group {wanted}"));
        }
        let matches = |p: &&glob::Pattern| {
            let subject = if p.as_str().contains('/') { id } else { name };
            p.matches_with(subject, GLOB)
        };
        if !self.names.is_empty() && !self.names.iter().any(|p| matches(&p)) {
            let names: Vec<&str> = self.names.iter().map(glob::Pattern::as_str).collect();
            return Some(format!("name {}", names.join(" or ")));
        }
        if let Some(p) = self.excludes.iter().find(matches) {
            return Some(format!("excluding {}", p.as_str()));
        }
        let recorded: Vec<&Map<String, Value>> = context
            .as_object()
            .into_iter()
            .flat_map(|levels| levels.values())
            .filter_map(|level| level.get("tags").and_then(Value::as_object))
            .collect();
        if recorded.is_empty() {
            return None;
        }
        self.tags
            .iter()
            .find(|(key, value)| {
                !recorded.iter().any(|tags| {
                    tags.iter()
                        .any(|(k, v)| k.eq_ignore_ascii_case(key) && v.as_str() == Some(value))
                })
            })
            .map(|(key, value)| format!("tag {key}={value}"))
    }

    /// A resource group filter applies at every level: a server outside it holds no database
    /// inside it, so its databases are never listed.
    fn keeps_level(&self, item: &Value) -> bool {
        match (
            &self.resource_group,
            item.get("resourceGroup").and_then(Value::as_str),
        ) {
            (Some(wanted), Some(rg)) => wanted.eq_ignore_ascii_case(rg),
            _ => true,
        }
    }

    fn keeps_target(&self, levels: &[(String, Value)]) -> bool {
        let (_, item) = levels.last().expect("a target has a level");
        let name = item.get("name").and_then(Value::as_str).unwrap_or("");
        let id = item.get("id").and_then(Value::as_str).unwrap_or("");
        let matches = |p: &glob::Pattern| {
            let subject = if p.as_str().contains('/') { id } else { name };
            p.matches_with(subject, GLOB)
        };
        if !self.names.is_empty() && !self.names.iter().any(matches) {
            return false;
        }
        if self.excludes.iter().any(matches) {
            return false;
        }
        // A database matches through its own tags or through its server's.
        self.tags.iter().all(|(key, value)| {
            levels.iter().any(|(_, level)| {
                level
                    .get("tags")
                    .and_then(Value::as_object)
                    .is_some_and(|tags| {
                        tags.iter()
                            .any(|(k, v)| k.eq_ignore_ascii_case(key) && v.as_str() == Some(value))
                    })
            })
        })
    }
}

/// One resource a playbook tests, with the items of the discovery levels above it.
#[derive(Clone, Debug)]
pub struct Target<'p> {
    pub playbook: &'p Playbook,
    pub subscription: String,
    /// (level name, item) from the first level down to the target itself.
    pub levels: Vec<(String, Value)>,
    /// With `--evidence-dir`: every az call that read this target, as run, with what it printed
    /// of the target (for a list, the target's own item). Empty otherwise.
    pub calls: Vec<CallRecord>,
}

/// One az call behind a verdict, for auditors.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CallRecord {
    pub argv: Vec<String>,
    pub time: String,
    pub output: Value,
}

impl Target<'_> {
    pub fn item(&self) -> &Value {
        &self.levels.last().expect("a target has a level").1
    }

    pub fn id(&self) -> String {
        resource_id(self.item())
    }

    /// The document templates and step conditions see: `target`, every level by name, and
    /// `before` when the prior state is known.
    pub fn context(&self, before: Option<&Value>) -> Value {
        let mut map = Map::new();
        for (name, item) in &self.levels {
            map.insert(name.clone(), item.clone());
        }
        map.insert("target".into(), self.item().clone());
        if let Some(before) = before {
            map.insert("before".into(), before.clone());
        }
        Value::Object(map)
    }
}

fn resource_id(item: &Value) -> String {
    item.get("id")
        .and_then(Value::as_str)
        .unwrap_or("(a resource az printed without an id)")
        .to_string()
}

pub enum Found<'p> {
    Target(Target<'p>),
    Skipped(Target<'p>, String),
    /// A listing failed: nothing below `resource` could be tested.
    Failed {
        playbook: &'p Playbook,
        resource: String,
        error: AzError,
    },
}

/// Stops a run that cannot go on (signed out, az gone): no new call starts once it is set.
#[derive(Default)]
pub struct Abort {
    flag: AtomicBool,
    error: Mutex<Option<AzError>>,
}

impl Abort {
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Records `error` and returns true if it must stop the run.
    pub fn check(&self, error: &AzError) -> bool {
        if matches!(error.kind, ErrorKind::NotSignedIn | ErrorKind::Missing) {
            let mut slot = self.error.lock().expect("abort lock");
            slot.get_or_insert_with(|| error.clone());
            self.flag.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }

    pub fn take(&self) -> Option<AzError> {
        self.error.lock().expect("abort lock").take()
    }
}

/// A list call's result, with when it was made (evidence names the time of every call).
struct Listed {
    result: Result<Value, AzError>,
    at: String,
    /// For a paged list: where each page after the first starts among the items, and the
    /// argv that read it (evidence names the call that printed each item).
    pages: Pages,
}

/// Where each page after the first starts among a list's items, with the argv that read it.
type Pages = Vec<(usize, Vec<String>)>;

type Shared = Arc<Listed>;
/// A call's argv and subscription.
type CallKey = (Vec<String>, String);

pub struct Discovery<'a> {
    az: &'a Az<'a>,
    filters: &'a Filters,
    abort: &'a Abort,
    /// List calls shared between playbooks: the SQL playbooks both need each subscription's
    /// server list, and it is read once.
    memo: Memo<CallKey, Shared>,
    /// Per list command (its words), how many selected playbooks' discovery runs it: the
    /// callers the memo waits for before it lets a list go.
    callers: HashMap<String, usize>,
    /// Per list command (its words), the fields any selected playbook reads of its items.
    keep: HashMap<String, FieldTree>,
    /// Keep whole items and a trail of calls per target, for `--evidence-dir`.
    evidence: bool,
}

pub type Sink<'s, 'p> = dyn Fn(&Spawner<'s>, Found<'p>) + Sync + 's;

impl<'a> Discovery<'a> {
    pub fn new(
        az: &'a Az<'a>,
        filters: &'a Filters,
        abort: &'a Abort,
        playbooks: &[Playbook],
        evidence: bool,
    ) -> Self {
        let mut keep: HashMap<String, FieldTree> = HashMap::new();
        let mut callers: HashMap<String, usize> = HashMap::new();
        for playbook in playbooks {
            for (depth, level) in playbook.discover.iter().enumerate() {
                let command = level.argv.command_words().join(" ");
                *callers.entry(command.clone()).or_default() += 1;
                let mut fields = playbook.level_fields(depth);
                if level.next_marker.is_some() {
                    fields.insert(&[NEXT_MARKER]);
                }
                keep.entry(command).or_default().merge(fields);
            }
        }
        Discovery {
            az,
            filters,
            abort,
            memo: Memo::default(),
            callers,
            keep,
            evidence,
        }
    }

    /// Starts discovery of `playbook`'s targets in `subscription`; every target, skipped item
    /// and failed listing goes to `sink`, as soon as it is known.
    pub fn start<'s, 'p: 's>(
        &'s self,
        spawner: &Spawner<'s>,
        playbook: &'p Playbook,
        subscription: &'s str,
        sink: &'s Sink<'s, 'p>,
    ) {
        self.level(
            spawner,
            playbook,
            subscription,
            Vec::new(),
            Vec::new(),
            sink,
        );
    }

    fn level<'s, 'p: 's>(
        &'s self,
        spawner: &Spawner<'s>,
        playbook: &'p Playbook,
        subscription: &'s str,
        parents: Vec<(String, Value)>,
        trail: Vec<CallRecord>,
        sink: &'s Sink<'s, 'p>,
    ) {
        spawner.spawn(move |spawner| {
            if self.abort.is_set() {
                return;
            }
            let depth = parents.len();
            let level = &playbook.discover[depth];
            let listed_under = parents
                .last()
                .map(|(_, p)| resource_id(p))
                .unwrap_or_else(|| format!("/subscriptions/{subscription}"));
            let fail = |error: AzError| {
                sink(
                    spawner,
                    Found::Failed {
                        playbook,
                        resource: listed_under.clone(),
                        error,
                    },
                )
            };
            let context = Value::Object(parents.iter().cloned().collect());
            let argv = match level.argv.render(&context) {
                Ok(argv) => argv,
                Err(message) => return fail(render_error(&level.argv.command_words(), message)),
            };
            let listed = self.list(level, &argv, subscription);
            let items = match listed.result {
                Err(error) => {
                    if !self.abort.check(&error) {
                        fail(error);
                    }
                    return;
                }
                Ok(Value::Array(items)) => items,
                Ok(other) => return fail(not_a_list(&other, &argv)),
            };
            let listing = Listing {
                playbook,
                subscription,
                sink,
                level,
                parents: &parents,
                trail: &trail,
                at: &listed.at,
                last: depth + 1 == playbook.discover.len(),
            };
            for (i, item) in items.into_iter().enumerate() {
                let page = listed.pages.iter().rev().find(|(start, _)| *start <= i);
                let argv = page.map_or(argv.as_slice(), |(_, a)| a.as_slice());
                self.item(spawner, &listing, argv, item);
            }
        });
    }

    /// Runs a level's list call, or takes its result from another playbook's identical call in
    /// the same subscription.
    fn list(&self, level: &DiscoverLevel, argv: &[String], subscription: &str) -> Listed {
        let command = level.argv.command_words().join(" ");
        let keep = match self.keep.get(&command) {
            Some(fields) if !self.evidence => fields,
            _ => &FieldTree::All,
        };
        let callers = self.callers.get(&command).copied().unwrap_or(1);
        let key = (argv.to_vec(), subscription.to_string());
        let listed = self.memo.get(key, callers, || {
            let at = crate::timefmt::now_rfc3339();
            let mut pages = Vec::new();
            let result = match &level.next_marker {
                Some(option) => self.all_pages(argv, option, subscription, keep, &mut pages),
                None => self.az.run_list(argv, Some(subscription), keep),
            };
            Arc::new(Listed { result, at, pages })
        });
        // The last holder of a list takes its items instead of copying them one by one.
        match Arc::try_unwrap(listed) {
            Ok(listed) => listed,
            Err(shared) => Listed {
                result: shared.result.clone(),
                at: shared.at.clone(),
                pages: shared.pages.clone(),
            },
        }
    }

    /// Every page of a list that az pages with a trailing `{"nextMarker": "..."}` item: the
    /// marker items are dropped and `option=<marker>` asks for the next page, until a page
    /// ends without one. A marker az gives twice would loop for ever: that is an error.
    fn all_pages(
        &self,
        argv: &[String],
        option: &str,
        subscription: &str,
        keep: &FieldTree,
        pages: &mut Pages,
    ) -> Result<Value, AzError> {
        let mut items = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut page_argv = argv.to_vec();
        loop {
            let page = match self.az.run_list(&page_argv, Some(subscription), keep)? {
                Value::Array(page) => page,
                other => return Ok(other),
            };
            let (page, marker) = split_marker(page);
            items.extend(page);
            let Some(marker) = marker else {
                return Ok(Value::Array(items));
            };
            if !seen.insert(marker.clone()) {
                return Err(malformed(
                    format!("az gave the page marker {marker:?} twice; the list would never end"),
                    &Az::full_argv(&page_argv, Some(subscription)),
                ));
            }
            page_argv = argv.to_vec();
            page_argv.push(format!("{option}={marker}"));
            pages.push((items.len(), page_argv.clone()));
        }
    }

    /// One listed item: left out by the filters, skipped by a rule, or found; a found item of
    /// the last level is a target, one above it is listed under in turn.
    fn item<'s, 'p: 's>(
        &'s self,
        spawner: &Spawner<'s>,
        listing: &Listing<'_, 's, 'p>,
        argv: &[String],
        item: Value,
    ) {
        if !self.filters.keeps_level(&item) {
            return;
        }
        let skip = listing
            .level
            .skip
            .iter()
            .find(|rule| rule.when.test(&item).unwrap_or(false));
        let mut calls = listing.trail.to_vec();
        if self.evidence {
            calls.push(CallRecord {
                argv: Az::full_argv(argv, Some(listing.subscription)),
                time: listing.at.to_string(),
                output: item.clone(),
            });
        }
        let mut levels = listing.parents.to_vec();
        levels.push((listing.level.name.clone(), item));
        let target = Target {
            playbook: listing.playbook,
            subscription: listing.subscription.to_string(),
            levels,
            calls,
        };
        if listing.last && !self.filters.keeps_target(&target.levels) {
            return;
        }
        match skip {
            Some(rule) if listing.last => {
                (listing.sink)(spawner, Found::Skipped(target, rule.reason.clone()))
            }
            Some(_) => {}
            None if listing.last => (listing.sink)(spawner, Found::Target(target)),
            None => self.level(
                spawner,
                listing.playbook,
                listing.subscription,
                target.levels,
                target.calls,
                listing.sink,
            ),
        }
    }
}

/// One level's list call, made under one parent: what each of its items needs to become a
/// target, or the parent of the level below.
struct Listing<'l, 's, 'p> {
    playbook: &'p Playbook,
    subscription: &'s str,
    sink: &'s Sink<'s, 'p>,
    level: &'p DiscoverLevel,
    /// The items of the levels above, first level first.
    parents: &'l [(String, Value)],
    /// The calls that listed the parents, for evidence.
    trail: &'l [CallRecord],
    /// When the list call was made.
    at: &'l str,
    /// Whether this is the last level: its items are the targets.
    last: bool,
}

/// The key of the item that az appends to one page of a paged list.
const NEXT_MARKER: &str = "nextMarker";

/// A page's items and the marker of the next page, if its last item is az's
/// `{"nextMarker": "..."}` (an object with that key alone; null or "" means no more pages).
fn split_marker(mut page: Vec<Value>) -> (Vec<Value>, Option<String>) {
    let is_marker = |v: &Value| {
        v.as_object()
            .is_some_and(|o| o.len() == 1 && o.contains_key(NEXT_MARKER))
    };
    if !page.last().is_some_and(is_marker) {
        return (page, None);
    }
    let marker = page.pop().and_then(|v| match v.get(NEXT_MARKER) {
        Some(Value::String(m)) if !m.is_empty() => Some(m.clone()),
        _ => None,
    });
    (page, marker)
}

/// `az group exists --name=NAME` in `subscription`: whether the resource group named with
/// `--resource-group` is there. az prints `true` or `false`; anything else is malformed output.
/// (`--name=` keeps a name that starts with `-`, such as `-rg.ops(1)`, a value.)
pub fn group_exists(az: &Az, subscription: &str, name: &str) -> Result<bool, AzError> {
    let argv = group_exists_argv(name);
    match az.run(&argv, Some(subscription), CallKind::Read)? {
        Value::Bool(exists) => Ok(exists),
        other => Err(malformed(
            format!("expected true or false, got {}", json_type(&other)),
            &Az::full_argv(&argv, Some(subscription)),
        )),
    }
}

fn group_exists_argv(name: &str) -> Vec<String> {
    ["az", "group", "exists"]
        .into_iter()
        .map(String::from)
        .chain([format!("--name={name}")])
        .collect()
}

/// What a list call that printed JSON other than a list failed with.
fn not_a_list(output: &Value, argv: &[String]) -> AzError {
    malformed(
        format!("expected a JSON list, got {}", json_type(output)),
        argv,
    )
}

/// az exited 0 but printed what a list or a check cannot be read from.
fn malformed(message: String, argv: &[String]) -> AzError {
    AzError {
        kind: ErrorKind::MalformedOutput,
        code: None,
        message,
        command: crate::az::display_command(argv),
        exit_code: Some(0),
    }
}

pub fn render_error(command: &[&str], message: String) -> AzError {
    AzError {
        kind: ErrorKind::Failed,
        code: None,
        message: format!("cannot build the arguments: {message}"),
        command: format!("az {}", command.join(" ")),
        exit_code: None,
    }
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every page of a list through a fake `az` (`/bin/sh -c BODY az ...`).
    fn pages_of(body: &str) -> (Result<Value, AzError>, Pages) {
        let config = crate::az::AzConfig {
            program: std::path::PathBuf::from("/bin/sh"),
            ..crate::az::AzConfig::default()
        };
        let az = Az::new(config, None);
        let (filters, abort) = (Filters::default(), Abort::default());
        let discovery = Discovery::new(&az, &filters, &abort, &[], false);
        let argv: Vec<String> = ["az", "-c", body, "az"].map(String::from).to_vec();
        let mut pages = Vec::new();
        let all = discovery.all_pages(&argv, "--marker", "s", &FieldTree::All, &mut pages);
        (all, pages)
    }

    #[test]
    fn every_page_is_read_and_each_item_knows_its_page() {
        let body = r#"case "$*" in
            *--marker=p3*) echo '[{"name":"e"}]' ;;
            *--marker=p2*) echo '[{"name":"c"},{"name":"d"},{"nextMarker":"p3"}]' ;;
            *) echo '[{"name":"a"},{"name":"b"},{"nextMarker":"p2"}]' ;;
        esac"#;
        let (all, pages) = pages_of(body);
        let names: Vec<Value> = all
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].clone())
            .collect();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
        let starts: Vec<usize> = pages.iter().map(|(start, _)| *start).collect();
        assert_eq!(starts, [2, 4]);
        assert_eq!(pages[1].1.last().unwrap(), "--marker=p3");
    }

    #[test]
    fn a_marker_given_twice_is_an_error_not_an_endless_list() {
        let (all, _) = pages_of(r#"echo '[{"name":"a"},{"nextMarker":"same"}]'"#);
        let error = all.unwrap_err();
        assert_eq!(error.kind, ErrorKind::MalformedOutput);
        assert!(error.message.contains("twice"), "{}", error.message);
        assert!(error.command.contains("--marker=same"), "{}", error.command);
    }

    #[test]
    fn a_trailing_marker_item_is_taken_off_the_page() {
        let page = vec![json!({"name": "a"}), json!({"nextMarker": "https://next"})];
        assert_eq!(
            split_marker(page),
            (vec![json!({"name": "a"})], Some("https://next".to_string()))
        );
        // The last page: a null or empty marker, or none at all.
        for last in [json!({"nextMarker": null}), json!({"nextMarker": ""})] {
            assert_eq!(split_marker(vec![last]), (vec![], None));
        }
        let plain = vec![json!({"name": "a"})];
        assert_eq!(split_marker(plain.clone()), (plain, None));
        // An item that has other fields besides is an item, not a marker.
        let item = vec![json!({"name": "a", "nextMarker": "x"})];
        assert_eq!(split_marker(item.clone()), (item, None));
    }

    #[test]
    fn a_recorded_target_outside_the_filters_is_named() {
        let id = "/subscriptions/s/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stcmk";
        let context =
            serde_json::json!({"target": {"id": id, "name": "stcmk", "resourceGroup": "rg-data"}});
        let filters = |rg: Option<&str>, names: &[&str], excludes: &[&str]| Filters {
            resource_group: rg.map(String::from),
            tags: Vec::new(),
            names: names
                .iter()
                .map(|g| glob::Pattern::new(g).unwrap())
                .collect(),
            excludes: excludes
                .iter()
                .map(|g| glob::Pattern::new(g).unwrap())
                .collect(),
        };
        assert_eq!(
            filters(Some("RG-DATA"), &["st*"], &[]).excluding(id, &context),
            None
        );
        assert_eq!(
            filters(Some("rg-other"), &[], &[])
                .excluding(id, &context)
                .as_deref(),
            Some("resource group rg-other")
        );
        assert_eq!(
            filters(None, &["db-*"], &[])
                .excluding(id, &context)
                .as_deref(),
            Some("name db-*")
        );
        assert_eq!(
            filters(None, &[], &["*cmk"])
                .excluding(id, &context)
                .as_deref(),
            Some("excluding *cmk")
        );
        let mut tagged = filters(None, &[], &[]);
        tagged.tags = vec![("env".into(), "prod".into())];
        assert_eq!(
            tagged.excluding(id, &context),
            None,
            "no tags recorded: not judged"
        );
        let with_tags = serde_json::json!({"target": {"id": id, "tags": {"ENV": "dev"}}});
        assert_eq!(
            tagged.excluding(id, &with_tags).as_deref(),
            Some("tag env=prod")
        );
    }

    fn filters(rg: Option<&str>, tags: &[&str], names: &[&str], excludes: &[&str]) -> Filters {
        Filters {
            resource_group: rg.map(String::from),
            tags: tags
                .iter()
                .map(|t| Filters::parse_tag(t).unwrap())
                .collect(),
            names: names
                .iter()
                .map(|n| Filters::parse_glob(n).unwrap())
                .collect(),
            excludes: excludes
                .iter()
                .map(|n| Filters::parse_glob(n).unwrap())
                .collect(),
        }
    }

    fn levels(server_tags: Value, db_tags: Value) -> Vec<(String, Value)> {
        vec![
            (
                "server".into(),
                json!({"name": "sql1", "resourceGroup": "RG1", "tags": server_tags}),
            ),
            (
                "database".into(),
                json!({"name": "db-Payments", "resourceGroup": "RG1", "tags": db_tags,
                "id": "/subscriptions/s/resourceGroups/RG1/providers/Microsoft.Sql/servers/sql1/databases/db-Payments"}),
            ),
        ]
    }

    #[test]
    fn database_matches_tags_through_its_server() {
        let f = filters(None, &["data-classification=critical"], &[], &[]);
        assert!(f.keeps_target(&levels(
            json!({"Data-Classification": "critical"}),
            json!(null)
        )));
        assert!(f.keeps_target(&levels(
            json!(null),
            json!({"data-classification": "critical"})
        )));
        assert!(!f.keeps_target(&levels(
            json!({"data-classification": "Critical"}),
            json!(null)
        )));
        let both = filters(None, &["a=1", "b=2"], &[], &[]);
        assert!(both.keeps_target(&levels(json!({"a": "1"}), json!({"b": "2"}))));
        assert!(!both.keeps_target(&levels(json!({"a": "1"}), json!({}))));
    }

    #[test]
    fn names_and_excludes_are_case_insensitive_globs() {
        assert!(
            filters(None, &[], &["db-pay*"], &[]).keeps_target(&levels(json!(null), json!(null)))
        );
        assert!(
            !filters(None, &[], &["other*"], &[]).keeps_target(&levels(json!(null), json!(null)))
        );
        assert!(
            !filters(None, &[], &[], &["*PAY*"]).keeps_target(&levels(json!(null), json!(null)))
        );
        assert!(
            filters(None, &[], &["*/servers/sql1/*"], &[])
                .keeps_target(&levels(json!(null), json!(null)))
        );
    }

    #[test]
    fn resource_group_compares_case_insensitively() {
        assert!(filters(Some("rg1"), &[], &[], &[]).keeps_level(&json!({"resourceGroup": "RG1"})));
        assert!(!filters(Some("rg2"), &[], &[], &[]).keeps_level(&json!({"resourceGroup": "RG1"})));
    }

    #[test]
    fn the_group_check_keeps_a_dash_name_a_value() {
        assert_eq!(
            group_exists_argv("-rg.ops(1)"),
            ["az", "group", "exists", "--name=-rg.ops(1)"]
        );
    }

    #[test]
    fn bad_tag_and_glob_are_explained() {
        assert!(
            Filters::parse_tag("novalue")
                .unwrap_err()
                .contains("KEY=VALUE")
        );
        assert_eq!(Filters::parse_tag("k=").unwrap(), ("k".into(), "".into()));
        assert!(Filters::parse_glob("[").is_err());
    }
}
