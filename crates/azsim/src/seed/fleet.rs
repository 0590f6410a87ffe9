//! Generated fleets for benchmarks: sizes as in the brief, resources spread round-robin over the
//! subscriptions, about `noncompliant_percent` of each kind off Microsoft-managed keys, with the
//! same variety of shapes as the demo fleet.
//!
//! Encryption scopes, managed instances and the identities and key sets of databases with their
//! own key come from a second random stream (`EXTRA_STREAM`), so that adding them left every
//! account, server and database a given `--seed` made before exactly as it was.

use super::{cmk, key_id, mmk, system_identity, uai_id, user_identity};
use crate::synth::{self, SplitMix64};
use crate::world::{
    DatabaseIdentity, EncryptionIdentity, EncryptionScope, Protector, SCOPE_KEYVAULT,
    SCOPE_STORAGE, ScopeKeyVaultProperties, ScopeState, ServerKey, ServerKeyType, Settings,
    SqlDatabase, SqlManagedInstance, SqlServer, StorageAccount, Subscription, TdeState, User,
    World,
};
use serde_json::{Value, json};

pub struct Size {
    storage_accounts: usize,
    servers: usize,
    databases_per_server: usize,
    managed_instances: usize,
    default_subscriptions: u32,
}

pub const SMALL: Size = Size {
    storage_accounts: 30,
    servers: 3,
    databases_per_server: 4,
    managed_instances: 2,
    default_subscriptions: 1,
};
pub const MEDIUM: Size = Size {
    storage_accounts: 1_000,
    servers: 50,
    databases_per_server: 10,
    managed_instances: 10,
    default_subscriptions: 2,
};
pub const LARGE: Size = Size {
    storage_accounts: 10_000,
    servers: 200,
    databases_per_server: 20,
    managed_instances: 40,
    default_subscriptions: 4,
};

const TENANT: &str = "5b1e9c37-2d84-4f6a-8c03-a7e4d9b2f615";
const WORDS: &[&str] = &[
    "data", "logs", "app", "web", "media", "backup", "archive", "report", "share", "events", "ml",
    "iot",
];
const ACCOUNTS_PER_GROUP: usize = 20;
const SERVERS_PER_GROUP: usize = 4;
const VAULTS: usize = 50;
const INSTANCES_PER_GROUP: usize = 4;
/// The seed of the second random stream (see the module's doc).
const EXTRA_STREAM: u64 = 0x5c0e_d1a7_e5ca_1e01;
/// Scope names; an account has up to five (more than two make a list page at the default
/// page size).
const SCOPE_NAMES: &[&str] = &["app", "archive", "billing", "exports", "telemetry"];
const CREATED: &str = "2024-01-01T00:00:00+00:00";

pub fn world(size: &Size, subscriptions: Option<u32>, percent: u64, seed: u64) -> World {
    let mut rng = SplitMix64(seed);
    let n_subs = subscriptions.unwrap_or(size.default_subscriptions).max(1) as usize;
    let subs: Vec<Subscription> = (0..n_subs)
        .map(|k| Subscription {
            id: synth::guid(&format!("fleet-subscription|{seed}|{k}")),
            name: format!("Contoso Fleet {:02}", k + 1),
            state: "Enabled".into(),
            is_default: k == 0,
        })
        .collect();
    let mut extra = SplitMix64(seed ^ EXTRA_STREAM);
    let storage_accounts: Vec<StorageAccount> = (0..size.storage_accounts)
        .map(|i| storage_account(&mut rng, &subs[i % n_subs].id, i, percent))
        .collect();
    let mut sql_servers = Vec::with_capacity(size.servers);
    let mut sql_databases = Vec::with_capacity(size.servers * (size.databases_per_server + 1));
    for j in 0..size.servers {
        let server = sql_server(&mut rng, &subs[j % n_subs].id, j, percent);
        sql_databases.push(database(&server, "master".into(), TdeState::Enabled, None));
        for d in 0..size.databases_per_server {
            let db = user_database(&mut rng, &server, (j, d), percent);
            sql_databases.push(with_own_key_setup(&mut extra, db));
        }
        sql_servers.push(server);
    }
    let encryption_scopes = storage_accounts
        .iter()
        .enumerate()
        .flat_map(|(i, a)| scopes(&mut extra, a, i, percent))
        .collect();
    let sql_managed_instances = (0..size.managed_instances)
        .map(|m| managed_instance(&mut extra, &subs[m % n_subs].id, m, percent))
        .collect();
    World {
        tenant_id: TENANT.into(),
        user: User {
            name: "ops@contoso.com".into(),
            kind: "user".into(),
        },
        settings: Settings::default(),
        subscriptions: subs,
        storage_accounts,
        sql_servers,
        sql_databases,
        sql_managed_instances,
        encryption_scopes,
        faults: Vec::new(),
    }
}

/// User database `d` of server `j`: about `percent` off MMK, mostly with TDE switched off, one
/// in five with a database-level customer key.
fn user_database(
    rng: &mut SplitMix64,
    server: &SqlServer,
    (j, d): (usize, usize),
    percent: u64,
) -> SqlDatabase {
    let name = format!("db-{}-{d:02}", WORDS[(j + d) % WORDS.len()]);
    let (tde, key) = if rng.percent(percent) {
        if rng.percent(20) {
            (
                TdeState::Enabled,
                Some(key_id(
                    &vault(j + d),
                    &format!("sql-{name}-cmk"),
                    &synth::hex(&format!("{j}|{name}"), 32),
                )),
            )
        } else {
            (TdeState::Disabled, None)
        }
    } else {
        (TdeState::Enabled, None)
    };
    database(server, name, tde, key)
}

/// A database with its own key gets what Azure requires with it: a user-assigned identity
/// (`id-{server}-{database}`), its keys (half the time also the version it replaced), and in
/// turn auto-rotation unset, on or off; one in five reaches its key across tenants through a
/// federated client id.
fn with_own_key_setup(rng: &mut SplitMix64, mut db: SqlDatabase) -> SqlDatabase {
    let Some(protector) = db.encryption_protector.clone() else {
        return db;
    };
    let identity = uai_id(
        &db.subscription,
        "rg-identity",
        &format!("id-{}-{}", db.server, db.name),
    );
    if rng.percent(50)
        && let Some((key, _)) = protector.rsplit_once('/')
    {
        let older = synth::hex(&format!("{protector}|older"), 32);
        db.keys.push(format!("{key}/{older}"));
    }
    db.keys.push(protector.clone());
    db.identity = Some(DatabaseIdentity::of(&[identity], None));
    db.encryption_protector_auto_rotation = [None, Some(true), Some(false)][rng.below(3) as usize];
    db.federated_client_id = rng
        .percent(20)
        .then(|| synth::guid(&format!("federated|{protector}")));
    db
}

/// Up to five scopes on account `i`, about `percent` / 2 of them on a Key Vault key (pinned to
/// a version or versionless, in turn), one in ten disabled.
fn scopes(
    rng: &mut SplitMix64,
    account: &StorageAccount,
    i: usize,
    percent: u64,
) -> Vec<EncryptionScope> {
    let count = rng.below(SCOPE_NAMES.len() as u64 + 1) as usize;
    SCOPE_NAMES[..count]
        .iter()
        .map(|name| {
            let key_uri = rng.percent(percent / 2).then(|| {
                let key = format!("{}-{name}", account.name);
                if rng.percent(50) {
                    key_id(&vault(i), &key, &synth::hex(&format!("{key}|scope"), 32))
                } else {
                    format!("https://{}.vault.azure.net/keys/{key}", vault(i))
                }
            });
            EncryptionScope {
                subscription: account.subscription.clone(),
                resource_group: account.resource_group.clone(),
                account: account.name.clone(),
                name: name.to_string(),
                source: if key_uri.is_some() {
                    SCOPE_KEYVAULT
                } else {
                    SCOPE_STORAGE
                }
                .into(),
                key_vault_properties: key_uri.map(|u| ScopeKeyVaultProperties {
                    key_uri: Some(u),
                    ..Default::default()
                }),
                state: if rng.percent(10) {
                    ScopeState::Disabled
                } else {
                    ScopeState::Enabled
                },
                require_infrastructure_encryption: None,
                creation_time: CREATED.into(),
                last_modified_time: CREATED.into(),
            }
        })
        .collect()
}

/// Managed instance `m`: about `percent` on a Key Vault key (registered, as Azure requires),
/// half of those with auto-rotation.
fn managed_instance(rng: &mut SplitMix64, sub: &str, m: usize, percent: u64) -> SqlManagedInstance {
    let name = format!("sqlmi-{}-{m:03}", WORDS[m % WORDS.len()]);
    let (protector, keys) = if rng.percent(percent) {
        let uri = key_id(
            &vault(m),
            "sqlmi-tde",
            &synth::hex(&format!("{name}|tde"), 32),
        );
        let rotate = rng.percent(50);
        (
            Protector {
                server_key_type: ServerKeyType::AzureKeyVault,
                uri: Some(uri.clone()),
                auto_rotation_enabled: rotate,
            },
            vec![ServerKey {
                uri,
                auto_rotation_enabled: rotate,
            }],
        )
    } else {
        (Protector::default(), Vec::new())
    };
    SqlManagedInstance {
        subscription: sub.into(),
        resource_group: format!("rg-sqlmi-{:03}", m / INSTANCES_PER_GROUP),
        name: name.clone(),
        location: "eastus".into(),
        tags: None,
        identity: Some(system_identity(TENANT, &name)),
        sku: json!({"name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 4}),
        protector,
        keys,
    }
}

fn vault(i: usize) -> String {
    format!("kv-{}-{:03}", WORDS[i % WORDS.len()], i % VAULTS)
}

fn tags(rng: &mut SplitMix64) -> Value {
    if rng.percent(20) {
        json!({"data-classification": "critical", "env": "prod"})
    } else {
        json!({"env": "prod"})
    }
}

fn storage_account(rng: &mut SplitMix64, sub: &str, i: usize, percent: u64) -> StorageAccount {
    let word = WORDS[i % WORDS.len()];
    let name = format!("st{word}{i:05}");
    let rg = format!("rg-{word}-{:03}", i / ACCOUNTS_PER_GROUP);
    let (kv, key) = (vault(i), format!("{name}-cmk"));
    let pinned = synth::hex(&format!("{kv}|{key}"), 32);
    let uai = uai_id(sub, "rg-identity", &format!("id-{name}"));
    let with_uai = |federated: Option<String>| {
        Some(EncryptionIdentity {
            encryption_user_assigned_identity: Some(uai.clone()),
            encryption_federated_identity_client_id: federated,
        })
    };
    let (encryption, identity) = if rng.percent(percent) {
        match rng.below(6) {
            0 => (
                cmk("Microsoft.Keyvault", &kv, &key, None, None),
                Some(system_identity(TENANT, &name)),
            ),
            1 => (
                cmk("Microsoft.Keyvault", &kv, &key, Some(""), None),
                Some(system_identity(TENANT, &name)),
            ),
            2 => (
                cmk("Microsoft.Keyvault", &kv, &key, Some(&pinned), None),
                Some(system_identity(TENANT, &name)),
            ),
            3 => (
                cmk("Microsoft.Keyvault", &kv, &key, None, with_uai(None)),
                Some(user_identity(&uai)),
            ),
            4 => (
                cmk(
                    "Microsoft.Keyvault",
                    &kv,
                    &key,
                    Some(""),
                    with_uai(Some(synth::guid(&name))),
                ),
                Some(user_identity(&uai)),
            ),
            _ => (
                cmk("microsoft.keyvault", &kv, &key, None, None),
                Some(system_identity(TENANT, &name)),
            ),
        }
    } else {
        match rng.below(10) {
            0..=6 => (mmk("Microsoft.Storage", Some(false)), None),
            7 => (mmk("microsoft.storage", None), None),
            _ => (None, None),
        }
    };
    StorageAccount {
        subscription: sub.into(),
        resource_group: rg,
        name,
        location: "eastus".into(),
        kind: "StorageV2".into(),
        sku: json!({"name": "Standard_LRS", "tier": "Standard"}),
        tags: tags(rng),
        identity,
        encryption,
    }
}

fn sql_server(rng: &mut SplitMix64, sub: &str, j: usize, percent: u64) -> SqlServer {
    let name = format!("sql-{}-{j:03}", WORDS[j % WORDS.len()]);
    let (protector, keys) = if rng.percent(percent) {
        let uri = key_id(
            &vault(j),
            "sql-tde",
            &synth::hex(&format!("{name}|tde"), 32),
        );
        let rotate = rng.percent(50);
        let protector = Protector {
            server_key_type: ServerKeyType::AzureKeyVault,
            uri: Some(uri.clone()),
            auto_rotation_enabled: rotate,
        };
        (
            protector,
            vec![ServerKey {
                uri,
                auto_rotation_enabled: rotate,
            }],
        )
    } else {
        (Protector::default(), Vec::new())
    };
    SqlServer {
        subscription: sub.into(),
        resource_group: format!("rg-sql-{:03}", j / SERVERS_PER_GROUP),
        name: name.clone(),
        location: "eastus".into(),
        tags: rng
            .percent(20)
            .then(|| json!({"data-classification": "critical"})),
        identity: Some(system_identity(TENANT, &name)),
        protector,
        keys,
    }
}

fn database(server: &SqlServer, name: String, tde: TdeState, key: Option<String>) -> SqlDatabase {
    SqlDatabase {
        subscription: server.subscription.clone(),
        resource_group: server.resource_group.clone(),
        server: server.name.clone(),
        name,
        location: None,
        tags: None,
        kind: None,
        sku: None,
        encryption_protector: key,
        tde_state: tde,
        encryption_protector_auto_rotation: None,
        keys: Vec::new(),
        identity: None,
        federated_client_id: None,
    }
}
