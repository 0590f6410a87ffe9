//! The loader's checks of an argv: `az` first, one argument per element, placeholders only as
//! `--flag={root.field}` naming fields that can exist, list-valued options, no shell syntax, no
//! option azbook sets itself, and no command that changes az rather than a resource.

use super::*;

impl Loader<'_> {
    pub(super) fn template(&mut self, raw: &Spanned<String>, roots: &Roots) -> Option<Template> {
        let source = raw.get_ref();
        match Template::parse(source) {
            Ok(t) => self.check_fields(&t, &raw.span(), roots).then_some(t),
            Err(e) => {
                self.error_inside(&raw.span(), source, e.offset, e.message);
                None
            }
        }
    }

    pub(super) fn check_fields(
        &mut self,
        template: &Template,
        span: &Range<usize>,
        roots: &Roots,
    ) -> bool {
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
    pub(super) fn argv(&mut self, raw: &RawArgv, roots: &Roots) -> Option<Argv> {
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
    pub(super) fn arg(
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
    pub(super) fn check_list_option(&mut self, text: &str, span: &Range<usize>) -> bool {
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
    pub(super) fn arg_template(&mut self, text: &str, span: &Range<usize>) -> Option<Template> {
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
    pub(super) fn check_program(
        &mut self,
        text: &str,
        conditional: bool,
        span: &Range<usize>,
    ) -> bool {
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
    pub(super) fn check_placeholder(
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
    pub(super) fn check_command(&mut self, argv: Argv, span: &Range<usize>) -> Option<Argv> {
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
pub(super) fn is_long_option(s: &str) -> bool {
    s.len() > 2
        && s.starts_with("--")
        && s[2..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s[2..].starts_with(|c: char| c.is_ascii_lowercase())
}
