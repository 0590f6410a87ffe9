//! The loader's checks of `[[implement]]`, `[[backout]]` and `[[precheck]]`: each step's
//! action, condition, predicted state and `skip_if`, and the rule that a step which destroys
//! something must say so.

use super::*;

impl Loader<'_> {
    /// The prechecks, whose reads see what steps see.
    pub(super) fn prechecks(&mut self, raw: Vec<RawPrecheck>, roots: &Roots) -> Vec<Precheck> {
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
    pub(super) fn steps(
        &mut self,
        raw: Vec<RawStep>,
        roots: &Roots,
        record: &[FieldPath],
    ) -> Vec<Step> {
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
    pub(super) fn step(
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
    pub(super) fn check_destructive(
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
    pub(super) fn read_argv(&mut self, raw: &RawArgv, roots: &Roots) -> Option<Argv> {
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
    pub(super) fn action(&mut self, step: &RawStep, roots: &Roots) -> Option<Action> {
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
    pub(super) fn after(
        &mut self,
        raw: &Spanned<BTreeMap<String, toml::Value>>,
        record: &[FieldPath],
    ) -> Vec<(FieldPath, serde_json::Value)> {
        let mut after = Vec::new();
        for (key, value) in raw.get_ref() {
            match FieldPath::parse(key) {
                Ok(path) if path.has_every_key() => self.error(
                    &raw.span(),
                    format!(
                        "`after` names `{path}`: `*` (every key of a map) is for `record` only"
                    ),
                ),
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
    pub(super) fn skip_if(&mut self, raw: &RawSkipIf, roots: &Roots) -> Option<SkipIf> {
        let read = self.read_argv(&raw.read, roots)?;
        let mut with_read = roots.clone();
        with_read.push(("read".into(), Shape::of_command(&read.command_words())));
        let when = self.condition(&raw.when, &Shape::object(with_read))?;
        Some(SkipIf { read, when })
    }
}
