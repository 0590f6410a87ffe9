//! The management face (`azsim ...`): build, inspect and tune the world that the CLI face
//! answers from.

use crate::seed::{self, Fleet};
use crate::store::Store;
use crate::world::{Settings, TdeField, World};
use crate::{cli, invocation_log};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "azsim",
    about = "Azure CLI simulator: answers `az` calls from a world store",
    long_about = "Azure CLI simulator for azbook's tests, demo and benchmarks.\n\n\
                  Invoked as `azsim` it manages the world; invoked through a link or copy named \
                  `az` (or as `azsim az ...`) it behaves as the Azure CLI against that world."
)]
struct Cli {
    /// The world database (SQLite).
    #[arg(long, env = "AZSIM_WORLD", global = true)]
    world: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replace the world with a world JSON file (`-` reads stdin).
    Load { file: PathBuf },
    /// Print the whole world as JSON (sorted keys, stable order).
    Dump,
    /// Write a fresh generated world (deterministic for a given --seed).
    Seed {
        #[arg(long, value_enum)]
        fleet: Fleet,
        /// Number of subscriptions (default: small 1, medium 2, large 4). The hand-made demo
        /// fleet ignores this and --noncompliant-percent.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        subscriptions: Option<u32>,
        /// Share of each resource kind that is not on Microsoft-managed keys.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=100))]
        noncompliant_percent: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Change settings: signedIn=true|false, latencyMs=N, jitterMs=N, tdeField=state|status,
    /// cloudName=NAME, encryptionScopePageSize=N (N >= 1).
    Settings {
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Print the invocation log (one JSON line per `az` call).
    Calls {
        /// Only calls that change the world.
        #[arg(long)]
        mutating: bool,
    },
    /// Serve the Azure Resource Manager REST API (the ARM face) over HTTPS on 127.0.0.1, so
    /// that the real azure-cli can run against the world. Prints the base URL on stdout.
    Serve {
        /// TCP port; 0 picks a free one (see --port-file).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Write the chosen port to FILE (after the certificate; written atomically).
        #[arg(long, value_name = "FILE")]
        port_file: Option<PathBuf>,
        /// Write the CA certificate (PEM) to FILE: point REQUESTS_CA_BUNDLE at it.
        #[arg(long, value_name = "FILE")]
        cert_out: Option<PathBuf>,
        /// Polls of each SQL change (202 Accepted) that answer InProgress before Succeeded.
        #[arg(long, default_value_t = 1, value_name = "N")]
        lro_polls: u32,
        /// Retry-After seconds on 202 answers and in-progress polls (at least 1: azure-core
        /// waits its 30 s default when it is 0).
        #[arg(long, default_value_t = 1, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
        retry_after: u64,
        /// Database lists omit `encryptionProtector` (a GET of one database still has it).
        #[arg(long)]
        db_list_omits_protector: bool,
    },
    /// Run the CLI face: `azsim az storage account list` is `az storage account list`.
    #[command(disable_help_flag = true)]
    Az {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
}

/// Runs a management command; `args` excludes the program name.
pub fn run(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(std::iter::once("azsim".to_string()).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match execute(cli.command, cli.world) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("azsim: error: {e:#}");
            1
        }
    }
}

fn world_path(world: Option<PathBuf>) -> Result<PathBuf> {
    world
        .filter(|w| !w.as_os_str().is_empty())
        .context("no world: set AZSIM_WORLD or pass --world")
}

/// Runs a subcommand; returns the exit code (the CLI face's, for `azsim az`).
fn execute(command: Command, world: Option<PathBuf>) -> Result<i32> {
    match command {
        Command::Az { args } => return Ok(cli::run(&args, world)),
        Command::Serve {
            port,
            port_file,
            cert_out,
            lro_polls,
            retry_after,
            db_list_omits_protector,
        } => crate::serve::run(crate::serve::Options {
            world: world_path(world)?,
            port,
            port_file,
            cert_out,
            lro_polls,
            retry_after,
            db_list_omits_protector,
        })?,
        Command::Load { file } => {
            let text = if file == Path::new("-") {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let parsed = World::from_json(&text)?;
            Store::create(&world_path(world)?)?.replace_world(&parsed)?;
        }
        Command::Dump => {
            let loaded = Store::open(&world_path(world)?)?.load_world()?;
            // Through a Value: its maps are sorted, so the dump is canonical.
            let value = serde_json::to_value(&loaded)?;
            print_out(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
        }
        Command::Seed {
            fleet,
            subscriptions,
            noncompliant_percent,
            seed,
        } => {
            let generated = seed::generate(fleet, subscriptions, noncompliant_percent, seed)?;
            Store::create(&world_path(world)?)?.replace_world(&generated)?;
            eprintln!(
                "azsim: seeded {} subscriptions, {} storage accounts ({} encryption scopes), {} SQL servers, {} databases, {} managed instances",
                generated.subscriptions.len(),
                generated.storage_accounts.len(),
                generated.encryption_scopes.len(),
                generated.sql_servers.len(),
                generated.sql_databases.len(),
                generated.sql_managed_instances.len()
            );
        }
        Command::Settings { pairs } => {
            let mut store = Store::open(&world_path(world)?)?;
            store.immediate(|db| -> Result<()> {
                let mut settings = db.header()?.settings;
                for pair in &pairs {
                    apply_setting(&mut settings, pair)?;
                }
                db.set_settings(&settings)
            })?;
        }
        Command::Calls { mutating } => {
            for line in invocation_log::read(&invocation_log::path(&world_path(world)?), mutating)?
            {
                println!("{line}");
            }
        }
    }
    Ok(0)
}

/// Writes to stdout; a reader that went away (`azsim calls | head`) is not an error.
fn print_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn apply_setting(settings: &mut Settings, pair: &str) -> Result<()> {
    let (key, value) = pair
        .split_once('=')
        .with_context(|| format!("expected KEY=VALUE, got '{pair}'"))?;
    let number = || {
        value
            .parse::<u64>()
            .with_context(|| format!("{key} needs a number of milliseconds, got '{value}'"))
    };
    match key {
        "signedIn" => {
            settings.signed_in = value
                .parse()
                .with_context(|| format!("signedIn needs true or false, got '{value}'"))?
        }
        "latencyMs" => settings.latency_ms = number()?,
        "jitterMs" => settings.jitter_ms = number()?,
        "tdeField" => {
            settings.tde_field = match value {
                "state" => TdeField::State,
                "status" => TdeField::Status,
                _ => bail!("tdeField needs state or status, got '{value}'"),
            }
        }
        "cloudName" if !value.is_empty() => settings.cloud_name = value.to_string(),
        "encryptionScopePageSize" => match value.parse::<u32>() {
            Ok(n) if n >= 1 => settings.encryption_scope_page_size = n,
            _ => bail!("encryptionScopePageSize must be a whole number of at least 1: '{pair}'"),
        },
        _ => bail!(
            "unknown setting '{pair}' (known: signedIn, latencyMs, jitterMs, tdeField, cloudName, encryptionScopePageSize)"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_pairs() {
        let mut s = Settings::default();
        for pair in [
            "signedIn=false",
            "latencyMs=200",
            "jitterMs=50",
            "tdeField=status",
            "cloudName=EmuCloud",
            "encryptionScopePageSize=7",
        ] {
            apply_setting(&mut s, pair).unwrap();
        }
        assert!(!s.signed_in);
        assert_eq!(
            (
                s.latency_ms,
                s.jitter_ms,
                s.tde_field,
                s.cloud_name.as_str()
            ),
            (200, 50, TdeField::Status, "EmuCloud")
        );
        for bad in [
            "signedIn=maybe",
            "latencyMs=-1",
            "tdeField=both",
            "encryptionScopePageSize=0",
            "color=blue",
            "novalue",
        ] {
            assert!(apply_setting(&mut s, bad).is_err(), "{bad}");
        }
    }
}
