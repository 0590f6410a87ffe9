//! az's argument grammar: Python argparse as azure-cli configures it. What a caller of `az` can
//! get wrong has to fail here exactly as it fails with az: a value that starts with `-` after a
//! separate option (`-g -rg.ops(1)`) is "expected one argument", while `--resource-group=-rg.ops(1)`
//! is accepted; unknown options and stray words are "unrecognized arguments" (exit 2).

use crate::armid;
use crate::errors::CommandError;
use std::collections::HashMap;

/// How many values an option takes (argparse's `nargs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly one value (`--name N` or `--name=N`).
    One,
    /// No value (`store_true`).
    Flag,
    /// azure-cli's three-state flag: a bare flag means true, or an explicit true/false.
    OptionalBool,
    /// One or more values (`--ids A B`).
    Many,
}

/// Which part of an ARM resource id fills an argument when `--ids` is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdPart {
    ResourceGroup,
    Name,
    ChildName1,
}

#[derive(Debug)]
pub struct Param {
    pub dest: &'static str,
    /// Option strings in az's order; the first is the one az names in messages.
    pub options: &'static [&'static str],
    pub arity: Arity,
    /// Allowed values, matched case-insensitively and normalized (azure-cli's enum type).
    pub choices: &'static [&'static str],
    pub required: bool,
    pub id_part: Option<IdPart>,
}

impl Param {
    pub const fn one(dest: &'static str, options: &'static [&'static str]) -> Param {
        Param {
            dest,
            options,
            arity: Arity::One,
            choices: &[],
            required: false,
            id_part: None,
        }
    }
    pub const fn required(self) -> Param {
        Param {
            required: true,
            ..self
        }
    }
    pub const fn choices(self, choices: &'static [&'static str]) -> Param {
        Param { choices, ..self }
    }
    pub const fn arity(self, arity: Arity) -> Param {
        Param { arity, ..self }
    }
    pub const fn id(self, part: IdPart) -> Param {
        Param {
            id_part: Some(part),
            ..self
        }
    }

    fn display(&self) -> String {
        self.options.join("/")
    }
}

/// The grammar of one command: its words, arguments and the examples of its help, which az
/// prints (the best three) under a usage error.
#[derive(Debug)]
pub struct CommandSpec {
    pub words: &'static [&'static str],
    pub summary: &'static str,
    /// `(command, description)` as azure-cli 2.91's help has them, in its order.
    pub examples: &'static [(&'static str, &'static str)],
    pub params: &'static [Param],
    /// Changes the world (logged with `mutating: true`).
    pub mutating: bool,
    /// Accepts `--ids` in place of its id-part arguments.
    pub ids: bool,
    /// Accepts the global `--subscription`.
    pub subscription: bool,
    /// The command's own argument validator, run at parse time like azure-cli's (so before
    /// the sign-in check): its errors exit 2.
    pub validate: Option<Validator>,
}

pub type Validator = fn(&Parsed) -> Result<(), CommandError>;

impl CommandSpec {
    pub fn prog(&self) -> String {
        format!("az {}", self.words.join(" "))
    }
}

const OUTPUT: Param = Param::one("output", &["--output", "-o"])
    .choices(&["json", "jsonc", "yaml", "yamlc", "table", "tsv", "none"]);
const QUERY: Param = Param::one("query", &["--query"]);
const HELP: Param = Param::one("help", &["--help", "-h"]).arity(Arity::Flag);
const SUBSCRIPTION: Param = Param::one("subscription", &["--subscription"]);
const IDS: Param = Param::one("ids", &["--ids"]).arity(Arity::Many);

/// The parsed values of one invocation (for `--ids`, of one id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    values: HashMap<&'static str, Vec<String>>,
}

impl Parsed {
    pub fn one(&self, dest: &str) -> Option<&str> {
        self.values
            .get(dest)
            .and_then(|v| v.last())
            .map(String::as_str)
    }
    /// The values of a multi-value option (`nargs='+'`), in the order given; None when absent.
    pub fn many(&self, dest: &str) -> Option<&[String]> {
        self.values.get(dest).map(Vec::as_slice)
    }
    pub fn flag(&self, dest: &str) -> bool {
        self.values.contains_key(dest)
    }
    /// A three-state flag: None when absent.
    pub fn bool3(&self, dest: &str) -> Option<bool> {
        self.one(dest).map(|v| v == "true")
    }
    fn set(&mut self, dest: &'static str, value: Vec<String>) {
        self.values.insert(dest, value);
    }
}

pub enum ParseResult {
    /// One entry per target: several when `--ids` names several resources.
    Run(Vec<Parsed>),
    Help,
}

enum Token<'p> {
    Positional,
    UnknownOption,
    Option(&'p Param, Option<String>),
}

/// argparse's `_parse_optional`: decides whether a token is an option, an unknown option or a
/// value. Only exact option strings are recognized (no abbreviations).
fn classify<'p>(tok: &str, params: &[&'p Param]) -> Token<'p> {
    let find = |s: &str| params.iter().copied().find(|p| p.options.contains(&s));
    if !tok.starts_with('-') || tok == "-" {
        return Token::Positional;
    }
    if let Some(p) = find(tok) {
        return Token::Option(p, None);
    }
    if let Some((name, value)) = tok.split_once('=')
        && let Some(p) = find(name)
    {
        return Token::Option(p, Some(value.to_string()));
    }
    if !tok.starts_with("--")
        && tok.len() > 2
        && let Some(p) = find(&tok[..2])
    {
        return Token::Option(p, Some(tok[2..].to_string()));
    }
    let negative_number = tok[1..].parse::<f64>().is_ok() && !tok[1..].starts_with(['+', '-']);
    if negative_number || tok.contains(' ') {
        return Token::Positional;
    }
    Token::UnknownOption
}

fn check_choice(
    spec: &CommandSpec,
    tokens: &[String],
    p: &Param,
    value: String,
) -> Result<String, CommandError> {
    if p.choices.is_empty() {
        return Ok(value);
    }
    match p.choices.iter().find(|c| c.eq_ignore_ascii_case(&value)) {
        Some(canonical) => Ok(canonical.to_string()),
        None => Err(command_usage(
            spec,
            tokens,
            format!(
                "{}: '{value}' is not a valid value for '{}'. Allowed values: {}.",
                spec.prog(),
                p.options[0],
                p.choices.join(", ")
            ),
        )),
    }
}

/// The option names of an argument list in azure-cli's standard form (each argument's longest
/// option), unknown ones left out: `CommandRecommender._normalize_parameters`. A help example
/// may use options of the real command that azsim does not model (`--max-size`): az knows them,
/// so they count, under their own name (`keep_unknown`).
fn normalized_options<'a>(
    spec: &CommandSpec,
    args: &[&'a str],
    keep_unknown: bool,
) -> Vec<&'a str> {
    let mut all: Vec<&Param> = spec.params.iter().collect();
    all.extend([&OUTPUT, &QUERY, &HELP, &SUBSCRIPTION, &IDS]);
    let mut out: Vec<&'a str> = args
        .iter()
        .filter(|a| a.starts_with('-') && !a.starts_with("---") && a.len() > 1)
        .map(|a| {
            if a.starts_with("--") {
                a.split('=').next().unwrap_or_default()
            } else {
                &a[..2.min(a.len())]
            }
        })
        .filter_map(|name| {
            all.iter()
                .find(|p| p.options.contains(&name))
                .and_then(|p| p.options.iter().max_by_key(|o| o.len()).copied())
                .or(keep_unknown.then_some(name))
        })
        .collect();
    out.sort_unstable();
    out
}

/// A usage error raised by the command's own parser (a missing value, an invalid choice, a
/// missing required argument): az prints the three help examples that best match the
/// arguments given (`CommandRecommender.provide_recommendations`: most matching options
/// first, then fewest options, in help order otherwise) above its reference link.
pub fn command_usage(spec: &CommandSpec, tokens: &[String], message: String) -> CommandError {
    let given: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let given = normalized_options(spec, &given, false);
    let mut ranked: Vec<(i64, usize, usize)> = spec
        .examples
        .iter()
        .enumerate()
        .map(|(i, (command, _))| {
            let words: Vec<&str> = command.split(' ').collect();
            let options = normalized_options(spec, &words, true);
            let matches = options.iter().filter(|o| given.contains(o)).count() as i64;
            (matches, options.len(), i)
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let best: Vec<(&str, &str)> = ranked
        .iter()
        .take(3)
        .map(|(_, _, i)| spec.examples[*i])
        .collect();
    CommandError::usage_with_examples(message, &best)
}

/// Parses the tokens after the command words, then applies azure-cli's checks in its order:
/// argument errors while consuming, required arguments, unrecognized arguments, and finally the
/// `(--x --y | --ids) are required` validator.
pub fn parse(spec: &CommandSpec, tokens: &[String]) -> Result<ParseResult, CommandError> {
    let params = accepted(spec);
    let Some((parsed, extras)) = consume(spec, tokens, &params)? else {
        return Ok(ParseResult::Help);
    };
    check_consumed(spec, tokens, &parsed, &extras)?;
    let targets = expand_ids(spec, parsed);
    for target in &targets {
        check_target(spec, target)?;
    }
    Ok(ParseResult::Run(targets))
}

/// The options a command accepts: its own, az's global ones, and `--subscription` and `--ids`
/// where the command takes them.
fn accepted(spec: &CommandSpec) -> Vec<&Param> {
    let mut params: Vec<&Param> = spec.params.iter().collect();
    params.extend([&OUTPUT, &QUERY, &HELP]);
    if spec.subscription {
        params.push(&SUBSCRIPTION);
    }
    if spec.ids {
        params.push(&IDS);
    }
    params
}

/// Consumes the tokens left to right as argparse does: each option takes its values, and every
/// token no option takes is kept as an extra. None: `--help` was given, which stops parsing.
fn consume(
    spec: &CommandSpec,
    tokens: &[String],
    params: &[&Param],
) -> Result<Option<(Parsed, Vec<String>)>, CommandError> {
    let is_value = |t: &String| matches!(classify(t, params), Token::Positional);
    let mut parsed = Parsed::default();
    let mut extras: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let tok = &tokens[i];
        i += 1;
        if tok == "--" {
            extras.extend(tokens[i..].iter().cloned());
            break;
        }
        let (p, explicit) = match classify(tok, params) {
            Token::Positional | Token::UnknownOption => {
                extras.push(tok.clone());
                continue;
            }
            Token::Option(p, explicit) => (p, explicit),
        };
        if p.arity == Arity::Flag && explicit.is_none() && p.dest == "help" {
            return Ok(None);
        }
        let (values, used) = option_values(spec, tokens, p, explicit, &tokens[i..], is_value)?;
        i += used;
        let values = values
            .into_iter()
            .map(|v| check_choice(spec, tokens, p, v))
            .collect::<Result<Vec<_>, _>>()?;
        parsed.set(p.dest, values);
    }
    Ok(Some((parsed, extras)))
}

/// The values option `p` takes: its `=value`, or the value tokens that follow it (`rest`),
/// with how many of `rest` it used. The errors are argparse's, raised while consuming.
fn option_values(
    spec: &CommandSpec,
    tokens: &[String],
    p: &Param,
    explicit: Option<String>,
    rest: &[String],
    is_value: impl Fn(&String) -> bool,
) -> Result<(Vec<String>, usize), CommandError> {
    let usage = |message: String| Err(command_usage(spec, tokens, message));
    match (p.arity, explicit) {
        (Arity::Flag, Some(v)) => usage(format!(
            "argument {}: ignored explicit argument '{v}'",
            p.display()
        )),
        (Arity::Flag, None) => Ok((vec!["true".to_string()], 0)),
        (_, Some(v)) => Ok((vec![v], 0)),
        (Arity::One, None) => match rest.first().filter(|t| is_value(t)) {
            Some(v) => Ok((vec![v.clone()], 1)),
            None => usage(format!("argument {}: expected one argument", p.display())),
        },
        (Arity::OptionalBool, None) => match rest.first().filter(|t| is_value(t)) {
            Some(v) => Ok((vec![v.clone()], 1)),
            None => Ok((vec!["true".to_string()], 0)),
        },
        (Arity::Many, None) => {
            let taken: Vec<String> = rest.iter().take_while(|t| is_value(t)).cloned().collect();
            if taken.is_empty() {
                return usage(format!(
                    "argument {}: expected at least one argument",
                    p.display()
                ));
            }
            let used = taken.len();
            Ok((taken, used))
        }
    }
}

/// An id-part argument of a command that takes `--ids` is checked per id, after expansion.
fn deferred(spec: &CommandSpec, p: &Param) -> bool {
    spec.ids && p.id_part.is_some()
}

/// The checks after consuming, in azure-cli's order: the query compiles, the required
/// arguments are there, and no token was left over.
fn check_consumed(
    spec: &CommandSpec,
    tokens: &[String],
    parsed: &Parsed,
    extras: &[String],
) -> Result<(), CommandError> {
    if let Some(q) = parsed.one("query") {
        jmespath::compile(q).map_err(|_| {
            CommandError::usage(format!(
                "argument --query: invalid jmespath_type value: '{q}'"
            ))
        })?;
    }
    let missing: Vec<String> = spec
        .params
        .iter()
        .filter(|p| p.required && !deferred(spec, p) && !parsed.flag(p.dest))
        .map(|p| p.display())
        .collect();
    if !missing.is_empty() {
        let message = format!(
            "the following arguments are required: {}",
            missing.join(", ")
        );
        return Err(command_usage(spec, tokens, message));
    }
    if !extras.is_empty() {
        return Err(CommandError::usage(format!(
            "unrecognized arguments: {}",
            extras.join(" ")
        )));
    }
    Ok(())
}

/// The checks of one target (one id of `--ids`): its id-part arguments, then the command's own
/// validator.
fn check_target(spec: &CommandSpec, target: &Parsed) -> Result<(), CommandError> {
    let missing: Vec<&str> = spec
        .params
        .iter()
        .filter(|p| p.required && deferred(spec, p) && !target.flag(p.dest))
        .map(|p| p.options[0])
        .collect();
    if !missing.is_empty() {
        // azure-cli raises this one as a CLIError once parsing is done: exit 1 (az 2.91).
        return Err(CommandError::client(format!(
            "({} | --ids) are required",
            missing.join(" ")
        )));
    }
    if let Some(validate) = spec.validate {
        validate(target)?;
    }
    Ok(())
}

/// One `Parsed` per resource id, with the id-part arguments (and the subscription) taken from
/// the id, as azure-cli's `--ids` action does.
fn expand_ids(spec: &CommandSpec, parsed: Parsed) -> Vec<Parsed> {
    let Some(ids) = parsed.values.get("ids").cloned() else {
        return vec![parsed];
    };
    ids.iter()
        .map(|id| {
            let parts = armid::parse(id);
            let mut target = parsed.clone();
            for p in spec.params.iter().filter(|p| p.id_part.is_some()) {
                target.values.remove(p.dest);
                let value = match p.id_part {
                    Some(IdPart::ResourceGroup) => parts.resource_group.clone(),
                    Some(IdPart::Name) => parts.name.clone(),
                    Some(IdPart::ChildName1) => parts.child_name_1.clone(),
                    None => None,
                };
                if let Some(v) = value {
                    target.set(p.dest, vec![v]);
                }
            }
            if let Some(sub) = parts.subscription {
                target.set("subscription", vec![sub]);
            }
            target
        })
        .collect()
}

/// A short help page in az's layout (`az ... --help`).
pub fn help_text(spec: &CommandSpec) -> String {
    let mut out = format!(
        "\nCommand\n    {} : {}\n\nArguments\n",
        spec.prog(),
        spec.summary
    );
    for p in spec.params {
        let required = if p.required { " [Required]" } else { "" };
        // az's help lists the allowed values sorted; its errors list them in their own order.
        let mut choices = p.choices.to_vec();
        choices.sort_unstable();
        let allowed = if choices.is_empty() {
            String::new()
        } else {
            format!("  Allowed values: {}.", choices.join(", "))
        };
        out.push_str(&format!("    {}{required}{allowed}\n", p.options.join(" ")));
    }
    if spec.ids {
        out.push_str("    --ids : One or more resource IDs (space-delimited).\n");
    }
    out.push_str("\nGlobal Arguments\n    --debug\n    --help -h\n    --only-show-errors\n    --output -o\n    --query\n");
    if spec.subscription {
        out.push_str("    --subscription\n");
    }
    out.push_str("    --verbose\n");
    if !spec.examples.is_empty() {
        out.push_str("\nExamples\n");
        for (command, description) in spec.examples {
            out.push_str(&format!("    {description}\n        {command}\n\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: &[Param] = &[
        Param::one("resource_group", &["--resource-group", "-g"])
            .required()
            .id(IdPart::ResourceGroup),
        Param::one("name", &["--name", "-n"])
            .required()
            .id(IdPart::Name),
        Param::one("status", &["--status"])
            .required()
            .choices(&["Enabled", "Disabled"]),
        Param::one("rotate", &["--auto-rotation-enabled"])
            .arity(Arity::OptionalBool)
            .choices(&["true", "false"]),
    ];
    const SPEC: CommandSpec = CommandSpec {
        words: &["thing", "set"],
        summary: "s",
        examples: &[
            ("az thing set --ids /x", "By id."),
            ("az thing set -g G -n N --status Enabled", "Sets."),
        ],
        params: PARAMS,
        mutating: true,
        ids: true,
        subscription: true,
        validate: None,
    };

    fn run(args: &[&str]) -> Result<Vec<Parsed>, CommandError> {
        let tokens: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&SPEC, &tokens)? {
            ParseResult::Run(t) => Ok(t),
            ParseResult::Help => panic!("help"),
        }
    }

    fn message(e: CommandError) -> String {
        e.render().lines().next().unwrap().to_string()
    }

    #[test]
    fn option_forms() {
        let t = run(&[
            "-g",
            "rg",
            "--name=n1",
            "--status",
            "disabled",
            "--auto-rotation-enabled",
        ])
        .unwrap();
        assert_eq!(t[0].one("resource_group"), Some("rg"));
        assert_eq!(t[0].one("name"), Some("n1"));
        assert_eq!(
            t[0].one("status"),
            Some("Disabled"),
            "enum values are normalized"
        );
        assert_eq!(t[0].bool3("rotate"), Some(true));
        let t = run(&[
            "-grg",
            "-n=n1",
            "--status=Enabled",
            "--auto-rotation-enabled",
            "false",
        ])
        .unwrap();
        assert_eq!(
            (t[0].one("resource_group"), t[0].one("name")),
            (Some("rg"), Some("n1"))
        );
        assert_eq!(t[0].bool3("rotate"), Some(false));
    }

    #[test]
    fn dash_values_need_the_equals_form() {
        let t = run(&[
            "--resource-group=-rg.ops(1)",
            "-n",
            "x",
            "--status",
            "Enabled",
        ])
        .unwrap();
        assert_eq!(t[0].one("resource_group"), Some("-rg.ops(1)"));
        let e = run(&["-g", "-rg.ops(1)", "-n", "x", "--status", "Enabled"]).unwrap_err();
        assert_eq!(
            message(e),
            "ERROR: argument --resource-group/-g: expected one argument"
        );
    }

    #[test]
    fn errors_in_azure_cli_order() {
        let e = run(&["-g", "rg", "-n", "x", "--bogus", "1"]).unwrap_err();
        assert_eq!(
            message(e),
            "ERROR: the following arguments are required: --status",
            "required before unrecognized"
        );
        let e = run(&["-g", "rg", "-n", "x", "--status", "Enabled", "--bogus", "1"]).unwrap_err();
        assert_eq!(message(e), "ERROR: unrecognized arguments: --bogus 1");
        let e = run(&["--status", "Enabled"]).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            message(e),
            "ERROR: (--resource-group --name | --ids) are required"
        );
        let e = run(&["-g", "rg", "-n", "x", "--status", "On"]).unwrap_err();
        assert_eq!(
            message(e),
            "ERROR: az thing set: 'On' is not a valid value for '--status'. Allowed values: Enabled, Disabled."
        );
        let e = run(&[
            "-g", "rg", "-n", "x", "--status", "Enabled", "--query", "[?",
        ])
        .unwrap_err();
        assert!(message(e).starts_with("ERROR: argument --query: invalid jmespath_type value"));
    }

    #[test]
    fn ids_fill_id_parts_per_resource() {
        let a = "/subscriptions/S1/resourceGroups/rgA/providers/Microsoft.X/things/a";
        let b = "/subscriptions/S2/resourcegroups/rgB/providers/Microsoft.X/things/b";
        let t = run(&["--ids", a, b, "--status", "Enabled"]).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (
                t[1].one("subscription"),
                t[1].one("resource_group"),
                t[1].one("name")
            ),
            (Some("S2"), Some("rgB"), Some("b"))
        );
    }

    #[test]
    fn many_values_run_to_the_next_option() {
        const MANY: &[Param] = &[
            Param::one("keys", &["--keys"]).arity(Arity::Many),
            Param::one("flag", &["-i"])
                .arity(Arity::OptionalBool)
                .choices(&["true", "false"]),
        ];
        let spec = CommandSpec {
            params: MANY,
            ids: false,
            ..SPEC
        };
        let parse_many = |args: &[&str]| {
            let tokens: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            match parse(&spec, &tokens) {
                Ok(ParseResult::Run(t)) => Ok(t[0].clone()),
                Ok(ParseResult::Help) => panic!("help"),
                Err(e) => Err(message(e)),
            }
        };
        let t = parse_many(&["--keys", "a", "b", "-5", "-i", "--keys=c"]).unwrap();
        assert_eq!(
            t.many("keys"),
            Some(&["c".to_string()][..]),
            "the last one wins"
        );
        let t = parse_many(&["--keys", "a", "b", "-5", "-i"]).unwrap();
        let want: Vec<String> = ["a", "b", "-5"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            t.many("keys"),
            Some(&want[..]),
            "a negative number is a value"
        );
        assert_eq!(t.bool3("flag"), Some(true));
        assert_eq!(t.many("flag"), Some(&["true".to_string()][..]));
        assert_eq!(
            parse_many(&["--keys", "-i"]).unwrap_err(),
            "ERROR: argument --keys: expected at least one argument"
        );
        assert_eq!(
            parse_many(&["--keys", "a", "extra", "--bogus"]).unwrap_err(),
            "ERROR: unrecognized arguments: --bogus"
        );
    }

    #[test]
    fn negative_numbers_and_spaced_values_are_values() {
        let t = run(&[
            "-g",
            "rg",
            "-n",
            "-5",
            "--status",
            "Enabled",
            "--query",
            "[?name=='a b']",
        ])
        .unwrap();
        assert_eq!(t[0].one("name"), Some("-5"));
        let t = run(&["-g", "rg", "-n", "-x y", "--status", "Enabled"]).unwrap();
        assert_eq!(t[0].one("name"), Some("-x y"));
    }
}
