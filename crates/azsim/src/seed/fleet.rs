//! Generated fleets for benchmarks: sizes as in the brief, resources spread round-robin over the
//! subscriptions, about `noncompliant_percent` of each kind off Microsoft-managed keys, with the
//! same variety of shapes as the demo fleet.

use super::{cmk, key_id, mmk, system_identity, uai_id, user_identity};
use crate::synth::{self, SplitMix64};
use crate::world::{
    EncryptionIdentity, Protector, ServerKey, ServerKeyType, Settings, SqlDatabase, SqlServer,
    StorageAccount, Subscription, TdeState, User, World,
};
use serde_json::{Value, json};

pub struct Size {
    storage_accounts: usize,
    servers: usize,
    databases_per_server: usize,
    default_subscriptions: u32,
}

pub const SMALL: Size = Size {
    storage_accounts: 30,
    servers: 3,
    databases_per_server: 4,
    default_subscriptions: 1,
};
pub const MEDIUM: Size = Size {
    storage_accounts: 1_000,
    servers: 50,
    databases_per_server: 10,
    default_subscriptions: 2,
};
pub const LARGE: Size = Size {
    storage_accounts: 10_000,
    servers: 200,
    databases_per_server: 20,
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
    let storage_accounts = (0..size.storage_accounts)
        .map(|i| storage_account(&mut rng, &subs[i % n_subs].id, i, percent))
        .collect();
    let mut sql_servers = Vec::with_capacity(size.servers);
    let mut sql_databases = Vec::with_capacity(size.servers * (size.databases_per_server + 1));
    for j in 0..size.servers {
        let server = sql_server(&mut rng, &subs[j % n_subs].id, j, percent);
        sql_databases.push(database(&server, "master".into(), TdeState::Enabled, None));
        for d in 0..size.databases_per_server {
            let name = format!("db-{}-{d:02}", WORDS[(j + d) % WORDS.len()]);
            let (tde, key) = if rng.percent(percent) {
                // Mostly TDE switched off; one in five with a database-level customer key.
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
            sql_databases.push(database(&server, name, tde, key));
        }
        sql_servers.push(server);
    }
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
        sql_managed_instances: Vec::new(),
        encryption_scopes: Vec::new(),
        faults: Vec::new(),
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
    }
}
