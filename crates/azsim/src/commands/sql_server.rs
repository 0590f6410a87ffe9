//! `az sql server list/show`, `az sql server tde-key show/set` and `az sql server key
//! list/create/show`.

use super::{Command, Ctx, arg, group, need_group};
use crate::args::{Arity, CommandSpec, IdPart, Param, Parsed};
use crate::armid;
use crate::errors::{self, CommandError};
use crate::render;
use crate::store::{Db, Kind, Loc, server_loc};
use crate::world::{Protector, ServerKey, ServerKeyType, SqlServer};
use serde_json::Value;

const RG: Param = group().required().id(IdPart::ResourceGroup);
const SERVER: Param = Param::one("server", &["--server", "-s"])
    .required()
    .id(IdPart::Name);
pub(super) const KID: Param = Param::one("kid", &["--kid", "-k"]).required();

/// azure-cli 2.91's text, two spaces before "For example" included.
pub(super) const INVALID_KID: &str = "The provided uri is invalid. Please provide a valid Azure Key Vault key id.  For example: \
\"https://YourVaultName.vault.azure.net/keys/YourKeyName/01234567890123456789012345678901\" or \
\"https://YourManagedHsmRegion.YourManagedHsmName.managedhsm.azure.net/keys/YourKeyName/01234567890123456789012345678901\" \
for versioned key or \"https://YourVaultName.vault.azure.net/keys/YourKeyName\" for a versionless key.";

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
                &["sql", "server", "list"],
                "List available servers.",
                &[
                    (
                        "az sql server list",
                        "List all servers in the current subscription.",
                    ),
                    (
                        "az sql server list -g mygroup",
                        "List all servers in a resource group.",
                    ),
                ],
                &[group()],
                false,
            )
        },
        run: list,
    },
    Command {
        spec: spec(
            &["sql", "server", "show"],
            "Gets a server.",
            &[],
            &[
                RG,
                Param::one("name", &["--name", "-n"])
                    .required()
                    .id(IdPart::Name),
            ],
            false,
        ),
        run: show,
    },
    Command {
        spec: spec(
            &["sql", "server", "tde-key", "show"],
            "Gets a server encryption protector.",
            &[],
            &[RG, SERVER],
            false,
        ),
        run: tde_key_show,
    },
    Command {
        spec: spec(
            &["sql", "server", "tde-key", "set"],
            "Sets the server's encryption protector. Ensure to create the key first az sql server key create.",
            &[],
            &[
                RG,
                SERVER,
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
            &["sql", "server", "key", "list"],
            "Gets a list of server keys.",
            &[],
            &[RG, SERVER],
            false,
        ),
        run: key_list,
    },
    Command {
        // azure-cli never adds --ids to a create command.
        spec: CommandSpec {
            ids: false,
            ..spec(
                &["sql", "server", "key", "create"],
                "Creates a server key.",
                &[],
                &[
                    group().required(),
                    Param::one("server", &["--server", "-s"]).required(),
                    KID,
                ],
                true,
            )
        },
        run: key_create,
    },
    Command {
        spec: spec(
            &["sql", "server", "key", "show"],
            "Shows a server key.",
            &[],
            &[RG, SERVER, KID],
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
    let servers: Vec<SqlServer> = db.list(Kind::SqlServer, &sub, rg, None)?;
    Ok(Value::Array(
        servers.iter().map(render::sql_server).collect(),
    ))
}

/// Loads a server. `nested` says the call targets a resource under it: ARM then answers a
/// missing server with ParentResourceNotFound instead of ResourceNotFound.
pub fn load_server(
    db: &Db,
    sub: &str,
    rg: &str,
    name: &str,
    nested: bool,
) -> Result<SqlServer, CommandError> {
    need_group(db, sub, rg)?;
    db.get(
        Kind::SqlServer,
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
            errors::arm_resource_not_found("Microsoft.Sql/servers", name, rg)
        }
    })
}

fn show(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let server = load_server(
        &ctx.store.db(),
        &ctx.sub(),
        arg(p, "resource_group"),
        arg(p, "name"),
        false,
    )?;
    Ok(render::sql_server(&server))
}

fn nested_server(ctx: &Ctx, p: &Parsed) -> Result<SqlServer, CommandError> {
    load_server(
        &ctx.store.db(),
        &ctx.sub(),
        arg(p, "resource_group"),
        arg(p, "server"),
        true,
    )
}

fn tde_key_show(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    Ok(render::protector(&nested_server(ctx, p)?))
}

/// azure-cli derives the key name client-side (so a bad or missing `--kid` fails before any
/// request); the service then refuses a key that was never registered on the server.
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
    ctx.store.immediate(|db| {
        let mut server = load_server(db, &sub, arg(p, "resource_group"), arg(p, "server"), true)?;
        set_protector(
            &mut server.protector,
            &server.keys,
            key_type,
            wanted_name.as_deref(),
            rotation,
        )?;
        db.put(Kind::SqlServer, server_loc(&server), &server)?;
        Ok(render::protector(&server))
    })
}

/// What the SQL service does with a protector change (both faces, servers and managed
/// instances): an AzureKeyVault protector must name a key registered on the server or instance
/// (by its server key name), else ServerKeyNotFound.
pub fn set_protector(
    protector: &mut Protector,
    keys: &[ServerKey],
    key_type: ServerKeyType,
    key_name: Option<&str>,
    rotation: bool,
) -> Result<(), CommandError> {
    let uri = match (key_type, key_name) {
        (ServerKeyType::ServiceManaged, _) => None,
        (ServerKeyType::AzureKeyVault, name) => {
            let key = find_key(keys, name.unwrap_or_default()).ok_or_else(|| {
                CommandError::service(
                    "ServerKeyNotFound",
                    "The requested server key was not found.",
                )
            })?;
            Some(key.uri.clone())
        }
    };
    *protector = Protector {
        server_key_type: key_type,
        uri,
        auto_rotation_enabled: rotation,
    };
    Ok(())
}

/// The registered key whose server key name (derived from its URI) is `name`.
pub fn find_key<'k>(keys: &'k [ServerKey], name: &str) -> Option<&'k ServerKey> {
    keys.iter()
        .find(|k| armid::server_key_name(&k.uri).is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

/// Registers a Key Vault key on a server or instance (a PUT: registering a known key changes
/// nothing) and returns its index in `keys`.
pub fn register_key(keys: &mut Vec<ServerKey>, kid: &str, name: &str) -> usize {
    let existing = keys
        .iter()
        .position(|k| armid::server_key_name(&k.uri).is_some_and(|n| n.eq_ignore_ascii_case(name)));
    existing.unwrap_or_else(|| {
        keys.push(ServerKey {
            uri: kid.to_string(),
            auto_rotation_enabled: false,
        });
        keys.len() - 1
    })
}

/// The registered Key Vault keys, then the built-in ServiceManaged key every server has.
fn key_list(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let server = nested_server(ctx, p)?;
    let mut keys: Vec<Value> = server
        .keys
        .iter()
        .map(|k| render::server_key(&server, Some(k)))
        .collect();
    keys.push(render::server_key(&server, None));
    Ok(Value::Array(keys))
}

/// Registers a key (a PUT: creating an existing key returns it unchanged).
fn key_create(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let kid = arg(p, "kid");
    let name = armid::server_key_name(kid).ok_or_else(|| CommandError::client(INVALID_KID))?;
    let sub = ctx.sub();
    ctx.store.immediate(|db| {
        let mut server = load_server(db, &sub, arg(p, "resource_group"), arg(p, "server"), true)?;
        let count = server.keys.len();
        let index = register_key(&mut server.keys, kid, &name);
        if server.keys.len() != count {
            db.put(Kind::SqlServer, server_loc(&server), &server)?;
        }
        Ok(render::server_key(&server, Some(&server.keys[index])))
    })
}

fn key_show(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let name =
        armid::server_key_name(arg(p, "kid")).ok_or_else(|| CommandError::client(INVALID_KID))?;
    let server = nested_server(ctx, p)?;
    let key = find_key(&server.keys, &name)
        .ok_or_else(|| errors::sql_not_found("Microsoft.Sql/servers/keys", &name))?;
    Ok(render::server_key(&server, Some(key)))
}
