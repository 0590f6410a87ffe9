//! Playbooks: a security control's test, implementation and backout plans as data.
//!
//! A playbook is a TOML file (`playbooks/*.toml`, compiled into the binary, or any file given
//! with `--playbook`). [`load`] turns it into the validated model below, rejecting with a file,
//! line and column everything that could otherwise fail halfway through a run: unknown keys,
//! bad JMESPath, placeholders naming fields that cannot exist, steps that are not `az`.

mod expr;
mod load;
mod shape;
mod template;

pub use expr::Expr;
pub use load::{LoadError, LoadErrors, builtin, load_file, parse, select};
pub use shape::closest;
pub use template::Template;

use crate::fieldpath::FieldPath;
use serde_json::Value;

#[derive(Debug)]
pub struct Playbook {
    pub id: String,
    pub title: String,
    pub resource_type: String,
    pub control: Control,
    /// Where it came from: `builtin:<file>` or the path given.
    pub origin: String,
    pub discover: Vec<DiscoverLevel>,
    pub test: TestSpec,
    pub implement: Vec<Step>,
    pub backout: Vec<Step>,
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
    Named(Vec<(String, Argv)>),
}

#[derive(Debug)]
pub struct TestSpec {
    pub reads: Reads,
    pub compliant: Expr,
    pub evidence: Vec<FieldPath>,
    /// The prior state kept for backout (`before` in templates).
    pub record: Vec<FieldPath>,
    /// The fields the verdict reads, compared by backout to tell done from drifted.
    pub controlled: Vec<FieldPath>,
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
    pub template: Template,
    /// Present only when the argument is conditional.
    pub when: Option<Expr>,
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
            out.push(arg.template.render(context)?);
        }
        Ok(out)
    }
}

impl Playbook {
    pub fn target_level(&self) -> &DiscoverLevel {
        self.discover.last().expect("validated: at least one level")
    }
}
