//! The CLI face: azsim invoked as `az`. One call runs the same stages as a real az call, in the
//! same order, so every failure surfaces at the stage where az would report it:
//! log the call, parse (exit 2), check sign-in and subscription (client side), wait (latency,
//! faults), run against the store, then print through `--query` and `--output`.

use crate::args::{self, CommandSpec, ParseResult, Parsed};
use crate::commands::{self, Command, Ctx, Resolution};
use crate::errors::CommandError;
use crate::store::{Header, Store};
use crate::synth;
use crate::world::Subscription;
use crate::{faults, invocation_log, output, warnings};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

/// knack's logging flags: accepted anywhere on the command line and removed before parsing.
const LOGGING_FLAGS: &[&str] = &["--only-show-errors", "--verbose", "--debug"];

/// Runs one az call; `argv` is everything after `az`. Returns the process exit code.
pub fn run(argv: &[String], world: Option<PathBuf>) -> i32 {
    let Some(world) = world.filter(|w| !w.as_os_str().is_empty()) else {
        eprintln!("ERROR: azsim: AZSIM_WORLD is not set");
        return 1;
    };
    warnings::set_only_errors(argv.iter().any(|a| a == "--only-show-errors"));
    let tokens: Vec<String> = argv
        .iter()
        .filter(|a| !LOGGING_FLAGS.contains(&a.as_str()))
        .cloned()
        .collect();
    let resolution = commands::resolve(&tokens);
    let mutating = matches!(&resolution, Resolution::Command(c, _) if c.spec.mutating);
    if let Err(e) = invocation_log::append(
        &invocation_log::path(&world),
        synth::unix_seconds(),
        argv,
        mutating,
    ) {
        eprintln!("ERROR: azsim: {e:#}");
        return 1;
    }
    match answer(resolution, &tokens, argv, &world) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            // A reader that went away (EPIPE) is its own business, as with az.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            0
        }
        Err(e) => {
            eprint!("{}", e.render());
            e.exit_code()
        }
    }
}

/// Everything after logging; returns the text for stdout.
fn answer(
    resolution: Resolution,
    tokens: &[String],
    argv: &[String],
    world: &Path,
) -> Result<String, CommandError> {
    let (command, consumed) = match resolution {
        Resolution::Unknown(e) => return Err(e),
        Resolution::Group { name, children } => return Ok(group_help(&name, &children)),
        Resolution::Command(c, n) => (c, n),
    };
    let targets = match args::parse(&command.spec, &tokens[consumed..])? {
        ParseResult::Help => return Ok(args::help_text(&command.spec)),
        ParseResult::Run(targets) => targets,
    };
    let format = targets[0].one("output").unwrap_or("json").to_string();
    if !matches!(format.as_str(), "json" | "jsonc" | "tsv" | "none") {
        return Err(CommandError::validation(format!(
            "azsim: output format '{format}' is not simulated (use json, jsonc, tsv or none)"
        )));
    }
    let query = targets[0].one("query").map(str::to_string);

    let mut store = Store::open(world)?;
    let header = store.db().header()?;
    let words = command.spec.words;
    if !header.settings.signed_in && words != ["version"] {
        return signed_out(words, query.as_deref(), &format);
    }
    let scoped = scope(&command.spec, targets, &store.db().subscriptions()?)?;

    let fired = faults::fire(&store.db(), words, argv)?;
    std::thread::sleep(
        synth::latency(header.settings.latency_ms, header.settings.jitter_ms) + fired.delay,
    );
    if let Some(e) = fired.error {
        return Err(e);
    }
    let result = run_targets(command, &mut store, &header, scoped)?;
    if fired.crash {
        crash_now();
    }
    let text = output::format(&output::apply_query(result, query.as_deref())?, &format);
    Ok(if fired.malformed {
        faults::tear(&text)
    } else {
        text
    })
}

/// What az answers a signed-out caller: `az account list` warns and prints an empty list
/// (exit 0), every other command asks for `az login`.
fn signed_out(words: &[&str], query: Option<&str>, format: &str) -> Result<String, CommandError> {
    if words == ["account", "list"] {
        warnings::warn("Please run \"az login\" to access your accounts.");
        return Ok(output::format(
            &output::apply_query(Value::Array(Vec::new()), query)?,
            format,
        ));
    }
    Err(CommandError::client(
        "Please run 'az login' to setup account.",
    ))
}

/// Pairs each target with the subscription it runs in, for the commands that take one; an
/// unknown subscription fails the call before anything runs.
fn scope(
    spec: &CommandSpec,
    targets: Vec<Parsed>,
    subs: &[Subscription],
) -> Result<Vec<(Parsed, Option<Subscription>)>, CommandError> {
    let takes_subscription = spec.subscription || spec.words == ["account", "show"];
    targets
        .into_iter()
        .map(|t| {
            let sub = if takes_subscription {
                Some(find_subscription(subs, t.one("subscription"))?)
            } else {
                None
            };
            Ok((t, sub))
        })
        .collect()
}

/// Runs the command once per target: one result, or an array of them for several `--ids`.
fn run_targets(
    command: &Command,
    store: &mut Store,
    header: &Header,
    scoped: Vec<(Parsed, Option<Subscription>)>,
) -> Result<Value, CommandError> {
    let mut results = Vec::with_capacity(scoped.len());
    for (target, subscription) in scoped {
        let mut ctx = Ctx {
            store,
            header,
            subscription,
        };
        results.push((command.run)(&mut ctx, &target)?);
    }
    Ok(if results.len() == 1 {
        results.pop().unwrap_or(Value::Null)
    } else {
        Value::Array(results)
    })
}

/// The subscription a call works in: `--subscription` (id or name, case-insensitive) or the
/// default one. An unknown one is az's client-side profile error (exit 1).
fn find_subscription(
    subs: &[Subscription],
    wanted: Option<&str>,
) -> Result<Subscription, CommandError> {
    let found = match wanted {
        Some(w) => subs
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(w) || s.name.eq_ignore_ascii_case(w)),
        None => subs.iter().find(|s| s.is_default),
    };
    match (found, wanted) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(w)) => Err(CommandError::client(format!(
            "Subscription '{w}' not found. Check the spelling and casing and try again."
        ))),
        (None, None) => Err(CommandError::client(
            "Please run 'az login' to setup account.",
        )),
    }
}

/// Dies the way a killed az does (exit status 137 in a shell), after the change was committed
/// and before anything was printed.
fn crash_now() -> ! {
    // SAFETY: getpid and kill have no memory-safety preconditions; SIGKILL ends this process.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

fn group_help(name: &str, children: &[String]) -> String {
    let mut text = format!("\nGroup\n    {name}\n\nSubgroups and commands:\n");
    for c in children {
        text.push_str(&format!("    {c}\n"));
    }
    text
}
