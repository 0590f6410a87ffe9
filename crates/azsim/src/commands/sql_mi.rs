//! `az sql mi list/show`, `az sql mi tde-key show/set` and `az sql mi key list/create/show`:
//! SQL Managed Instances, with the same protector and key rules as SQL servers
//! ([`super::sql_server::set_protector`], [`super::sql_server::register_key`]).

use super::sql_server::{INVALID_KID, KID, find_key, register_key, set_protector};
use super::{Command, Ctx, arg, group, need_group};
use crate::args::{Arity, CommandSpec, IdPart, Param, Parsed};
use crate::armid;
use crate::errors::{self, CommandError};
use crate::render;
use crate::store::{Db, Kind, Loc, managed_instance_loc};
use crate::world::{ServerKeyType, SqlManagedInstance};
use serde_json::Value;

const RG: Param = group().required().id(IdPart::ResourceGroup);
/// `--managed-instance/--mi` (azure-cli's `managed_instance_param_type`; `--ids` fills it from
/// the first name of the id, as `sql mi`'s `id_part='name'` says).
const MI: Param = Param::one("managed_instance_name", &["--managed-instance", "--mi"])
    .required()
    .id(IdPart::Name);
const EXPAND_AD_ADMIN: Param =
    Param::one("expand_ad_admin", &["--expand-ad-admin"]).arity(Arity::Flag);

const fn spec(
    words: &'static [&'static str],
    summary: &'static str,
    examples: &'static [(&'static str, &'static str)],
    params: &'static [Param],
    mutating: bool,
) -> CommandSpec {
    CommandSpec {
        words,
        summary,
        examples,
        params,
        mutating,
        ids: true,
        subscription: true,
        validate: None,
    }
}

pub const COMMANDS: &[Command] = &[
    Command {
        spec: CommandSpec {
            ids: false,
            ..spec(
                &["sql", "mi", "list"],
                "List available managed instances.",
                &[
                    (
                        "az sql mi list",
                        "List all managed instances in the current subscription.",
                    ),
                    (
                        "az sql mi list -g mygroup",
                        "List all managed instances in a resource group.",
                    ),
                ],
                &[group(), EXPAND_AD_ADMIN],
                false,
            )
        },
        run: list,
    },
    Command {
        spec: spec(
            &["sql", "mi", "show"],
            "Get the details for a managed instance.",
            &[],
            &[
                RG,
                Param::one("managed_instance_name", &["--name", "-n"])
                    .required()
                    .id(IdPart::Name),
                EXPAND_AD_ADMIN,
            ],
            false,
        ),
        run: show,
    },
    Command {
        spec: spec(
            &["sql", "mi", "tde-key", "show"],
            "Shows a server encryption protector.",
            &[],
            &[RG, MI],
            false,
        ),
        run: tde_key_show,
    },
    Command {
        spec: spec(
            &["sql", "mi", "tde-key", "set"],
            "Sets the SQL Instance's encryption protector.",
            &[],
            &[
                RG,
                MI,
                Param::one("server_key_type", &["--server-key-type", "-t"])
                    .required()
                    .choices(&["ServiceManaged", "AzureKeyVault"]),
                Param::one("kid", &["--kid", "-k"]),
                Param::one("auto_rotation_enabled", &["--auto-rotation-enabled"])
                    .arity(Arity::OptionalBool)
                    .choices(&["true", "false"]),
            ],
            true,
        ),
        run: tde_key_set,
    },
    Command {
        spec: spec(
            &["sql", "mi", "key", "list"],
            "Gets a list of managed instance keys.",
            &[],
            &[RG, MI, Param::one("filter", &["--filter"])],
            false,
        ),
        run: key_list,
    },
    Command {
        // azure-cli never adds --ids to a create command.
        spec: CommandSpec {
            ids: false,
            ..spec(
                &["sql", "mi", "key", "create"],
                "Creates a SQL Instance key.",
                &[],
                &[
                    group().required(),
                    Param::one("managed_instance_name", &["--managed-instance", "--mi"]).required(),
                    KID,
                ],
                true,
            )
        },
        run: key_create,
    },
    Command {
        spec: spec(
            &["sql", "mi", "key", "show"],
            "Shows a SQL Instance key.",
            &[],
            &[RG, MI, KID],
            false,
        ),
        run: key_show,
    },
];

fn list(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let db = ctx.store.db();
    let sub = ctx.sub();
    let rg = p.one("resource_group");
    if let Some(rg) = rg {
        need_group(&db, &sub, rg)?;
    }
    let instances: Vec<SqlManagedInstance> = db.list(Kind::SqlManagedInstance, &sub, rg, None)?;
    Ok(Value::Array(
        instances.iter().map(render::managed_instance).collect(),
    ))
}

/// Loads a managed instance. `nested` says the call targets a resource under it: ARM then
/// answers a missing instance with ParentResourceNotFound instead of ResourceNotFound.
pub fn load_instance(
    db: &Db,
    sub: &str,
    rg: &str,
    name: &str,
    nested: bool,
) -> Result<SqlManagedInstance, CommandError> {
    need_group(db, sub, rg)?;
    db.get(
        Kind::SqlManagedInstance,
        Loc {
            sub,
            rg,
            parent: "",
            name,
        },
    )?
    .ok_or_else(|| {
        if nested {
            errors::parent_not_found(name)
        } else {
            errors::arm_resource_not_found("Microsoft.Sql/managedInstances", name, rg)
        }
    })
}

fn show(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let mi = load_instance(
        &ctx.store.db(),
        &ctx.sub(),
        arg(p, "resource_group"),
        arg(p, "managed_instance_name"),
        false,
    )?;
    Ok(render::managed_instance(&mi))
}

fn nested_instance(ctx: &Ctx, p: &Parsed) -> Result<SqlManagedInstance, CommandError> {
    load_instance(
        &ctx.store.db(),
        &ctx.sub(),
        arg(p, "resource_group"),
        arg(p, "managed_instance_name"),
        true,
    )
}

fn tde_key_show(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    Ok(render::mi_protector(&nested_instance(ctx, p)?))
}

/// azure-cli derives the key name client-side (a bad or missing `--kid` fails before any
/// request); the service refuses a key that was never registered on the instance. az waits
/// for the long-running operation and prints the protector it then reads.
fn tde_key_set(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let key_type = if arg(p, "server_key_type") == "AzureKeyVault" {
        ServerKeyType::AzureKeyVault
    } else {
        ServerKeyType::ServiceManaged
    };
    let wanted_name = match key_type {
        ServerKeyType::ServiceManaged => None,
        ServerKeyType::AzureKeyVault => {
            let kid = p.one("kid").ok_or_else(|| {
                CommandError::client(
                    "A uri must be provided if the server_key_type is AzureKeyVault.",
                )
            })?;
            Some(armid::server_key_name(kid).ok_or_else(|| CommandError::client(INVALID_KID))?)
        }
    };
    let rotation = p.bool3("auto_rotation_enabled").unwrap_or(false);
    let sub = ctx.sub();
    let (rg, name) = (arg(p, "resource_group"), arg(p, "managed_instance_name"));
    ctx.store.immediate(|db| {
        let mut mi = load_instance(db, &sub, rg, name, true)?;
        set_protector(
            &mut mi.protector,
            &mi.keys,
            key_type,
            wanted_name.as_deref(),
            rotation,
        )?;
        db.put(Kind::SqlManagedInstance, managed_instance_loc(&mi), &mi)?;
        Ok(render::mi_protector(&mi))
    })
}

/// The registered Key Vault keys, then the built-in ServiceManaged key every instance has.
fn key_list(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let mi = nested_instance(ctx, p)?;
    let mut keys: Vec<Value> = mi
        .keys
        .iter()
        .map(|k| render::mi_key(&mi, Some(k)))
        .collect();
    keys.push(render::mi_key(&mi, None));
    Ok(Value::Array(keys))
}

/// Registers a key (a PUT: creating an existing key returns it unchanged).
fn key_create(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let kid = arg(p, "kid");
    let name = armid::server_key_name(kid).ok_or_else(|| CommandError::client(INVALID_KID))?;
    let sub = ctx.sub();
    let (rg, mi_name) = (arg(p, "resource_group"), arg(p, "managed_instance_name"));
    ctx.store.immediate(|db| {
        let mut mi = load_instance(db, &sub, rg, mi_name, true)?;
        let count = mi.keys.len();
        let index = register_key(&mut mi.keys, kid, &name);
        if mi.keys.len() != count {
            db.put(Kind::SqlManagedInstance, managed_instance_loc(&mi), &mi)?;
        }
        Ok(render::mi_key(&mi, Some(&mi.keys[index])))
    })
}

fn key_show(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let name =
        armid::server_key_name(arg(p, "kid")).ok_or_else(|| CommandError::client(INVALID_KID))?;
    let mi = nested_instance(ctx, p)?;
    let key = find_key(&mi.keys, &name)
        .ok_or_else(|| errors::sql_not_found("Microsoft.Sql/managedInstances/keys", &name))?;
    Ok(render::mi_key(&mi, Some(key)))
}
