//! `az version`, `az account show` and `az account list`.

use super::{Command, Ctx};
use crate::args::{Arity, CommandSpec, Param, Parsed};
use crate::errors::CommandError;
use crate::{render, warnings};
use serde_json::{Value, json};

pub const COMMANDS: &[Command] = &[
    Command {
        spec: CommandSpec {
            words: &["version"],
            summary: "Show the versions of Azure CLI modules and extensions in JSON format by default or format configured by --output.",
            examples: &[],
            params: &[],
            mutating: false,
            ids: false,
            subscription: false,
            validate: None,
        },
        run: version,
    },
    Command {
        spec: CommandSpec {
            words: &["account", "show"],
            summary: "Get the details of a subscription.",
            examples: &[],
            params: &[Param::one(
                "subscription",
                &["--name", "-n", "--subscription", "-s"],
            )],
            mutating: false,
            ids: false,
            subscription: false,
            validate: None,
        },
        run: show,
    },
    Command {
        spec: CommandSpec {
            words: &["account", "list"],
            summary: "Get a list of subscriptions for the logged in account.",
            examples: &[],
            params: &[
                Param::one("all", &["--all"]).arity(Arity::Flag),
                Param::one("refresh", &["--refresh"]).arity(Arity::Flag),
            ],
            mutating: false,
            ids: false,
            subscription: false,
            validate: None,
        },
        run: list,
    },
];

/// What azure-cli 2.91 from PyPI prints (no extensions installed).
fn version(_: &mut Ctx, _: &Parsed) -> Result<Value, CommandError> {
    Ok(
        json!({"azure-cli": "2.91.0", "azure-cli-core": "2.91.0", "azure-cli-telemetry": "1.1.0", "extensions": {}}),
    )
}

/// The current subscription, or the one named by `--subscription` (resolved by the caller,
/// which also reports an unknown one).
fn show(ctx: &mut Ctx, _: &Parsed) -> Result<Value, CommandError> {
    let sub = ctx
        .subscription
        .as_ref()
        .ok_or_else(|| CommandError::client("Please run 'az login' to setup account."))?;
    let h = ctx.header;
    Ok(render::account(
        sub,
        &h.tenant_id,
        &h.user,
        &h.settings.cloud_name,
        false,
    ))
}

/// Every subscription of the profile; without `--all` only the Enabled ones, with az's warning
/// when some were skipped.
fn list(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let h = ctx.header;
    let subs = ctx.store.db().subscriptions()?;
    let shown: Vec<_> = subs
        .iter()
        .filter(|s| p.flag("all") || s.state == "Enabled")
        .collect();
    if shown.len() != subs.len() {
        warnings::warn(
            "A few accounts are skipped as they don't have 'Enabled' state. Use '--all' to display them.",
        );
    }
    Ok(Value::Array(
        shown
            .iter()
            .map(|s| render::account(s, &h.tenant_id, &h.user, &h.settings.cloud_name, true))
            .collect(),
    ))
}
