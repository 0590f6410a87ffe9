//! `az group exists`: whether a resource group is there, as the JSON boolean az prints.
//!
//! azsim's worlds list resources, not groups: a group exists when a resource of the world is in
//! it ([`crate::store::Db::group_exists`]), compared case-insensitively as Azure does. Both faces
//! answer from [`exists`]: the CLI face prints `true` or `false`, the ARM face answers the `HEAD`
//! the real az sends with 204 or 404.

use super::{Command, Ctx, arg};
use crate::args::{CommandSpec, Param, Parsed};
use crate::errors::CommandError;
use crate::store::Db;
use serde_json::Value;

pub const COMMANDS: &[Command] = &[Command {
    spec: CommandSpec {
        words: &["group", "exists"],
        summary: "Check if a resource group exists.",
        examples: &[(
            "az group exists -n MyResourceGroup",
            "Check if 'MyResourceGroup' exists.",
        )],
        // azure-cli's `group` argument context: the name under four option strings, no --ids.
        params: &[Param::one(
            "resource_group_name",
            &["--name", "-n", "--resource-group", "-g"],
        )
        .required()],
        mutating: false,
        ids: false,
        subscription: true,
        validate: None,
    },
    run: exists_command,
}];

/// Whether the resource group `name` exists in subscription `sub` (the rule both faces use).
pub fn exists(db: &Db, sub: &str, name: &str) -> Result<bool, CommandError> {
    Ok(db.group_exists(sub, name)?)
}

/// az prints the boolean `check_existence` returned: `true` or `false`, never nothing.
fn exists_command(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let sub = ctx.sub();
    Ok(Value::Bool(exists(
        &ctx.store.db(),
        &sub,
        arg(p, "resource_group_name"),
    )?))
}
