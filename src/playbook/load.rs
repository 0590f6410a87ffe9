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

/// The built-in playbooks, compiled into the binary so that azbook works from any directory.
const BUILTIN: &[(&str, &str)] = &[
    (
        "storage-account-mmk.toml",
        include_str!("../../playbooks/storage-account-mmk.toml"),
    ),
    (
        "storage-encryption-scope-mmk.toml",
        include_str!("../../playbooks/storage-encryption-scope-mmk.toml"),
    ),
    (
        "sql-server-tde-protector-mmk.toml",
        include_str!("../../playbooks/sql-server-tde-protector-mmk.toml"),
    ),
    (
        "sql-managed-instance-tde-protector-mmk.toml",
        include_str!("../../playbooks/sql-managed-instance-tde-protector-mmk.toml"),
    ),
    (
        "sql-database-tde-mmk.toml",
        include_str!("../../playbooks/sql-database-tde-mmk.toml"),
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
        let evidence = self.paths(&test.evidence, &state_shape);
        let record = self.paths(&test.record, &state_shape);
        let controlled = self.paths(&test.controlled, &state_shape);
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
                .paths(std::slice::from_ref(&entry.field), state_shape)
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

    /// The prechecks, whose reads see what steps see.
    fn prechecks(&mut self, raw: Vec<RawPrecheck>, roots: &Roots) -> Vec<Precheck> {
        let mut prechecks = Vec::new();
        for check in raw {
            if check.name.get_ref().trim().is_empty() {
                self.error(
                    &check.name.span(),
                    "a precheck needs a name that says what it confirms",
                );
            }
            let context = Shape::object(roots.iter().cloned());
            let when = check.when.as_ref().map(|w| self.condition(w, &context));
            if let Some(read) = self.read_argv(&check.read, roots)
                && let Some(when) = when.map_or(Some(None), |w| w.map(Some))
            {
                prechecks.push(Precheck {
                    name: check.name.into_inner(),
                    read,
                    when,
                    subscription: check.subscription,
                    warning: check.warning,
                });
            }
        }
        prechecks
    }

    /// The steps of `implement` or `backout`, leaving out those that cannot run.
    fn steps(&mut self, raw: Vec<RawStep>, roots: &Roots, record: &[FieldPath]) -> Vec<Step> {
        let context = Shape::object(roots.iter().cloned());
        let mut steps = Vec::new();
        for step in raw {
            if let Some(step) = self.step(step, roots, &context, record) {
                steps.push(step);
            }
        }
        steps
    }

    /// One step; `None` when it cannot run (what is wrong with it is reported). `context` is
    /// `roots` as one document, what the step's `when` reads.
    fn step(
        &mut self,
        step: RawStep,
        roots: &Roots,
        context: &Shape,
        record: &[FieldPath],
    ) -> Option<Step> {
        if step.name.get_ref().trim().is_empty() {
            self.error(
                &step.name.span(),
                "a step needs a name that says what it does",
            );
        }
        let action = self.action(&step, roots);
        let when = step.when.as_ref().and_then(|w| self.condition(w, context));
        let after = match &step.after {
            Some(raw_after) => self.after(raw_after, record),
            None => Vec::new(),
        };
        let skip_if = step.skip_if.as_ref().and_then(|s| self.skip_if(s, roots));
        if step.skip_if.is_some() && skip_if.is_none() {
            return None;
        }
        if let (Some(Action::Az(argv)), Some(raw_argv)) = (&action, &step.argv) {
            self.check_destructive(argv, raw_argv, step.reversible, step.warning.as_deref());
        }
        let reversible = step.reversible.unwrap_or(true);
        let long_running = step.long_running.map(|text| {
            let manual = matches!(action, Some(Action::Manual(_)));
            if manual || text.get_ref().trim().is_empty() {
                self.error(
                    &text.span(),
                    "`long_running` says, for an az step, why it can take minutes (plans and apply show it)",
                );
            }
            text.into_inner()
        });
        Some(Step {
            name: step.name.into_inner(),
            action: action?,
            when,
            reversible,
            warning: step.warning,
            long_running,
            after,
            skip_if,
        })
    }

    /// A step whose command deletes, purges, removes, revokes, regenerates keys or grants access
    /// (`destructive_command`) cannot be taken back by a backout step: it must say so itself,
    /// with `reversible = false` and a `warning` that tells the reader of every plan what is lost.
    fn check_destructive(
        &mut self,
        argv: &Argv,
        raw: &RawArgv,
        reversible: Option<bool>,
        warning: Option<&str>,
    ) {
        let Some(what) = argv.destructive() else {
            return;
        };
        let mut missing = Vec::new();
        if reversible != Some(false) {
            missing.push("`reversible = false`");
        }
        if warning.is_none_or(|w| w.trim().is_empty()) {
            missing.push("a `warning` saying what is lost");
        }
        if !missing.is_empty() {
            self.error(
                &raw.span(),
                format!(
                    "`az {}` {what}, which no backout step can take back: the step must declare it with {} (plans then mark it DESTRUCTIVE, and apply runs it only with --allow-destructive)",
                    argv.command_words().join(" "),
                    missing.join(" and ")
                ),
            );
        }
    }

    /// An argv that only reads (discovery, the test's reads, `refresh`, a precheck, a `skip_if`
    /// read): it may never run a command that deletes, revokes or grants.
    fn read_argv(&mut self, raw: &RawArgv, roots: &Roots) -> Option<Argv> {
        let argv = self.argv(raw, roots)?;
        if let Some(what) = argv.destructive() {
            self.error(
                &raw.span(),
                format!(
                    "`az {}` {what}: a read (discovery, the test, refresh, a precheck or skip_if) must change nothing; only an implement or backout step may run it",
                    argv.command_words().join(" ")
                ),
            );
            return None;
        }
        Some(argv)
    }

    /// What a step does: run its `argv` (`kind = "az"`, the default), or show a person its
    /// `instructions` (`kind = "manual"`).
    fn action(&mut self, step: &RawStep, roots: &Roots) -> Option<Action> {
        let name_span = step.name.span();
        let kind = step
            .kind
            .as_ref()
            .map(|k| k.get_ref().as_str())
            .unwrap_or("az");
        match (kind, &step.argv, &step.instructions) {
            ("az", Some(argv), None) => self.argv(argv, roots).map(Action::Az),
            ("az", None, _) => {
                self.error(
                    &name_span,
                    "an `az` step needs `argv` (or say `kind = \"manual\"` with `instructions`)",
                );
                None
            }
            ("az", Some(_), Some(i)) => {
                self.error(
                    &i.span(),
                    "`instructions` belong to manual steps; this step runs `argv`",
                );
                None
            }
            ("manual", None, Some(text)) => self.template(text, roots).map(Action::Manual),
            ("manual", Some(argv), _) => {
                self.error(
                    &argv.span(),
                    "a manual step is done by a person and has no `argv`",
                );
                None
            }
            ("manual", None, None) => {
                self.error(&name_span, "a manual step needs `instructions`");
                None
            }
            (other, _, _) => {
                let span = step
                    .kind
                    .as_ref()
                    .map(|k| k.span())
                    .unwrap_or(name_span.clone());
                self.error(
                    &span,
                    format!("unknown step kind `{other}`: use `az` or `manual`"),
                );
                None
            }
        }
    }

    /// A step's `after`: the values it predicts for recorded fields, so only those may be named.
    fn after(
        &mut self,
        raw: &Spanned<BTreeMap<String, toml::Value>>,
        record: &[FieldPath],
    ) -> Vec<(FieldPath, serde_json::Value)> {
        let mut after = Vec::new();
        for (key, value) in raw.get_ref() {
            match FieldPath::parse(key) {
                Ok(path) if record.iter().any(|r| path.starts_with(r)) => {
                    let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
                    after.push((path, json));
                }
                Ok(path) => self.error(
                    &raw.span(),
                    format!("`after` names `{path}`, which is not in the test's `record` list"),
                ),
                Err(e) => self.error(&raw.span(), e),
            }
        }
        after
    }

    /// A step's `skip_if`: its condition reads what the steps see and, as `read`, what its own
    /// read returns.
    fn skip_if(&mut self, raw: &RawSkipIf, roots: &Roots) -> Option<SkipIf> {
        let read = self.read_argv(&raw.read, roots)?;
        let mut with_read = roots.clone();
        with_read.push(("read".into(), Shape::of_command(&read.command_words())));
        let when = self.condition(&raw.when, &Shape::object(with_read))?;
        Some(SkipIf { read, when })
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

    fn template(&mut self, raw: &Spanned<String>, roots: &Roots) -> Option<Template> {
        let source = raw.get_ref();
        match Template::parse(source) {
            Ok(t) => self.check_fields(&t, &raw.span(), roots).then_some(t),
            Err(e) => {
                self.error_inside(&raw.span(), source, e.offset, e.message);
                None
            }
        }
    }

    fn check_fields(&mut self, template: &Template, span: &Range<usize>, roots: &Roots) -> bool {
        let mut ok = true;
        let source = template.source();
        for field in template.fields() {
            // Point at the placeholder itself, not at the start of the string.
            let at = source
                .find(&format!("{{{field}}}"))
                .map(|byte| source[..byte].chars().count())
                .unwrap_or(0);
            let report = |loader: &mut Self, message: String| {
                loader.error_inside(span, source, at, message);
            };
            let root = field.first();
            let Some((_, shape)) = roots.iter().find(|(r, _)| r == root) else {
                let names: Vec<&str> = roots.iter().map(|(r, _)| r.as_str()).collect();
                report(
                    self,
                    format!(
                        "`{{{field}}}` names `{root}`, which is not available here; use one of: {}",
                        names.join(", ")
                    ),
                );
                ok = false;
                continue;
            };
            let rest = field
                .rest()
                .map(|r| r.segments().to_vec())
                .unwrap_or_default();
            if let Err(msg) = shape.lookup(&rest) {
                let detail = if root == "before" {
                    format!("`before` holds only the fields in the test's `record` list ({msg})")
                } else {
                    msg
                };
                report(self, format!("`{{{field}}}` cannot exist: {detail}"));
                ok = false;
            }
        }
        ok
    }

    /// An argv: every element checked, all of their problems reported, then the command the
    /// elements name.
    fn argv(&mut self, raw: &RawArgv, roots: &Roots) -> Option<Argv> {
        let context = Shape::object(roots.iter().cloned());
        if raw.get_ref().is_empty() {
            self.error(&raw.span(), "argv is empty");
            return None;
        }
        let mut args = Vec::new();
        let mut ok = true;
        for (i, element) in raw.get_ref().iter().enumerate() {
            match self.arg(i, element, roots, &context) {
                Some(arg) => args.push(arg),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        self.check_command(Argv { args }, &raw.span())
    }

    /// Element `index` of an argv; `None` when it is refused (every reason is reported).
    /// `context` is `roots` as one document, what a conditional element's `when` reads.
    fn arg(
        &mut self,
        index: usize,
        element: &Spanned<RawArg>,
        roots: &Roots,
        context: &Shape,
    ) -> Option<Arg> {
        let span = element.span();
        let (text, when_text, each_text) = match element.get_ref() {
            RawArg::Plain(s) => (s.as_str(), None, None),
            RawArg::Conditional(c) => (c.arg.as_str(), c.when.as_deref(), c.each.as_deref()),
        };
        if let RawArg::Conditional(c) = element.get_ref()
            && c.when.is_none()
            && c.each.is_none()
        {
            self.error(
                &span,
                "a table argument needs `when` (a conditional argument) or `each` (a list-valued one)",
            );
            return None;
        }
        let template = self.arg_template(text, &span)?;
        let mut ok = true;
        if index == 0 {
            ok &= self.check_program(text, when_text.is_some() || each_text.is_some(), &span);
        } else if each_text.is_some() {
            ok &= self.check_list_option(text, &span);
        } else if !template.is_literal() {
            ok &= self.check_placeholder(&template, text, &span, roots);
        }
        let flag = text.split('=').next().unwrap_or("");
        if index > 0 && RESERVED_FLAGS.contains(&flag) {
            self.error(
                &span,
                format!(
                    "`{flag}` is set by azbook on every call and cannot be given in a playbook"
                ),
            );
            ok = false;
        }
        let mut expr = |source: Option<&str>, ok: &mut bool| {
            source.and_then(|w| {
                let spanned = Spanned::new(span.clone(), w.to_string());
                let compiled = self.condition(&spanned, context);
                *ok &= compiled.is_some();
                compiled
            })
        };
        let when = expr(when_text, &mut ok);
        let each = expr(each_text, &mut ok);
        ok.then_some(Arg {
            template,
            when,
            each,
        })
    }

    /// The option of a list-valued argument: a literal long option alone; its values come from
    /// `each`, one argument each, and are checked when the argv is rendered.
    fn check_list_option(&mut self, text: &str, span: &Range<usize>) -> bool {
        if is_long_option(text) {
            return true;
        }
        self.error(
            span,
            format!("`{text}`: a list-valued argument (`each`) must name a long option alone, such as \"--keys\"; its values come from `each`"),
        );
        false
    }

    /// An element's text as a template, refused unparsed when it holds shell syntax or control
    /// characters.
    fn arg_template(&mut self, text: &str, span: &Range<usize>) -> Option<Template> {
        // No shell ever sees these, so shell syntax would not do what its author meant:
        // say so rather than pass `;` or `$(...)` to az as part of an argument.
        if looks_like_shell(text) {
            self.error(
                span,
                format!("`{text}` looks like shell syntax; azbook runs az without a shell and each element is exactly one argument"),
            );
            return None;
        }
        if text.chars().any(|c| c.is_control()) {
            self.error(
                span,
                "an argument must not hold control characters (newlines, NUL)",
            );
            return None;
        }
        match Template::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                self.error_inside(span, text, e.offset, e.message);
                None
            }
        }
    }

    /// The first element names the program: `az`, unconditionally.
    fn check_program(&mut self, text: &str, conditional: bool, span: &Range<usize>) -> bool {
        if text != "az" || conditional {
            self.error(
                span,
                format!("steps run only `az`; `{text}` is not `az` (a playbook cannot name another program)"),
            );
            return false;
        }
        true
    }

    /// An element with a placeholder: exactly `--flag={root.field}`, naming a field that can
    /// exist.
    fn check_placeholder(
        &mut self,
        template: &Template,
        text: &str,
        span: &Range<usize>,
        roots: &Roots,
    ) -> bool {
        if !is_flag_with_placeholder(template) {
            self.error(
                span,
                format!("`{text}`: an argument with a placeholder must be exactly `--flag={{root.field}}`, so that a value can never become an option or add text of its own"),
            );
            return false;
        }
        self.check_fields(template, span, roots)
    }

    /// The command an argv runs (its leading words) must exist and act on a resource, not on
    /// az's own sign-in or configuration.
    fn check_command(&mut self, argv: Argv, span: &Range<usize>) -> Option<Argv> {
        let words = argv.command_words();
        if words.is_empty() {
            self.error(span, "argv names no az command");
            return None;
        }
        let command = words.join(" ");
        if let Some(bad) = FORBIDDEN_COMMANDS
            .iter()
            .find(|f| command == **f || command.starts_with(&format!("{f} ")))
        {
            self.error(
                span,
                format!("`az {bad}` changes az's own sign-in or configuration, not a resource; a playbook cannot run it"),
            );
            return None;
        }
        Some(argv)
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

/// `--flag={root.field}` and nothing more: a lower-case flag, `=`, then one placeholder.
fn is_flag_with_placeholder(template: &Template) -> bool {
    let prefix = template.prefix();
    prefix.starts_with("--")
        && prefix.ends_with('=')
        && prefix.len() > 3
        && prefix[2..prefix.len() - 1]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && template.parts().len() == 2
        && matches!(template.parts()[1], Part::Field(_))
}

/// Separators, substitutions and redirections a shell would act on, or whitespace inside a
/// single argument.
fn looks_like_shell(text: &str) -> bool {
    ["$(", "`", ";", "&&", "||", "|", ">", "<", " "]
        .iter()
        .any(|s| text.contains(s))
}

/// `--option`: two dashes, then lower-case letters, digits and dashes.
fn is_long_option(s: &str) -> bool {
    s.len() > 2
        && s.starts_with("--")
        && s[2..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s[2..].starts_with(|c: char| c.is_ascii_lowercase())
}

fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn by_id<'a>(all: &'a [Playbook], id: &str) -> &'a Playbook {
        all.iter()
            .find(|p| p.id == id)
            .expect("a built-in playbook")
    }

    #[test]
    fn builtin_playbooks_load() {
        let all = builtin();
        let ids: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "storage-account-mmk",
                "storage-encryption-scope-mmk",
                "sql-server-tde-protector-mmk",
                "sql-managed-instance-tde-protector-mmk",
                "sql-database-tde-mmk"
            ]
        );
    }

    #[test]
    fn storage_backout_restores_key_version_exactly() {
        let all = builtin();
        let storage = &all[0];
        let Action::Az(argv) = &storage.backout[0].action else {
            panic!("backout is an az step")
        };
        let ctx = |version: serde_json::Value| {
            json!({"target": {"name": "st1", "resourceGroup": "-rg"},
                   "before": {"encryption": {"keySource": "Microsoft.Keyvault",
                       "keyVaultProperties": {"keyVaultUri": "https://kv.vault.azure.net/", "keyName": "k", "keyVersion": version},
                       "encryptionIdentity": {"encryptionUserAssignedIdentity": null, "encryptionFederatedIdentityClientId": null}}}})
        };
        let null = argv.render(&ctx(json!(null))).unwrap();
        assert!(
            !null
                .iter()
                .any(|a| a.starts_with("--encryption-key-version"))
        );
        let empty = argv.render(&ctx(json!(""))).unwrap();
        assert!(empty.contains(&"--encryption-key-version=".to_string()));
        let pinned = argv.render(&ctx(json!("abc"))).unwrap();
        assert!(pinned.contains(&"--encryption-key-version=abc".to_string()));
        assert!(pinned.contains(&"--resource-group=-rg".to_string()));
    }

    #[test]
    fn discovery_keeps_only_the_fields_the_playbooks_read() {
        let all = builtin();
        let names = |tree: crate::fieldtree::FieldTree| -> Vec<String> {
            tree.top_level()
                .unwrap()
                .into_iter()
                .map(String::from)
                .collect()
        };
        assert_eq!(
            names(all[0].level_fields(0)),
            ["encryption", "id", "name", "resourceGroup", "tags"]
        );
        // Of the account's `encryption`, only the paths the playbook reads.
        let account = serde_json::json!({
            "name": "a",
            "primaryEndpoints": {"blob": "https://a.blob.core.windows.net/"},
            "encryption": {
                "keySource": "Microsoft.Keyvault",
                "keyVaultProperties": {"keyName": "k", "keyVaultUri": "https://v/", "lastKeyRotationTimestamp": "t"},
                "services": {"blob": {"enabled": true, "keyType": "Account"}},
                "requireInfrastructureEncryption": false
            }
        });
        assert_eq!(
            all[0].level_fields(0).trim(account),
            serde_json::json!({"name": "a", "encryption": {
                "keySource": "Microsoft.Keyvault",
                "keyVaultProperties": {"keyName": "k", "keyVaultUri": "https://v/"}
            }})
        );
        assert_eq!(
            names(by_id(&all, "sql-database-tde-mmk").level_fields(0)),
            ["id", "name", "resourceGroup", "tags"]
        );
        // The database list also serves the verdict's database-level key (`target.` fields).
        assert_eq!(
            names(by_id(&all, "sql-database-tde-mmk").level_fields(1)),
            [
                "encryptionProtector",
                "encryptionProtectorAutoRotation",
                "id",
                "kind",
                "name",
                "resourceGroup",
                "sku",
                "tags"
            ]
        );
    }

    /// GOOD with named reads whose verdict also reads the listed item as `target`.
    fn named_reads(refresh: bool) -> String {
        let show = r#"["az", "storage", "account", "show", "--name={target.name}", "--resource-group={target.resourceGroup}"]"#;
        let refresh = if refresh {
            format!("refresh = {show}\n")
        } else {
            String::new()
        };
        GOOD.replace(
            "compliant = \"encryption.keySource == 'Microsoft.Storage'\"",
            "compliant = \"target.encryption.keySource == 'Microsoft.Storage' && shown.name != ''\"",
        )
        .replace(r#"record = ["encryption.keySource"]"#, r#"record = ["target.encryption.keySource"]"#)
        .replace(&format!("refresh = {show}\n"), "")
        .replace(
            "[test]\n",
            &format!("[test]\n{refresh}"),
        ) + &format!(
            "[test.reads]\nshown = {show}\n[[implement]]\nname = \"n\"\nargv = [\"az\", \"storage\", \"account\", \"update\", \"--name={{target.name}}\", \"--encryption-key-source=Microsoft.Storage\"]\n"
        )
    }

    #[test]
    fn named_reads_see_the_listed_target_and_keep_its_fields() {
        let playbook = parse("p.toml", &named_reads(true), "p.toml").unwrap();
        // What a read-back after a change may take from the recorded state instead of reading.
        assert!(playbook.test.verdict_is_recorded("target"));
        assert!(
            !playbook.test.verdict_is_recorded("shown"),
            "shown.name is not recorded"
        );
        let keep = playbook.level_fields(0);
        assert!(
            keep.top_level().unwrap().contains(&"encryption"),
            "{keep:?}"
        );
        let e = errors(&named_reads(false));
        assert!(e[0].message.contains("needs `refresh`"), "{}", e[0].message);
        let e = errors(&named_reads(true).replace("shown = [", "target = ["));
        assert!(
            e.iter().any(|e| e.message.contains("not a read name")),
            "{e:?}"
        );
    }

    fn errors(text: &str) -> Vec<LoadError> {
        parse("p.toml", text, "p.toml").unwrap_err().0
    }

    const GOOD: &str = r#"
schema = 1
id = "x"
title = "t"
resource_type = "Microsoft.Storage/storageAccounts"
[control]
id = "1"
title = "c"
[[discover]]
name = "account"
argv = ["az", "storage", "account", "list"]
[test]
compliant = "encryption.keySource == 'Microsoft.Storage'"
record = ["encryption.keySource"]
refresh = ["az", "storage", "account", "show", "--name={target.name}", "--resource-group={target.resourceGroup}"]
"#;

    #[test]
    fn judged_fields_are_the_controlled_ones_and_all_backout_writes() {
        let judged = |id: &str| -> Vec<String> {
            let p = builtin().into_iter().find(|p| p.id == id).unwrap();
            p.judged().iter().map(|f| f.to_string()).collect()
        };
        assert_eq!(
            judged("storage-account-mmk"),
            [
                "encryption.keySource",
                "encryption.keyVaultProperties.keyVaultUri",
                "encryption.keyVaultProperties.keyName",
                "encryption.keyVaultProperties.keyVersion",
                "encryption.encryptionIdentity.encryptionUserAssignedIdentity",
                "encryption.encryptionIdentity.encryptionFederatedIdentityClientId",
            ],
            "the key a precheck reads (currentVersionedKeyIdentifier) is computed, not written"
        );
        assert_eq!(
            judged("sql-server-tde-protector-mmk"),
            ["serverKeyType", "uri"],
            "autoRotationEnabled is written but declared not compared; serverKeyName is computed"
        );
    }

    #[test]
    fn not_compared_needs_a_recorded_field_that_is_not_controlled_and_a_reason() {
        let with = |entry: &str| {
            GOOD.replace(
                "record = [\"encryption.keySource\"]",
                &format!("record = [\"encryption.keySource\", \"encryption.keyVaultProperties.keyName\"]\ncontrolled = [\"encryption.keySource\"]\nnot_compared = [{entry}]"),
            )
        };
        let ok = with(r#"{ field = "encryption.keyVaultProperties.keyName", reason = "r" }"#);
        assert!(parse("p.toml", &ok, "p.toml").is_ok());
        for (entry, says) in [
            (
                r#"{ field = "encryption.requireInfrastructureEncryption", reason = "r" }"#,
                "not in `record`",
            ),
            (
                r#"{ field = "encryption.keySource", reason = "r" }"#,
                "is controlled",
            ),
            (
                r#"{ field = "encryption.keyVaultProperties.keyName", reason = " " }"#,
                "say why",
            ),
        ] {
            let e = errors(&with(entry));
            assert!(e[0].message.contains(says), "{entry}: {}", e[0].message);
            assert_eq!(e[0].line, 16, "{entry}");
        }
    }

    #[test]
    fn a_minimal_playbook_loads() {
        assert!(parse("p.toml", GOOD, "p.toml").is_ok());
    }

    #[test]
    fn unknown_key_is_located() {
        let e = errors(&GOOD.replace("title = \"t\"", "title = \"t\"\ncolour = 1"));
        assert_eq!((e[0].line, e[0].column), (5, 1));
        assert!(e[0].message.contains("colour"), "{}", e[0].message);
    }

    #[test]
    fn misspelt_field_in_verdict_is_located_inside_the_string() {
        let e = errors(&GOOD.replace("encryption.keySource ==", "encryption.keySorce =="));
        assert_eq!(e[0].line, 13);
        assert_eq!(e[0].column, 14);
        assert!(
            e[0].message.contains("did you mean `keySource`"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn a_program_other_than_az_is_refused() {
        let e = errors(&GOOD.replace(r#"["az", "storage""#, r#"["bash", "storage""#));
        assert!(e[0].message.contains("only `az`"), "{}", e[0].message);
        assert_eq!(e[0].line, 11);
    }

    #[test]
    fn placeholder_must_follow_a_flag() {
        let text = format!(
            "{GOOD}[[implement]]\nname = \"n\"\nargv = [\"az\", \"storage\", \"account\", \"update\", \"{{target.name}}\"]\n"
        );
        let e = errors(&text);
        assert!(e[0].message.contains("--flag="), "{}", e[0].message);
        assert_eq!(e[0].line, 18);
    }

    #[test]
    fn next_marker_must_be_a_long_option() {
        let paged = GOOD.replace(
            "argv = [\"az\", \"storage\", \"account\", \"list\"]\n",
            "argv = [\"az\", \"storage\", \"account\", \"list\"]\nnext_marker = \"--marker\"\n",
        );
        let p = parse("p.toml", &paged, "p.toml").unwrap();
        assert_eq!(p.discover[0].next_marker.as_deref(), Some("--marker"));
        let e = errors(&paged.replace("\"--marker\"", "\"marker x\""));
        assert!(e[0].message.contains("long option"), "{}", e[0].message);
        assert_eq!(e[0].line, 12);
    }

    /// GOOD with a backout step whose `--keys` lists the recorded tags' names.
    fn with_list_argument(each: &str) -> String {
        format!(
            "{}[[backout]]\nname = \"n\"\nargv = [\"az\", \"storage\", \"account\", \"update\", \"--name={{target.name}}\", {{ arg = \"--keys\", each = \"{each}\" }}]\n",
            GOOD.replace(
                "record = [\"encryption.keySource\"]",
                "record = [\"encryption.keySource\", \"tags\"]"
            )
        )
    }

    #[test]
    fn a_list_argument_gives_its_option_then_one_argument_per_value() {
        let p = parse(
            "p.toml",
            &with_list_argument("keys(before.tags || `{}`)"),
            "p",
        )
        .unwrap();
        let Action::Az(argv) = &p.backout[0].action else {
            panic!("an az step")
        };
        let ctx = |tags: Value| json!({"target": {"name": "st1"}, "before": {"tags": tags}});
        assert_eq!(
            argv.render(&ctx(json!({"a": "1", "b": "2"}))).unwrap(),
            [
                "az",
                "storage",
                "account",
                "update",
                "--name=st1",
                "--keys",
                "a",
                "b"
            ]
        );
        // Nothing to give: not even the option.
        assert_eq!(argv.render(&ctx(json!(null))).unwrap().len(), 5);
        // A value az would read as an option is refused, never passed.
        let e = argv
            .render(&ctx(json!({"--subscription": "x"})))
            .unwrap_err();
        assert!(e.contains("as an option"), "{e}");
        // The judged fields include what the list reads.
        assert!(p.backout_writes().iter().any(|f| f.to_string() == "tags"));
    }

    #[test]
    fn a_list_argument_is_checked_when_the_playbook_loads() {
        let e = errors(&with_list_argument("keys(before.tagz || `{}`)"));
        assert!(e[0].message.contains("cannot exist"), "{}", e[0].message);
        let e =
            errors(&with_list_argument("keys(before.tags").replace("\"--keys\"", "\"--keys=x\""));
        assert!(!e.is_empty());
        let e = errors(
            &with_list_argument("keys(before.tags || `{}`)")
                .replace("\"--keys\"", "\"--keys={target.name}\""),
        );
        assert!(
            e[0].message.contains("long option alone"),
            "{}",
            e[0].message
        );
        let bare = with_list_argument("x").replace(", each = \"x\"", "");
        let e = errors(&bare);
        assert!(
            e[0].message.contains("`when`") && e[0].message.contains("`each`"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn a_conditional_read_names_a_read_and_fields_that_exist() {
        let reads = named_reads(true);
        let with = |when: &str| format!("{reads}[test.read_when]\nshown = \"{when}\"\n");
        assert!(parse("p.toml", &with("target.name != 'x'"), "p").is_ok());
        let e = errors(&with("target.nme != 'x'"));
        assert!(e[0].message.contains("cannot exist"), "{}", e[0].message);
        let e = errors(&with("true").replace("read_when]\nshown", "read_when]\nshwn"));
        assert!(e[0].message.contains("not a read"), "{}", e[0].message);
        let e = errors(&format!("{GOOD}[test.read_when]\nx = \"true\"\n"));
        assert!(e[0].message.contains("has none"), "{}", e[0].message);
    }

    #[test]
    fn long_running_belongs_to_an_az_step_and_says_why() {
        let step = |extra: &str| {
            format!(
                "{GOOD}[[implement]]\nname = \"n\"\nargv = [\"az\", \"storage\", \"account\", \"update\", \"--name={{target.name}}\"]\n{extra}"
            )
        };
        let p = parse("p.toml", &step("long_running = \"minutes\"\n"), "p").unwrap();
        assert_eq!(p.implement[0].long_running.as_deref(), Some("minutes"));
        let e = errors(&step("long_running = \" \"\n"));
        assert!(e[0].message.contains("long_running"), "{}", e[0].message);
    }

    #[test]
    fn destructive_commands_are_known_by_their_words() {
        for (command, expected) in [
            ("group delete", Some("deletes")),
            ("storage account delete", Some("deletes")),
            ("sql server key delete", Some("deletes")),
            ("storage blob delete-batch", Some("deletes")),
            ("keyvault delete-policy", Some("deletes")),
            ("keyvault key purge", Some("purges")),
            ("keyvault purge", Some("purges")),
            ("storage account network-rule remove", Some("removes")),
            ("storage message clear", Some("removes")),
            ("storage account revoke-delegation-keys", Some("revokes")),
            ("disk revoke-access", Some("revokes")),
            (
                "storage account keys renew",
                Some("regenerates keys or credentials"),
            ),
            (
                "cosmosdb keys regenerate",
                Some("regenerates keys or credentials"),
            ),
            (
                "redis regenerate-keys",
                Some("regenerates keys or credentials"),
            ),
            (
                "iot hub policy renew-key",
                Some("regenerates keys or credentials"),
            ),
            (
                "ad sp credential reset",
                Some("regenerates keys or credentials"),
            ),
            ("role assignment create", Some("grants access")),
            ("keyvault role assignment create", Some("grants access")),
            ("ad app permission grant", Some("grants access")),
            ("keyvault set-policy", Some("grants access")),
            ("sql server ad-admin create", Some("grants access")),
            ("ad group member add", Some("grants access")),
            ("Group Delete", Some("deletes")),
            // What the built-in playbooks and their reads run.
            ("sql server key create", None),
            ("sql server key list", None),
            ("sql server tde-key set", None),
            ("sql db tde set", None),
            ("storage account update", None),
            ("storage account list", None),
            ("keyvault key show", None),
            ("role assignment list", None),
            ("keyvault key rotate", None),
        ] {
            let words: Vec<&str> = command.split(' ').collect();
            assert_eq!(destructive_command(&words), expected, "az {command}");
        }
    }

    #[test]
    fn no_step_or_read_of_a_builtin_playbook_is_destructive() {
        for p in builtin() {
            let mut argvs: Vec<&Argv> = p.discover.iter().map(|l| &l.argv).collect();
            match &p.test.reads {
                Reads::None => {}
                Reads::One(argv) => argvs.push(argv),
                Reads::Named(named) => argvs.extend(named.iter().map(|r| &r.argv)),
            }
            argvs.extend(&p.test.refresh);
            argvs.extend(p.prechecks.iter().map(|c| &c.read));
            for step in p.implement.iter().chain(&p.backout) {
                if let Action::Az(argv) = &step.action {
                    argvs.push(argv);
                }
                argvs.extend(step.skip_if.as_ref().map(|s| &s.read));
            }
            assert!(argvs.len() >= 4, "{}", p.id);
            for argv in argvs {
                assert_eq!(
                    argv.destructive(),
                    None,
                    "{}: az {}",
                    p.id,
                    argv.command_words().join(" ")
                );
            }
        }
    }

    /// GOOD with one implement step running `argv` (a TOML array), with `extra` lines.
    fn with_step(table: &str, argv: &str, extra: &str) -> String {
        format!("{GOOD}[[{table}]]\nname = \"n\"\nargv = {argv}\n{extra}")
    }

    const DELETE: &str = r#"["az", "storage", "account", "delete", "--name={target.name}", "--resource-group={target.resourceGroup}", "--yes"]"#;

    #[test]
    fn a_destructive_step_must_say_it_cannot_be_undone_and_why() {
        let e = errors(&with_step("implement", DELETE, ""));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].line, e[0].column), (18, 8), "at the step's argv");
        for says in [
            "`az storage account delete` deletes",
            "`reversible = false` and a `warning`",
            "--allow-destructive",
        ] {
            assert!(e[0].message.contains(says), "{says}: {}", e[0].message);
        }
        let e = errors(&with_step("implement", DELETE, "reversible = false\n"));
        assert!(
            !e[0].message.contains("`reversible = false`"),
            "{}",
            e[0].message
        );
        assert!(e[0].message.contains("a `warning`"), "{}", e[0].message);
        let e = errors(&with_step(
            "implement",
            DELETE,
            "warning = \"the data is gone\"\n",
        ));
        assert!(
            e[0].message.contains("`reversible = false`"),
            "{}",
            e[0].message
        );
        assert!(!e[0].message.contains("a `warning`"), "{}", e[0].message);
        let e = errors(&with_step(
            "implement",
            DELETE,
            "reversible = false\nwarning = \"  \"\n",
        ));
        assert!(e[0].message.contains("a `warning`"), "{}", e[0].message);
        let e = errors(&with_step(
            "implement",
            DELETE,
            "reversible = true\nwarning = \"the data is gone\"\n",
        ));
        assert!(
            e[0].message.contains("`reversible = false`"),
            "{}",
            e[0].message
        );
        // A command word that is conditional counts as well.
        let hidden = DELETE.replace(r#""delete""#, r#"{ arg = "delete", when = "`true`" }"#);
        let e = errors(&with_step("implement", &hidden, ""));
        assert!(e[0].message.contains("deletes"), "{}", e[0].message);

        let declared = with_step(
            "implement",
            DELETE,
            "reversible = false\nwarning = \"the account and its data are gone\"\n",
        );
        let playbook = parse("p.toml", &declared, "p.toml").unwrap();
        let step = &playbook.implement[0];
        assert!(!step.reversible);
        let Action::Az(argv) = &step.action else {
            panic!("an az step")
        };
        assert_eq!(argv.destructive(), Some("deletes"));
    }

    #[test]
    fn a_destructive_backout_step_must_declare_itself_too() {
        let grant = r#"["az", "role", "assignment", "create", "--assignee=ops@contoso.com", "--role=Owner", "--scope={target.id}"]"#;
        let e = errors(&with_step("backout", grant, ""));
        assert_eq!(e[0].line, 18);
        assert!(
            e[0].message
                .contains("`az role assignment create` grants access"),
            "{}",
            e[0].message
        );
        let renew = r#"["az", "storage", "account", "keys", "renew", "--account-name={target.name}", "--key=primary"]"#;
        let e = errors(&with_step("backout", renew, ""));
        assert!(
            e[0].message.contains("regenerates keys"),
            "{}",
            e[0].message
        );
        let ok = with_step(
            "backout",
            renew,
            "reversible = false\nwarning = \"every client using the primary key stops working\"\n",
        );
        assert!(parse("p.toml", &ok, "p.toml").is_ok());
        let create = r#"["az", "sql", "server", "key", "create", "--server={target.name}", "--resource-group={target.resourceGroup}", "--kid=https://kv/keys/k"]"#;
        assert!(parse("p.toml", &with_step("backout", create, ""), "p.toml").is_ok());
    }

    #[test]
    fn a_read_may_never_be_destructive() {
        let text = GOOD.replace(
            r#"refresh = ["az", "storage", "account", "show""#,
            r#"refresh = ["az", "storage", "account", "delete""#,
        );
        let e = errors(&text);
        assert_eq!((e[0].line, e[0].column), (15, 11), "{e:?}");
        assert!(e[0].message.contains("a read"), "{}", e[0].message);
        let text = format!(
            "{GOOD}[[precheck]]\nname = \"p\"\nread = [\"az\", \"keyvault\", \"key\", \"purge\", \"--name=k\"]\nwarning = \"w\"\n"
        );
        let e = errors(&text);
        assert_eq!(e[0].line, 18);
        assert!(e[0].message.contains("purges"), "{}", e[0].message);
    }

    #[test]
    fn before_is_limited_to_recorded_fields() {
        let text = format!(
            "{GOOD}[[backout]]\nname = \"n\"\nargv = [\"az\", \"storage\", \"account\", \"update\", \"--name={{before.name}}\"]\n"
        );
        let e = errors(&text);
        assert!(e[0].message.contains("record"), "{}", e[0].message);
    }
}
