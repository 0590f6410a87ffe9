//! Playbooks: a security control's test, implementation and backout plans as data.
//!
//! A playbook is a TOML file (`playbooks/*.toml`, compiled into the binary, or any file given
//! with `--playbook`). [`load`] turns it into the validated model below, rejecting with a file,
//! line and column everything that could otherwise fail halfway through a run: unknown keys,
//! bad JMESPath, placeholders naming fields that cannot exist, steps that are not `az`, steps
//! that delete, revoke, regenerate keys or grant access without declaring it.

mod expr;
mod load;
mod shape;
mod template;

pub use expr::{Document, Expr};
pub use load::{builtin, destructive_command, parse, select};
pub use shape::closest;
pub use template::Template;

use crate::fieldpath::FieldPath;
use crate::fieldtree::FieldTree;
use serde_json::Value;

#[derive(Debug)]
pub struct Playbook {
    pub id: String,
    pub title: String,
    pub resource_type: String,
    pub control: Control,
    /// Where it came from: `builtin:<file>` or the path given.
    pub origin: String,
    /// The TOML text: hashed into plans and change logs, and stored with each run so that backout
    /// uses the playbook as it was when the change was made.
    pub source: String,
    pub discover: Vec<DiscoverLevel>,
    pub test: TestSpec,
    pub implement: Vec<Step>,
    pub backout: Vec<Step>,
    /// Reads run before a change whose failure is worth a warning (the customer key that
    /// backout needs may be gone).
    pub prechecks: Vec<Precheck>,
}

#[derive(Debug)]
pub struct Control {
    pub id: String,
    pub title: String,
    pub benchmark: Option<String>,
    pub level: Option<i64>,
}

/// One level of discovery. The first runs once per subscription; each further level runs once
/// per item of the level above (a server's databases). The last level's items are the targets;
/// every level's item is a root that templates may name (`{server.name}`).
#[derive(Debug)]
pub struct DiscoverLevel {
    pub name: String,
    pub argv: Argv,
    pub skip: Vec<SkipRule>,
    /// For a list that az pages (`az storage account encryption-scope list` prints one page
    /// and a last item `{"nextMarker": "..."}`): the option that asks for the next page.
    /// Discovery follows it until no marker is left (ARCHITECTURE.md, "Paged lists").
    pub next_marker: Option<String>,
}

/// Items that discovery returns but that are never targets (`master`), reported as `skipped`.
#[derive(Debug)]
pub struct SkipRule {
    pub when: Expr,
    pub reason: String,
}

/// What the test reads per target. The verdict is evaluated on the *state*: the target itself
/// when there is no read, the read's output for one read, or an object of named outputs.
#[derive(Debug)]
pub enum Reads {
    None,
    One(Argv),
    Named(Vec<NamedRead>),
}

/// One read of `[test.reads]`. A read with `when` runs only for the targets its condition
/// (on `target` and the levels) holds for, and is null for the others: a database's own
/// key setup costs a call only for the databases that have one.
#[derive(Debug)]
pub struct NamedRead {
    pub name: String,
    pub argv: Argv,
    pub when: Option<Expr>,
}

impl NamedRead {
    /// Whether the read runs for the target in `context`.
    pub fn applies(&self, context: &Value) -> Result<bool, String> {
        self.when.as_ref().map_or(Ok(true), |w| w.test(context))
    }
}

#[derive(Debug)]
pub struct TestSpec {
    pub reads: Reads,
    /// For a state read from discovery (whole, or as the `target` of named reads): how to
    /// re-read one target (apply's read-back, backout).
    pub refresh: Option<Argv>,
    pub compliant: Expr,
    pub evidence: Vec<FieldPath>,
    /// The prior state kept for backout (`before` in templates).
    pub record: Vec<FieldPath>,
    /// The fields the verdict reads, compared by backout to tell done from drifted.
    pub controlled: Vec<FieldPath>,
    /// Recorded fields backout writes but never judges, with the reason (`not_compared`).
    pub not_compared: Vec<(FieldPath, String)>,
    pub explain: Vec<Explain>,
}

#[derive(Debug)]
pub struct Explain {
    pub when: Expr,
    pub text: String,
}

#[derive(Debug)]
pub struct Step {
    pub name: String,
    pub action: Action,
    /// Evaluated on `{target, before, <levels>}`; absent means always.
    pub when: Option<Expr>,
    pub reversible: bool,
    /// Shown in every plan and change record that includes this step.
    pub warning: Option<String>,
    /// Why the step can take minutes (a managed instance's protector change): plans show it,
    /// and apply and backout say it when the step starts, with how long azbook waits.
    pub long_running: Option<String>,
    /// Predicted values of state fields after the step.
    pub after: Vec<(FieldPath, Value)>,
    pub skip_if: Option<SkipIf>,
}

#[derive(Debug)]
pub enum Action {
    Az(Argv),
    /// Done by a person; the text (a template) is shown, never run.
    Manual(Template),
}

/// A read before a change: if it fails, or a value it needs is not set, apply warns (and records
/// the warning) but goes on: the check is about what backout will need, not about the change.
#[derive(Debug)]
pub struct Precheck {
    pub name: String,
    pub read: Argv,
    /// The changes it is about (a database with its own key); absent means every change.
    pub when: Option<Expr>,
    /// False for data-plane reads (Key Vault keys), which az runs without a subscription.
    pub subscription: bool,
    pub warning: String,
}

/// A read that, when its condition holds, makes a step unnecessary (the server key is still
/// registered, so it need not be created again).
#[derive(Debug)]
pub struct SkipIf {
    pub read: Argv,
    pub when: Expr,
}

/// An `az` argv: each element renders to exactly one argument.
#[derive(Debug)]
pub struct Argv {
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub struct Arg {
    /// With `each`: the option alone (`--keys`), a literal.
    pub template: Template,
    /// Present only when the argument is conditional.
    pub when: Option<Expr>,
    /// A list-valued argument (`{ arg = "--keys", each = "keys(before.db.keys)" }`): the option
    /// followed by one argument per string of the list the expression gives; an empty list or
    /// null gives nothing, not even the option.
    pub each: Option<Expr>,
}

impl Arg {
    /// The fields of the context this argument reads, in its template and its list.
    pub fn fields(&self) -> Vec<FieldPath> {
        let mut fields: Vec<FieldPath> = self.template.fields().cloned().collect();
        if let Some(each) = &self.each {
            fields.extend(
                each.root_fields()
                    .into_iter()
                    .map(|(path, _)| FieldPath::from_segments(path)),
            );
        }
        fields
    }

    /// The values of a list-valued argument: strings that az cannot read as options or as
    /// anything but one value each.
    fn values(each: &Expr, flag: &str, context: &Value) -> Result<Vec<String>, String> {
        let list = match each.evaluate(context)? {
            Value::Null => return Ok(Vec::new()),
            Value::Array(list) => list,
            other => {
                return Err(format!(
                    "`{}` (the values of {flag}) must give a list of strings, but gave {other}",
                    each.source()
                ));
            }
        };
        list.into_iter()
            .map(|v| match v {
                Value::String(s) if s.is_empty() || s.starts_with('-') => Err(format!(
                    "{flag} would get the value {s:?}, which az would read as an option or as nothing"
                )),
                Value::String(s) if s.chars().any(char::is_control) => Err(format!(
                    "{flag} would get a value with control characters: {s:?}"
                )),
                Value::String(s) => Ok(s),
                other => Err(format!(
                    "`{}` (the values of {flag}) must give strings, but one is {other}",
                    each.source()
                )),
            })
            .collect()
    }
}

impl TestSpec {
    /// The recorded fields of a state, credentials redacted: what plans and change logs keep
    /// as `before` and `after`, and what apply and backout compare.
    /// True when every field of the state part `part` (a named read, or `target`) that the
    /// verdict and its explanations read is kept by `record`: then the recorded state from
    /// before a change judges that part as well as a fresh read would.
    pub fn verdict_is_recorded(&self, part: &str) -> bool {
        let exprs = std::iter::once(&self.compliant).chain(self.explain.iter().map(|e| &e.when));
        let mut fields = Vec::new();
        for expr in exprs {
            if expr.reads_whole_document() {
                return false;
            }
            fields.extend(expr.root_fields().into_iter().map(|(f, _)| f));
        }
        fields
            .into_iter()
            .filter(|f| f[0] == part)
            .map(FieldPath::from_segments)
            .all(|f| self.record.iter().any(|r| f.starts_with(r)))
    }

    pub fn recorded(&self, state: &Value) -> Value {
        crate::redact::redact(&FieldPath::project(&self.record, state))
    }
}

impl DiscoverLevel {
    /// The fields this level's argv names (`{server.name}` in a database list).
    fn args_fields(&self) -> Vec<FieldPath> {
        self.argv.args.iter().flat_map(Arg::fields).collect()
    }
}

impl Argv {
    /// The command words after `az` (`storage account list`): what identifies the command.
    pub fn command_words(&self) -> Vec<&str> {
        self.args
            .iter()
            .skip(1)
            .map(|a| a.template.source())
            .take_while(|s| !s.starts_with('-'))
            .collect()
    }

    /// What the command does that nothing can take back (`deletes`, `grants access`), if it is
    /// such a command: see [`destructive_command`].
    pub fn destructive(&self) -> Option<&'static str> {
        destructive_command(&self.command_words())
    }

    /// Renders every argument against `context`, dropping conditional arguments whose
    /// condition is false. Element 0 is `az`.
    pub fn render(&self, context: &Value) -> Result<Vec<String>, String> {
        let mut out = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            if let Some(when) = &arg.when
                && !when.test(context)?
            {
                continue;
            }
            let text = arg.template.render(context)?;
            match &arg.each {
                Some(each) => {
                    let values = Arg::values(each, &text, context)?;
                    if !values.is_empty() {
                        out.push(text);
                        out.extend(values);
                    }
                }
                None => out.push(text),
            }
        }
        Ok(out)
    }
}

impl Playbook {
    /// The recorded fields that backout writes: every `before.*` field its steps' argvs use,
    /// or that decides whether a step or an argument runs (a `when`, a `skip_if`).
    pub fn backout_writes(&self) -> Vec<FieldPath> {
        let mut fields = Vec::new();
        for step in &self.backout {
            if let Some(when) = &step.when {
                before_fields_of_expr(when, &mut fields);
            }
            if let Action::Az(argv) = &step.action {
                before_fields_of_argv(argv, &mut fields);
            }
            if let Some(skip) = &step.skip_if {
                before_fields_of_argv(&skip.read, &mut fields);
                before_fields_of_expr(&skip.when, &mut fields);
            }
        }
        fields
    }

    /// The fields that tell whether a target is as recorded: the controlled ones and every
    /// field backout writes, less those the playbook declares restored but not compared.
    /// Backout's drift judgement, its verification and a saved plan's recheck all use them.
    pub fn judged(&self) -> Vec<FieldPath> {
        let mut fields = self.test.controlled.clone();
        for path in self.backout_writes() {
            if !fields.contains(&path) {
                fields.push(path);
            }
        }
        fields.retain(|f| !self.test.not_compared.iter().any(|(n, _)| f.starts_with(n)));
        fields
    }

    /// The hex SHA-256 of the playbook's text: what plans and change logs are bound to.
    pub fn sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.source.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The fields of a discovery level's items that the playbook reads (filters, skip rules,
    /// templates, and the verdict where it reads the item), as paths: discovery keeps only these
    /// of each listed resource.
    pub fn level_fields(&self, depth: usize) -> FieldTree {
        let level = &self.discover[depth];
        let last = depth + 1 == self.discover.len();
        let mut keep = FieldTree::default();
        for field in ["id", "name", "resourceGroup", "tags"] {
            keep.insert(&[field]);
        }
        let mut exprs: Vec<&Expr> = level.skip.iter().map(|r| &r.when).collect();
        let mut paths: Vec<Vec<String>> = Vec::new();
        let mut state_exprs: Vec<&Expr> = Vec::new();
        if last && !matches!(self.test.reads, Reads::One(_)) {
            state_exprs.push(&self.test.compliant);
            state_exprs.extend(self.test.explain.iter().map(|e| &e.when));
            let fields = self.test.evidence.iter().chain(&self.test.record);
            paths.extend(fields.map(|p| p.segments().to_vec()));
        }
        if let Reads::Named(_) = self.test.reads {
            // The state is `{target, <reads>}`: only its `target.` fields come from the list.
            for expr in state_exprs {
                if expr.reads_whole_document() {
                    return FieldTree::All;
                }
                paths.extend(expr.root_fields().into_iter().map(|(f, _)| f));
            }
            paths = paths
                .into_iter()
                .filter(|p| p[0] == "target")
                .map(|p| p[1..].to_vec())
                .collect();
        } else {
            exprs.extend(state_exprs);
        }
        for expr in &exprs {
            if expr.reads_whole_document() {
                return FieldTree::All;
            }
            paths.extend(expr.root_fields().into_iter().map(|(f, _)| f));
        }
        // Fields that templates read through this level's name (or `target`, for the last).
        let discovery_fields = self.discover.iter().flat_map(DiscoverLevel::args_fields);
        for field in self.context_fields().into_iter().chain(discovery_fields) {
            let named = field.first() == level.name || (last && field.first() == "target");
            if named {
                paths.push(field.segments()[1..].to_vec());
            }
        }
        for path in paths {
            keep.insert(&path);
        }
        keep
    }

    /// Every field of the target and of the discovery levels that the playbook's templates and
    /// step conditions read, plus the target's id. A plan or change log keeps only these of a
    /// target (enough to re-derive every argv), not whole resources that may hold secrets.
    pub fn context_fields(&self) -> Vec<FieldPath> {
        let mut fields = vec![FieldPath::from_segments(vec!["target".into(), "id".into()])];
        let mut argvs: Vec<&Argv> = Vec::new();
        let mut conditions: Vec<&Expr> = Vec::new();
        match &self.test.reads {
            Reads::None => {}
            Reads::One(argv) => argvs.push(argv),
            Reads::Named(named) => {
                argvs.extend(named.iter().map(|r| &r.argv));
                conditions.extend(named.iter().filter_map(|r| r.when.as_ref()));
            }
        }
        argvs.extend(&self.test.refresh);
        argvs.extend(self.prechecks.iter().map(|p| &p.read));
        conditions.extend(self.prechecks.iter().filter_map(|p| p.when.as_ref()));
        for step in self.implement.iter().chain(&self.backout) {
            conditions.extend(&step.when);
            match &step.action {
                Action::Az(argv) => argvs.push(argv),
                Action::Manual(text) => fields.extend(text.fields().cloned()),
            }
            if let Some(skip) = &step.skip_if {
                argvs.push(&skip.read);
                conditions.push(&skip.when);
            }
        }
        for argv in argvs {
            for arg in &argv.args {
                fields.extend(arg.fields());
                conditions.extend(&arg.when);
            }
        }
        for expr in conditions {
            fields.extend(
                expr.root_fields()
                    .into_iter()
                    .filter(|(path, _)| path.len() > 1)
                    .map(|(path, _)| FieldPath::from_segments(path)),
            );
        }
        let levels: Vec<&str> = self.discover.iter().map(|l| l.name.as_str()).collect();
        fields.retain(|f| f.first() == "target" || levels.contains(&f.first()));
        fields.sort();
        fields.dedup();
        fields
    }
}

/// Adds the `before.*` field named by `segments` (without `before`) to `fields`, once.
fn add_before_field(segments: &[String], fields: &mut Vec<FieldPath>) {
    if let [root, rest @ ..] = segments
        && root == "before"
        && !rest.is_empty()
    {
        let path = FieldPath::from_segments(rest.to_vec());
        if !fields.contains(&path) {
            fields.push(path);
        }
    }
}

fn before_fields_of_expr(expr: &Expr, fields: &mut Vec<FieldPath>) {
    for (chain, _) in expr.root_fields() {
        add_before_field(&chain, fields);
    }
}

fn before_fields_of_argv(argv: &Argv, fields: &mut Vec<FieldPath>) {
    for arg in &argv.args {
        for path in arg.fields() {
            add_before_field(path.segments(), fields);
        }
        if let Some(when) = &arg.when {
            before_fields_of_expr(when, fields);
        }
    }
}
