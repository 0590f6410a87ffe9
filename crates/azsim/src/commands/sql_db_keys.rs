//! Database-level customer-managed keys: `az sql db update` with its per-database key
//! arguments and `az sql db tde key revert`, and the service rules both faces share
//! ([`DatabaseChange`], [`apply_change`], [`revert_protector`]).
//!
//! `az sql db update` is az's generic update: it GETs the database (no `$expand`, so without
//! its `keys`), GETs the server and the database's replication links, changes the object it
//! read (custom.py `db_update`) and PUTs all of it back, a long-running operation whose final
//! GET az prints. The CLI face turns the arguments into the [`DatabaseChange`] that PUT
//! amounts to; the ARM face reads the same change from the PUT body
//! (`serve::wire::parse_database_put`).

use super::sql_db::{DATABASE, NAME, RG, SERVER, load, spec};
use super::{Command, Ctx};
use crate::args::{Arity, CommandSpec, Param, Parsed};
use crate::armid;
use crate::errors::CommandError;
use crate::render;
use crate::store::{Kind, database_loc};
use crate::world::{DatabaseIdentity, SqlDatabase};
use serde_json::Value;

const THREE_STATE: &[&str] = &["true", "false"];

/// `sql db update`'s arguments that azsim models, in az 2.91's spellings. The rest of az's
/// arguments (sku, size, zone redundancy, ...) are refused as unrecognized.
const UPDATE_PARAMS: &[Param] = &[
    RG,
    SERVER,
    NAME,
    Param::one("assign_identity", &["--assign-identity", "-i"])
        .arity(Arity::OptionalBool)
        .choices(THREE_STATE),
    Param::one(
        "user_assigned_identity_id",
        &["--user-assigned-identity-id", "--umi"],
    )
    .arity(Arity::Many),
    Param::one("keys", &["--keys"]).arity(Arity::Many),
    Param::one("keys_to_remove", &["--keys-to-remove"]).arity(Arity::Many),
    Param::one("encryption_protector", &["--encryption-protector"]),
    Param::one("federated_client_id", &["--federated-client-id"]),
    Param::one(
        "encryption_protector_auto_rotation",
        &["--encryption-protector-auto-rotation", "--epauto"],
    )
    .arity(Arity::OptionalBool)
    .choices(THREE_STATE),
    Param::one("no_wait", &["--no-wait"]).arity(Arity::Flag),
    // az's generic update arguments: parsed, then refused by `generic_update_validator`.
    Param::one("set", &["--set"]).arity(Arity::Many),
    Param::one("add", &["--add"]).arity(Arity::Many),
    Param::one("remove", &["--remove"]).arity(Arity::Many),
    Param::one("force_string", &["--force-string"]).arity(Arity::Flag),
];

/// azure-cli 2.91's help examples of `az sql db update`, in its order (usage errors print the
/// best three).
const UPDATE_EXAMPLES: &[(&str, &str)] = &[
    (
        "az sql db update -g mygroup -s myserver -n mydb --edition Standard --capacity 10 --max-size 250GB",
        "Update a database to Standard edition, S0 performance level (10 DTU) by specifying DTU capacity. Note that GeneralPurpose allows a wider range of max size than Standard edition.",
    ),
    (
        "az sql db update -g mygroup -s myserver -n mydb --edition Standard --service-objective S1 --max-size 250GB",
        "Update a database to Standard edition, S1 performance level (20 DTU) by specifying performance level name. Note that GeneralPurpose allows a wider range of max size than Standard edition.",
    ),
    (
        "az sql db update -g mygroup -s myserver -n mydb --edition GeneralPurpose --capacity 4 --family Gen5",
        "Update a database to GeneralPurpose edition, 4 vcores with Gen5 hardware",
    ),
    (
        "az sql db update -g mygroup -s myserver -n mydb --max-size 500GB",
        "Update database with increased max size",
    ),
    (
        "az sql db update -g mygroup -s myserver -n mydb -z",
        "Update database with zone redundancy enabled",
    ),
    (
        "az sql db update -g mygroup -s myserver -n mydb -z false",
        "Update database with zone redundancy explicitly disabled",
    ),
    (
        "az sql db update -g mygroup -s myserver -n mydb --edition GeneralPurpose --capacity 2 --family Gen5 --compute-model Serverless",
        "Update database to serverless compute model",
    ),
    (
        "az sql db update -g mygroup -s myserver -n mydb --backup-storage-redundancy Local",
        "Update database with locally redundant backup storage",
    ),
    (
        "az sql db update -g mygroup -s myserver -n mydb --preferred-enclave-type VBS",
        "Update database with VBS enclave enabled.",
    ),
    (
        "az sql db update -g mygroup -s myserver -n mydb --free-limit-exhaustion-behavior BillOverUsage",
        "Update exhaustion behavior of free limit database to BillOverUsage",
    ),
    (
        "az sql db update -g mygroup -s myserver -n mydb --edition Hyperscale --service-objective HS_Gen5_2 --manual-cutover",
        "Update a database to Hyperscale edition, 2 vcores with Gen5 hardware, with manual cutover option",
    ),
    (
        "az sql db update -g mygroup -s myserver -n mydb --perform-cutover",
        "Trigger cutover with perform cutover option when update database to Hyperscale edition is in progress",
    ),
];

pub const COMMANDS: &[Command] = &[
    Command {
        spec: CommandSpec {
            validate: Some(generic_update_validator),
            ..spec(
                &["sql", "db", "update"],
                "Update a database.",
                UPDATE_EXAMPLES,
                UPDATE_PARAMS,
                true,
            )
        },
        run: update,
    },
    Command {
        spec: spec(
            &["sql", "db", "tde", "key", "revert"],
            "Reverts a database's encryption protector key to server level.",
            &[(
                "az sql db tde key revert --database mydb --resource-group MyResourceGroup --server myserver",
                "Reverts a database's encryption protector key to server level. (autogenerated)",
            )],
            &[RG, SERVER, DATABASE],
            true,
        ),
        run: revert,
    },
];

/// az applies `--set/--add/--remove` to the object it read; azsim does not model that path
/// language, so it says so (exit 2, before anything runs) instead of ignoring them.
/// `--force-string` alone changes nothing and is accepted.
fn generic_update_validator(p: &Parsed) -> Result<(), CommandError> {
    if ["set", "add", "remove"].iter().any(|d| p.flag(d)) {
        return Err(CommandError::validation(
            "azsim: the generic update arguments --set, --add and --remove are not simulated for az sql db update",
        ));
    }
    Ok(())
}

/// What one database PUT asks of the per-database key fields. `None` (or no keys) leaves a
/// field as it is: az always sends back the values it read, so an unchanged field arrives as
/// its current value, which changes nothing either.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseChange {
    /// The user-assigned identity ids the database's identity holds from now on (a PUT's
    /// identity is the whole identity); empty: no identity.
    pub identity: Option<Vec<String>>,
    /// The PUT's `keys` map: a URI to add (true, sent as `{}`) or to remove (false, sent as
    /// null).
    pub keys: Vec<(String, bool)>,
    pub encryption_protector: Option<String>,
    pub federated_client_id: Option<String>,
    pub auto_rotation: Option<bool>,
}

/// The change az's `db_update` makes to the database it read, as custom.py does it: the
/// identity only with `-i` and `--umi` both (`--umi` alone is ignored; `-i` alone changes
/// nothing), and with `--keys` or `--keys-to-remove` a keys map of exactly the keys given, each
/// once, a key to remove only when it is not also a key to add.
pub fn change_from_args(p: &Parsed) -> DatabaseChange {
    let identity = match (
        p.bool3("assign_identity"),
        p.many("user_assigned_identity_id"),
    ) {
        (Some(true), Some(ids)) => Some(ids.to_vec()),
        _ => None,
    };
    let mut keys: Vec<(String, bool)> = Vec::new();
    for key in p.many("keys").unwrap_or_default() {
        if !keys.iter().any(|(k, _)| k == key) {
            keys.push((key.clone(), true));
        }
    }
    for key in p.many("keys_to_remove").unwrap_or_default() {
        if !keys.iter().any(|(k, _)| k == key) {
            keys.push((key.clone(), false));
        }
    }
    DatabaseChange {
        identity,
        keys,
        encryption_protector: p.one("encryption_protector").map(str::to_string),
        federated_client_id: p.one("federated_client_id").map(str::to_string),
        auto_rotation: p.bool3("encryption_protector_auto_rotation"),
    }
}

/// The system database takes no key or identity of its own (azsim's wording, like
/// [`super::sql_db::set_tde`]'s: the service's text for this case is not in the reference
/// corpus).
fn refuse_system(db: &SqlDatabase, what: &str) -> Result<(), CommandError> {
    if db.is_system() {
        return Err(CommandError::service(
            "OperationNotSupportedOnSystemDatabase",
            format!(
                "{what} cannot be changed on the system database '{}'.",
                db.name
            ),
        ));
    }
    Ok(())
}

/// A key the database is to use must be a Key Vault key id. The code and text are the SQL
/// RP's documented ones for an invalid Key Vault URI on an encryption protector (Encryption
/// Protectors - Create Or Update); no database capture shows them.
fn check_key_uri(uri: &str) -> Result<(), CommandError> {
    if armid::server_key_name(uri).is_some() {
        return Ok(());
    }
    Err(CommandError::service(
        "AzureKeyVaultInvalidUri",
        "An invalid response from Azure Key Vault. Please use a valid Azure Key Vault URI.",
    ))
}

/// What the SQL service does with a database PUT's per-database key fields (both faces).
///
/// - `keys` merge: a URI sent with `{}` is added, one sent as null is removed, the keys not
///   sent stay. The spec's PATCH example removes a key by sending it as null, which only means
///   something if keys merge, and az never sends the keys it read (it reads without
///   `$expand`), so replacing would drop every key on any `az sql db update`. Removals apply
///   before additions; URIs compare ignoring case; the set is kept in one order
///   ([`SqlDatabase::tidy_keys`]).
/// - the protector is always among the keys (added when missing: the recorded
///   `-i --encryption-protector` update sent no keys and succeeded); removing the protector's
///   key is refused (azsim's wording: no capture).
/// - `identity` replaces the identity (ARM's PUT), keeping the Entra ids of identities the
///   database already had.
pub fn apply_change(db: &mut SqlDatabase, change: &DatabaseChange) -> Result<(), CommandError> {
    refuse_system(db, "Database-level customer-managed keys")?;
    let added: Vec<&String> = change
        .keys
        .iter()
        .filter(|(_, a)| *a)
        .map(|(k, _)| k)
        .collect();
    for uri in change
        .encryption_protector
        .iter()
        .chain(added.iter().copied())
    {
        check_key_uri(uri)?;
    }
    let protector = change
        .encryption_protector
        .clone()
        .or_else(|| db.encryption_protector.clone());
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let removed: Vec<&String> = change
        .keys
        .iter()
        .filter(|(_, a)| !*a)
        .map(|(k, _)| k)
        .collect();
    if let Some(uri) = removed
        .iter()
        .find(|uri| protector.as_deref().is_some_and(|p| same(p, uri)))
    {
        return Err(CommandError::service(
            "InvalidDatabaseKeysToRemove",
            format!(
                "The key '{uri}' is the database's encryption protector and cannot be removed."
            ),
        ));
    }
    db.keys.retain(|k| !removed.iter().any(|uri| same(k, uri)));
    db.keys.extend(added.into_iter().cloned());
    if let Some(ids) = &change.identity {
        db.identity = (!ids.is_empty()).then(|| DatabaseIdentity::of(ids, db.identity.as_ref()));
    }
    db.encryption_protector = protector;
    db.tidy_keys();
    db.federated_client_id = change
        .federated_client_id
        .clone()
        .or(db.federated_client_id.take());
    db.encryption_protector_auto_rotation = change
        .auto_rotation
        .or(db.encryption_protector_auto_rotation);
    Ok(())
}

/// What the SQL service does on `.../encryptionProtector/current/revert` (both faces): the
/// database goes back to the server's TDE protector.
///
/// - `encryptionProtector` becomes null: what the operation is for.
/// - `encryptionProtectorAutoRotation` becomes null: it is a setting of the database-level
///   protector, which is gone (a database that never had one carries no such field).
/// - `keys` are emptied: azsim's pessimistic reading (no recording of a revert exists, and the
///   spec's example has no body), so that whatever reverses a revert must give the keys back;
///   if the service kept them, giving them back changes nothing, as keys merge.
/// - `identity` and `federatedClientId` stay: they belong to the database resource, not to
///   its encryption protector, the child resource the action is on.
///
/// Refused for the system database and for a database without a key of its own (azsim's
/// wording; the service's text is not in the reference corpus).
pub fn revert_protector(db: &mut SqlDatabase) -> Result<(), CommandError> {
    refuse_system(db, "The encryption protector")?;
    if db.encryption_protector.is_none() {
        return Err(CommandError::service(
            "DatabaseEncryptionProtectorNotSet",
            format!(
                "The database '{}' has no database-level encryption protector to revert: it already uses the server's.",
                db.name
            ),
        ));
    }
    db.encryption_protector = None;
    db.encryption_protector_auto_rotation = None;
    db.keys.clear();
    Ok(())
}

/// `az sql db update`: the change is made at once (the PUT's operation has nothing left to
/// wait for in azsim); az prints the database as its final GET returns it (without `keys`),
/// or nothing with `--no-wait`.
fn update(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let change = change_from_args(p);
    let sub = ctx.sub();
    let database = ctx.store.immediate(|db| {
        let mut database = load(db, &sub, p, "name")?;
        apply_change(&mut database, &change)?;
        db.put(Kind::SqlDatabase, database_loc(&database), &database)?;
        Ok::<_, CommandError>(database)
    })?;
    Ok(if p.flag("no_wait") {
        Value::Null
    } else {
        render::database(&database, false)
    })
}

/// `az sql db tde key revert`: the operation's result is None (the SDK's `begin_revert`), so
/// az prints nothing.
fn revert(ctx: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let sub = ctx.sub();
    ctx.store.immediate(|db| {
        let mut database = load(db, &sub, p, "database")?;
        revert_protector(&mut database)?;
        db.put(Kind::SqlDatabase, database_loc(&database), &database)?;
        Ok::<_, CommandError>(())
    })?;
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::World;

    const K1: &str = "https://kvx.vault.azure.net/keys/k/1111";
    const K2: &str = "https://kvx.vault.azure.net/keys/k/2222";
    const UAI: &str = "/subscriptions/s1/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u";

    fn database(name: &str) -> SqlDatabase {
        let w = World::from_json(&format!(
            r#"{{"subscriptions":[{{"id":"s1","name":"one"}}],
                "sqlServers":[{{"resourceGroup":"rg","name":"srv"}}],
                "sqlDatabases":[{{"resourceGroup":"rg","server":"srv","name":"{name}"}}]}}"#
        ))
        .unwrap();
        w.sql_databases[0].clone()
    }

    fn parsed(args: &[&str]) -> Parsed {
        let mut tokens: Vec<String> = ["-g", "rg", "-s", "srv", "-n", "db"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        tokens.extend(args.iter().map(|s| s.to_string()));
        match crate::args::parse(&COMMANDS[0].spec, &tokens).unwrap() {
            crate::args::ParseResult::Run(mut t) => t.remove(0),
            crate::args::ParseResult::Help => panic!("help"),
        }
    }

    #[test]
    fn args_become_the_change_az_sends() {
        let c = change_from_args(&parsed(&["--umi", UAI, "--keys", K1, K1, K2]));
        assert_eq!(c.identity, None, "--umi without -i is ignored");
        assert_eq!(c.keys, [(K1.to_string(), true), (K2.to_string(), true)]);
        let c = change_from_args(&parsed(&[
            "-i",
            "--umi",
            UAI,
            "--keys-to-remove",
            K1,
            K2,
            "--keys",
            K1,
        ]));
        assert_eq!(c.identity, Some(vec![UAI.to_string()]));
        assert_eq!(c.keys, [(K1.to_string(), true), (K2.to_string(), false)]);
        let c = change_from_args(&parsed(&["-i", "false", "--umi", UAI, "--epauto"]));
        assert_eq!((c.identity, c.auto_rotation), (None, Some(true)));
        assert_eq!(
            change_from_args(&parsed(&["-i"])),
            DatabaseChange::default()
        );
    }

    #[test]
    fn keys_merge_and_the_protector_is_always_one() {
        let mut db = database("db");
        db.keys = vec![K1.into()];
        let change = DatabaseChange {
            identity: Some(vec![UAI.into()]),
            encryption_protector: Some(K2.into()),
            auto_rotation: Some(true),
            ..DatabaseChange::default()
        };
        apply_change(&mut db, &change).unwrap();
        assert_eq!(db.keys, [K1, K2], "kept, then the protector added");
        assert_eq!(db.encryption_protector.as_deref(), Some(K2));
        assert_eq!(db.encryption_protector_auto_rotation, Some(true));
        assert!(
            db.identity
                .as_ref()
                .unwrap()
                .user_assigned_identities
                .contains_key(UAI)
        );
        let remove_old = DatabaseChange {
            keys: vec![(K1.to_uppercase(), false)],
            ..DatabaseChange::default()
        };
        apply_change(&mut db, &remove_old).unwrap();
        assert_eq!(db.keys, [K2]);
        let remove_protector = DatabaseChange {
            keys: vec![(K2.into(), false)],
            ..DatabaseChange::default()
        };
        let e = apply_change(&mut db, &remove_protector).unwrap_err();
        assert!(
            e.render().contains("(InvalidDatabaseKeysToRemove)"),
            "{}",
            e.render()
        );
        let bad = DatabaseChange {
            keys: vec![("https://example.com/k".into(), true)],
            ..DatabaseChange::default()
        };
        let e = apply_change(&mut db, &bad).unwrap_err();
        assert!(e.render().contains("(AzureKeyVaultInvalidUri)"));
        assert_eq!(db.keys, [K2], "a refused change changes nothing");
    }

    #[test]
    fn the_key_set_does_not_depend_on_the_order_sent() {
        let (mut a, mut b) = (database("db"), database("db"));
        let change = |keys: &[&str]| DatabaseChange {
            keys: keys.iter().map(|k| (k.to_string(), true)).collect(),
            ..DatabaseChange::default()
        };
        apply_change(&mut a, &change(&[K2, K1])).unwrap();
        apply_change(&mut b, &change(&[K1, K2])).unwrap();
        assert_eq!(a, b, "az's argument order and a PUT's sorted map agree");
    }

    #[test]
    fn revert_clears_the_protector_and_keys_and_keeps_the_identity() {
        let mut db = database("db");
        apply_change(
            &mut db,
            &DatabaseChange {
                identity: Some(vec![UAI.into()]),
                keys: vec![(K1.into(), true)],
                encryption_protector: Some(K2.into()),
                federated_client_id: Some("f".into()),
                auto_rotation: Some(true),
            },
        )
        .unwrap();
        let identity = db.identity.clone();
        revert_protector(&mut db).unwrap();
        assert_eq!(db.encryption_protector, None);
        assert_eq!(db.encryption_protector_auto_rotation, None);
        assert!(db.keys.is_empty());
        assert_eq!(db.identity, identity);
        assert_eq!(db.federated_client_id.as_deref(), Some("f"));
        let e = revert_protector(&mut db).unwrap_err();
        assert!(e.render().contains("(DatabaseEncryptionProtectorNotSet)"));
        let mut master = database("master");
        let e = revert_protector(&mut master).unwrap_err();
        assert!(
            e.render()
                .contains("(OperationNotSupportedOnSystemDatabase)")
        );
        assert!(apply_change(&mut master, &DatabaseChange::default()).is_err());
    }
}
