//! From TOML text to a validated [`Playbook`], with every error located by file, line, column.

use super::expr::Expr;
use super::shape::{Shape, closest};
use super::template::{Part, Template};
use super::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

mod argv;
mod steps;

use argv::is_long_option;

/// The built-in playbooks, compiled into the binary so that azbook works from any directory.
const BUILTIN: &[(&str, &str)] = &[
    (
        "storage-account-mmk.toml",
        include_str!("../../../playbooks/storage-account-mmk.toml"),
    ),
    (
        "storage-encryption-scope-mmk.toml",
        include_str!("../../../playbooks/storage-encryption-scope-mmk.toml"),
    ),
    (
        "sql-server-tde-protector-mmk.toml",
        include_str!("../../../playbooks/sql-server-tde-protector-mmk.toml"),
    ),
    (
        "sql-managed-instance-tde-protector-mmk.toml",
        include_str!("../../../playbooks/sql-managed-instance-tde-protector-mmk.toml"),
    ),
    (
        "sql-database-tde-mmk.toml",
        include_str!("../../../playbooks/sql-database-tde-mmk.toml"),
    ),
];

/// Roots a playbook may not use as a discovery level name: they have fixed meanings.
const RESERVED_ROOTS: &[&str] = &["target", "before", "read", "state"];

/// Options azbook sets itself on every call; a playbook setting them could change what a run
/// reads (another subscription, table output) behind the operator's back.
const RESERVED_FLAGS: &[&str] = &["--subscription", "--output", "-o", "--query", "--ids"];

/// az commands that change az's own configuration or sign-in rather than a resource.
const FORBIDDEN_COMMANDS: &[&str] = &[
    "login",
    "logout",
    "account set",
    "account clear",
    "config",
    "configure",
    "extension",
    "upgrade",
    "cloud",
    "interactive",
    "init",
    "self-test",
];

/// What an az command does that no later command can take back, judged from its command words
/// (lower-cased): `None` for every other command. A step that runs such a command must declare
/// itself (`reversible = false` and a `warning` saying what is lost), a plan marks it, and apply
/// runs it only with `--allow-destructive`; a read may never run one.
///
/// The words decide, not the resource: `az group delete`, `az storage account delete`,
/// `az sql server key delete`, `az storage blob delete-batch`, `az keyvault key purge`,
/// `az ... network-rule remove`, `az storage account revoke-delegation-keys`,
/// `az storage account keys renew`, `az cosmosdb keys regenerate`, `az redis regenerate-keys`,
/// `az iot hub policy renew-key`, `az ad sp credential reset`, `az role assignment create` (and
/// `az keyvault role assignment create`), `az ad app permission grant`, `az keyvault set-policy`.
/// `az sql server key create` registers a key and destroys nothing. Generic commands (`az rest`,
/// `az resource invoke-action`, `az deployment group create`) say nothing in their words and are
/// not judged.
pub fn destructive_command(words: &[&str]) -> Option<&'static str> {
    let words: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let ends_with = |tail: &[&str]| {
        words.len() >= tail.len() && words[words.len() - tail.len()..].iter().eq(tail.iter())
    };
    let last = words.last().map(String::as_str).unwrap_or("");
    let verb = |v: &str| last == v || last.starts_with(&format!("{v}-"));
    if verb("delete") {
        Some("deletes")
    } else if verb("purge") {
        Some("purges")
    } else if verb("remove") || last == "clear" {
        Some("removes")
    } else if last.starts_with("revoke") {
        Some("revokes")
    } else if verb("renew") || verb("regenerate") || ends_with(&["credential", "reset"]) {
        Some("regenerates keys or credentials")
    } else if ends_with(&["role", "assignment", "create"])
        || ends_with(&["permission", "grant"])
        || ends_with(&["permission", "admin-consent"])
        || ends_with(&["keyvault", "set-policy"])
        || ends_with(&["ad-admin", "create"])
        || ends_with(&["member", "add"])
        || ends_with(&["owner", "add"])
    {
        Some("grants access")
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// All problems found in one file (a playbook author fixes them in one go).
#[derive(Debug)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// Loads every built-in playbook.
pub fn builtin() -> Vec<Playbook> {
    BUILTIN
        .iter()
        .map(|(file, text)| {
            parse(
                &format!("playbooks/{file}"),
                text,
                &format!("builtin:{file}"),
            )
            .unwrap_or_else(|e| panic!("built-in playbook {file} is invalid:\n{e}"))
        })
        .collect()
}

/// Playbooks larger than this are refused before parsing: no real playbook comes near it,
/// and a multi-megabyte file is a mistake or an attack on the parser.
const MAX_PLAYBOOK_BYTES: u64 = 1024 * 1024;

pub fn load_file(path: &Path) -> Result<Playbook, LoadErrors> {
    let name = path.display().to_string();
    let whole_file = |message: String| {
        LoadErrors(vec![LoadError {
            file: name.clone(),
            line: 1,
            column: 1,
            message,
        }])
    };
    let meta =
        std::fs::metadata(path).map_err(|e| whole_file(format!("cannot read playbook: {e}")))?;
    if meta.len() > MAX_PLAYBOOK_BYTES {
        return Err(whole_file(format!(
            "playbook is {} bytes; the limit is {MAX_PLAYBOOK_BYTES}",
            meta.len()
        )));
    }
    let bytes =
        std::fs::read(path).map_err(|e| whole_file(format!("cannot read playbook: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| whole_file(format!("playbook is not UTF-8 text: {e}")))?;
    parse(&name, &text, &name)
}

/// Resolves `--playbook` values: a built-in id, or a path to a TOML file. None given selects
/// every built-in playbook.
pub fn select(values: &[String]) -> Result<Vec<Playbook>, anyhow::Error> {
    let builtins = builtin();
    if values.is_empty() {
        return Ok(builtins);
    }
    let mut builtins: Vec<Option<Playbook>> = builtins.into_iter().map(Some).collect();
    let ids: Vec<String> = builtins
        .iter()
        .map(|p| p.as_ref().map(|p| p.id.clone()).unwrap_or_default())
        .collect();
    let mut selected: Vec<Playbook> = Vec::new();
    for value in values {
        if let Some(i) = ids.iter().position(|id| id == value) {
            if let Some(p) = builtins[i].take() {
                selected.push(p);
            }
            continue;
        }
        let path = Path::new(value);
        if path.exists() || value.ends_with(".toml") || value.contains('/') {
            let p = load_file(path).map_err(anyhow::Error::new)?;
            if selected.iter().any(|s| s.id == p.id) {
                anyhow::bail!("two selected playbooks have the id `{}`", p.id);
            }
            selected.push(p);
            continue;
        }
        let known: Vec<&str> = ids.iter().map(String::as_str).collect();
        let hint = closest(value, &known)
            .map(|c| format!(" Did you mean `{c}`?"))
            .unwrap_or_default();
        anyhow::bail!(
            "no playbook `{value}`: it is neither a built-in playbook nor a file.{hint} \
             Run `azbook list` to see the built-in ones."
        );
    }
    Ok(selected)
}

// ---- the TOML as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    schema: Spanned<i64>,
    id: Spanned<String>,
    title: Spanned<String>,
    resource_type: Spanned<String>,
    control: RawControl,
    discover: Spanned<Vec<RawDiscover>>,
    test: RawTest,
    #[serde(default)]
    implement: Vec<RawStep>,
    #[serde(default)]
    backout: Vec<RawStep>,
    #[serde(default)]
    precheck: Vec<RawPrecheck>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrecheck {
    name: Spanned<String>,
    read: RawArgv,
    when: Option<Spanned<String>>,
    #[serde(default = "yes")]
    subscription: bool,
    warning: String,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    id: Spanned<String>,
    title: Spanned<String>,
    benchmark: Option<String>,
    level: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscover {
    name: Spanned<String>,
    argv: RawArgv,
    #[serde(default)]
    skip: Vec<RawSkip>,
    next_marker: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSkip {
    when: Spanned<String>,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    read: Option<RawArgv>,
    reads: Option<Spanned<BTreeMap<String, RawArgv>>>,
    /// Named reads that run only for the targets whose condition holds (null for the others).
    #[serde(default)]
    read_when: BTreeMap<String, Spanned<String>>,
    refresh: Option<RawArgv>,
    compliant: Spanned<String>,
    #[serde(default)]
    evidence: Vec<Spanned<String>>,
    #[serde(default)]
    record: Vec<Spanned<String>>,
    #[serde(default)]
    controlled: Vec<Spanned<String>>,
    #[serde(default)]
    not_compared: Vec<RawNotCompared>,
    #[serde(default)]
    explain: Vec<RawExplain>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotCompared {
    field: Spanned<String>,
    reason: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExplain {
    when: Spanned<String>,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Spanned<String>,
    kind: Option<Spanned<String>>,
    argv: Option<RawArgv>,
    instructions: Option<Spanned<String>>,
    when: Option<Spanned<String>>,
    reversible: Option<bool>,
    warning: Option<String>,
    long_running: Option<Spanned<String>>,
    after: Option<Spanned<BTreeMap<String, toml::Value>>>,
    skip_if: Option<RawSkipIf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSkipIf {
    read: RawArgv,
    when: Spanned<String>,
}

type RawArgv = Spanned<Vec<Spanned<RawArg>>>;

#[derive(Deserialize)]
#[serde(untagged)]
enum RawArg {
    Plain(String),
    Conditional(RawConditional),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConditional {
    arg: String,
    when: Option<String>,
    each: Option<String>,
}

// ---- validation ----

struct Loader<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<LoadError>,
}

/// Parses and validates one playbook. `file` names it in messages; `origin` is recorded.
pub fn parse(file: &str, text: &str, origin: &str) -> Result<Playbook, LoadErrors> {
    let mut loader = Loader {
        file,
        text,
        errors: Vec::new(),
    };
    let raw: RawPlaybook = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            let message = e
                .message()
                .trim()
                .replace("expected i64", "expected an integer")
                .replace(
                "data did not match any variant of untagged enum RawArg",
                "an argv element must be a string, or a table `{ arg = \"...\", when = \"...\" }`",
            );
            loader.error_at(at, message);
            return Err(LoadErrors(loader.errors));
        }
    };
    let playbook = loader.validate(raw, origin);
    if loader.errors.is_empty() {
        Ok(playbook.expect("no errors means a playbook"))
    } else {
        Err(LoadErrors(loader.errors))
    }
}

/// Which roots a template or condition may name, with their shapes.
type Roots = Vec<(String, Shape)>;

impl Loader<'_> {
    fn error_at(&mut self, byte: usize, message: impl Into<String>) {
        let byte = byte.min(self.text.len());
        let before = &self.text[..byte];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        self.errors.push(LoadError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        });
    }

    fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.error_at(span.start, message);
    }

    /// An error at character `offset` inside the string value `inner` that TOML holds at
    /// `span`; falls back to the start of the value when the string was written with escapes.
    fn error_inside(&mut self, span: &Range<usize>, inner: &str, offset: usize, message: String) {
        let raw = &self.text[span.clone()];
        let at = match raw.find(inner) {
            Some(pos) => {
                let byte_offset: usize = inner.chars().take(offset).map(char::len_utf8).sum();
                span.start + pos + byte_offset
            }
            None => span.start,
        };
        self.error_at(at, message);
    }

    /// Runs every check even after one fails, so that an author sees all the problems at once.
    /// `None` only when no playbook can be built (its verdict did not compile); `parse` refuses
    /// the playbook whenever any error was recorded.
    fn validate(&mut self, raw: RawPlaybook, origin: &str) -> Option<Playbook> {
        self.check_header(&raw);
        let RawPlaybook {
            id,
            title,
            resource_type,
            control,
            discover,
            test,
            implement,
            backout,
            precheck,
            ..
        } = raw;
        let (levels, roots) = self.discovery(discover);
        let target_shape = roots.last().map(|(_, s)| s.clone()).unwrap_or(Shape::Any);
        let read_roots = read_roots(&roots, &target_shape);
        let test = self.test(test, &read_roots, &target_shape, !implement.is_empty());
        let step_roots = step_roots(&read_roots, &test.state_shape, &test.record);
        let implement = self.steps(implement, &step_roots, &test.record);
        let backout = self.steps(backout, &step_roots, &test.record);
        let prechecks = self.prechecks(precheck, &step_roots);
        Some(Playbook {
            id: id.into_inner(),
            title: title.into_inner(),
            resource_type: resource_type.into_inner(),
            control: Control {
                id: control.id.into_inner(),
                title: control.title.into_inner(),
                benchmark: control.benchmark,
                level: control.level,
            },
            origin: origin.to_string(),
            discover: levels,
            source: self.text.to_string(),
            test: test.into_spec()?,
            implement,
            backout,
            prechecks,
        })
    }

    /// The fields that name and describe the playbook: a schema this azbook reads, an id usable
    /// on the command line, and titles that say something.
    fn check_header(&mut self, raw: &RawPlaybook) {
        if *raw.schema.get_ref() != 1 {
            self.error(
                &raw.schema.span(),
                format!(
                    "schema {} is not supported: this azbook reads schema 1",
                    raw.schema.get_ref()
                ),
            );
        }
        let id = raw.id.get_ref();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            self.error(
                &raw.id.span(),
                "id must be lower-case letters, digits and `-` (it names the playbook on the command line)",
            );
        }
        for (field, span) in [
            (&raw.title, raw.title.span()),
            (&raw.resource_type, raw.resource_type.span()),
            (&raw.control.id, raw.control.id.span()),
            (&raw.control.title, raw.control.title.span()),
        ] {
            if field.get_ref().trim().is_empty() {
                self.error(&span, "must not be empty");
            }
        }
    }

    /// The discovery levels, and per level the shape of its items: the roots that the levels
    /// below it, the test and the steps may name.
    fn discovery(&mut self, raw: Spanned<Vec<RawDiscover>>) -> (Vec<DiscoverLevel>, Roots) {
        let mut levels = Vec::new();
        let mut roots: Roots = Vec::new();
        if raw.get_ref().is_empty() {
            self.error(
                &raw.span(),
                "`discover` needs at least one level (the list call that finds targets)",
            );
        }
        for level in raw.into_inner() {
            self.check_level_name(&level.name, &roots);
            let argv = self.read_argv(&level.argv, &roots);
            let item_shape = argv
                .as_ref()
                .map(|a| Shape::of_list_item(&a.command_words()))
                .unwrap_or(Shape::Any);
            let skip = self.skip_rules(level.skip, &item_shape);
            let next_marker = level.next_marker.and_then(|m| self.next_marker(m));
            let name = level.name.into_inner();
            roots.push((name.clone(), item_shape));
            if let Some(argv) = argv {
                levels.push(DiscoverLevel {
                    name,
                    argv,
                    skip,
                    next_marker,
                });
            }
        }
        (levels, roots)
    }

    /// `next_marker`: the long option (`--marker`) that asks az for the page after a marker.
    fn next_marker(&mut self, raw: Spanned<String>) -> Option<String> {
        let option = raw.get_ref();
        if is_long_option(option) {
            Some(option.clone())
        } else {
            self.error(
                &raw.span(),
                format!("`next_marker` must be the option that takes az's page marker, such as \"--marker\"; `{option}` is not a long option"),
            );
            None
        }
    }

    /// A level's name becomes a root that templates and conditions name: an identifier, none of
    /// the roots with fixed meanings, and no other level's.
    fn check_level_name(&mut self, raw: &Spanned<String>, roots: &Roots) {
        let name = raw.get_ref();
        if !is_identifier(name) || RESERVED_ROOTS.contains(&name.as_str()) {
            self.error(
                &raw.span(),
                format!(
                    "discovery level name `{name}` must be an identifier other than {}",
                    RESERVED_ROOTS.join(", ")
                ),
            );
        } else if roots.iter().any(|(r, _)| r == name) {
            self.error(
                &raw.span(),
                format!("discovery level `{name}` is named twice"),
            );
        }
    }

    /// A level's `skip` rules, whose conditions read the level's items.
    fn skip_rules(&mut self, raw: Vec<RawSkip>, item_shape: &Shape) -> Vec<SkipRule> {
        let mut skip = Vec::new();
        for rule in raw {
            if let Some(when) = self.condition(&rule.when, item_shape) {
                skip.push(SkipRule {
                    when,
                    reason: rule.reason,
                });
            }
        }
        skip
    }

    /// The `[test]` table: what it reads, and the verdict, evidence, record and explanations
    /// checked against the state those reads give.
    fn test(
        &mut self,
        test: RawTest,
        read_roots: &Roots,
        target_shape: &Shape,
        has_implement: bool,
    ) -> CheckedTest {
        let (reads, state_shape) = self.reads(&test, read_roots, target_shape);
        let refresh = self.refresh(&reads, &test, read_roots, has_implement);
        let compliant = self.condition(&test.compliant, &state_shape);
        let evidence = self.plain_paths(&test.evidence, &state_shape);
        let record = self.paths(&test.record, &state_shape);
        let controlled = self.plain_paths(&test.controlled, &state_shape);
        if let (Reads::Named(_), None) = (&reads, &refresh)
            && reads_target(compliant.as_ref(), &evidence, &record)
            && has_implement
        {
            self.error(
                &test.compliant.span(),
                "this test reads `target` fields from discovery, so `[test]` needs `refresh`: the per-target read (such as `az ... show`) that apply and backout use to read the target back",
            );
        }
        self.check_controlled_recorded(&controlled, &test.controlled, &record);
        let not_compared =
            self.not_compared(&test.not_compared, &state_shape, &record, &controlled);
        let explain = self.explain(test.explain, &state_shape);
        CheckedTest {
            reads,
            refresh,
            compliant,
            evidence,
            record,
            controlled,
            not_compared,
            explain,
            state_shape,
        }
    }

    /// Recorded fields that backout writes but never judges, each with why: a field the service
    /// may change on its own would otherwise make every target drifted.
    fn not_compared(
        &mut self,
        raw: &[RawNotCompared],
        state_shape: &Shape,
        record: &[FieldPath],
        controlled: &[FieldPath],
    ) -> Vec<(FieldPath, String)> {
        let mut out = Vec::new();
        for entry in raw {
            let Some(path) = self
                .plain_paths(std::slice::from_ref(&entry.field), state_shape)
                .pop()
            else {
                continue;
            };
            if !record.iter().any(|r| path.starts_with(r)) {
                self.error(
                    &entry.field.span(),
                    format!("`{path}` is not in `record`: only a recorded field can be restored without being compared"),
                );
            } else if controlled.contains(&path) {
                self.error(
                    &entry.field.span(),
                    format!(
                        "`{path}` is controlled: the verdict reads it, so backout must compare it"
                    ),
                );
            } else if entry.reason.get_ref().trim().is_empty() {
                self.error(
                    &entry.reason.span(),
                    "say why the field is not compared: a reader of the playbook must be able to check it",
                );
            } else {
                out.push((path, entry.reason.get_ref().clone()));
            }
        }
        out
    }

    /// What the test reads per target (`read`, `reads`, or neither: the discovered item is the
    /// state), and the shape of the state the verdict then reads.
    fn reads(
        &mut self,
        test: &RawTest,
        read_roots: &Roots,
        target_shape: &Shape,
    ) -> (Reads, Shape) {
        if test.reads.is_none()
            && let Some((_, when)) = test.read_when.iter().next()
        {
            self.error(
                &when.span(),
                "`read_when` makes reads of `[test.reads]` conditional, and this test has none",
            );
        }
        match (&test.read, &test.reads) {
            (Some(_), Some(reads)) => {
                self.error(&reads.span(), "give either `read` or `reads`, not both");
                (Reads::None, Shape::Any)
            }
            (Some(read), None) => match self.read_argv(read, read_roots) {
                Some(argv) => {
                    let shape = Shape::of_command(&argv.command_words());
                    (Reads::One(argv), shape)
                }
                None => (Reads::None, Shape::Any),
            },
            (None, Some(reads)) => self.named_reads(test, reads, read_roots, target_shape),
            (None, None) => (Reads::None, target_shape.clone()),
        }
    }

    /// `[test.reads]`: each read's output is the state's field of that name. The state also
    /// holds the discovered item as `target`, so that a verdict can read a field the list
    /// already carries instead of reading it again.
    fn named_reads(
        &mut self,
        test: &RawTest,
        reads: &Spanned<BTreeMap<String, RawArgv>>,
        read_roots: &Roots,
        target_shape: &Shape,
    ) -> (Reads, Shape) {
        let mut named = Vec::new();
        let mut shapes = vec![("target".to_string(), target_shape.clone())];
        let context = Shape::object(read_roots.iter().cloned());
        for (name, argv) in reads.get_ref() {
            if !is_identifier(name) {
                self.error(
                    &argv.span(),
                    format!("read name `{name}` must be an identifier"),
                );
            }
            if name == "target" {
                self.error(
                    &argv.span(),
                    "`target` is not a read name: the state already holds the discovered target under it",
                );
            }
            let when = test
                .read_when
                .get(name)
                .map(|w| self.condition(w, &context));
            if let Some(argv) = self.read_argv(argv, read_roots)
                && let Some(when) = when.map_or(Some(None), |w| w.map(Some))
            {
                shapes.push((name.clone(), Shape::of_command(&argv.command_words())));
                named.push(NamedRead {
                    name: name.clone(),
                    argv,
                    when,
                });
            }
        }
        for (name, when) in &test.read_when {
            if !reads.get_ref().contains_key(name) {
                self.error(
                    &when.span(),
                    format!("`read_when` names `{name}`, which is not a read of `[test.reads]`"),
                );
            }
        }
        (Reads::Named(named), Shape::object(shapes))
    }

    /// The per-target read that apply and backout use to read a target back: a state read from
    /// discovery (a list) needs one, and a test with `read` already has one.
    fn refresh(
        &mut self,
        reads: &Reads,
        test: &RawTest,
        read_roots: &Roots,
        has_implement: bool,
    ) -> Option<Argv> {
        match (reads, &test.refresh) {
            (Reads::None | Reads::Named(_), Some(argv)) => self.read_argv(argv, read_roots),
            (Reads::None, None) => {
                if has_implement {
                    self.error(
                        &test.compliant.span(),
                        "this test reads each target's state from discovery, so `[test]` needs `refresh`: the per-target read (such as `az ... show`) that apply and backout use to read a target back",
                    );
                }
                None
            }
            (_, Some(argv)) => {
                self.error(
                    &argv.span(),
                    "`refresh` is not for a test with `read`: that read already reads one target",
                );
                None
            }
            (_, None) => None,
        }
    }

    /// Backout tells done from drifted by comparing the controlled fields with the recorded
    /// prior state, so each must be recorded.
    fn check_controlled_recorded(
        &mut self,
        controlled: &[FieldPath],
        raw: &[Spanned<String>],
        record: &[FieldPath],
    ) {
        for (path, raw_path) in controlled.iter().zip(raw) {
            if !record.iter().any(|r| path.starts_with(r)) {
                self.error(
                    &raw_path.span(),
                    format!("controlled field `{path}` must also be in `record`: backout compares it with the recorded prior state"),
                );
            }
        }
    }

    /// The test's `explain` entries, whose conditions read the state as the verdict does.
    fn explain(&mut self, raw: Vec<RawExplain>, state_shape: &Shape) -> Vec<Explain> {
        let mut explain = Vec::new();
        for e in raw {
            if let Some(when) = self.condition(&e.when, state_shape) {
                explain.push(Explain { when, text: e.text });
            }
        }
        explain
    }

    fn condition(&mut self, raw: &Spanned<String>, shape: &Shape) -> Option<Expr> {
        let source = raw.get_ref();
        let expr = match Expr::compile(source) {
            Ok(e) => e,
            Err(e) => {
                self.error_inside(&raw.span(), source, e.offset, e.message);
                return None;
            }
        };
        let mut ok = true;
        for (field, offset) in expr.root_fields() {
            if let Err(msg) = shape.lookup(&field) {
                self.error_inside(
                    &raw.span(),
                    source,
                    offset,
                    format!(
                        "`{}` names a field that cannot exist: {msg}",
                        field.join(".")
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(expr)
    }

    /// Paths that name one value each: `*` (every key of a map) belongs in `record` only.
    fn plain_paths(&mut self, raw: &[Spanned<String>], shape: &Shape) -> Vec<FieldPath> {
        for item in raw {
            if FieldPath::parse(item.get_ref()).is_ok_and(|p| p.has_every_key()) {
                self.error(
                    &item.span(),
                    format!("`{}`: `*` (every key of a map) is for `record` only, where it keeps a map by its keys", item.get_ref()),
                );
            }
        }
        self.paths(raw, shape)
    }

    fn paths(&mut self, raw: &[Spanned<String>], shape: &Shape) -> Vec<FieldPath> {
        let mut out = Vec::new();
        for item in raw {
            match FieldPath::parse(item.get_ref()) {
                Ok(path) => match shape.lookup(path.segments()) {
                    Ok(_) => out.push(path),
                    Err(msg) => self.error(&item.span(), format!("`{path}` cannot exist: {msg}")),
                },
                Err(msg) => self.error(&item.span(), msg),
            }
        }
        out
    }
}

/// A `[test]` table as checked, its verdict kept apart: when the verdict does not compile, the
/// steps are still checked against the test's state, and their errors reported with its own.
struct CheckedTest {
    reads: Reads,
    refresh: Option<Argv>,
    compliant: Option<Expr>,
    evidence: Vec<FieldPath>,
    record: Vec<FieldPath>,
    controlled: Vec<FieldPath>,
    not_compared: Vec<(FieldPath, String)>,
    explain: Vec<Explain>,
    /// The state the verdict reads; `before` in steps is its recorded part.
    state_shape: Shape,
}

impl CheckedTest {
    /// The test, or `None` when its verdict did not compile (that error is already recorded).
    fn into_spec(self) -> Option<TestSpec> {
        Some(TestSpec {
            reads: self.reads,
            refresh: self.refresh,
            compliant: self.compliant?,
            evidence: self.evidence,
            record: self.record,
            controlled: self.controlled,
            not_compared: self.not_compared,
            explain: self.explain,
        })
    }
}

/// Reads see the target (an item of the last discovery level) and the levels above it.
fn read_roots(roots: &Roots, target_shape: &Shape) -> Roots {
    let mut read_roots: Roots = vec![("target".into(), target_shape.clone())];
    read_roots.extend(roots.iter().take(roots.len().saturating_sub(1)).cloned());
    read_roots
}

/// Steps see what reads see and, as `before`, the recorded part of the prior state.
fn step_roots(read_roots: &Roots, state_shape: &Shape, record: &[FieldPath]) -> Roots {
    let record_segments: Vec<Vec<String>> = record.iter().map(|p| p.segments().to_vec()).collect();
    let mut step_roots = read_roots.clone();
    step_roots.push(("before".into(), state_shape.restrict(&record_segments)));
    step_roots
}

/// Whether the verdict, evidence or record name a `target` field: one that comes from
/// discovery rather than from a named read.
fn reads_target(compliant: Option<&Expr>, evidence: &[FieldPath], record: &[FieldPath]) -> bool {
    compliant.is_some_and(|e| e.root_fields().iter().any(|(p, _)| p[0] == "target"))
        || evidence.iter().chain(record).any(|p| p.first() == "target")
}

fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
