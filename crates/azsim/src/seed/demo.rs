//! The demo fleet: two subscriptions of a fictitious company, hand-made so that one small world
//! shows every case the MMK runbooks must handle (see each resource's comment).

use super::{cmk, critical, key_id, mmk, system_identity, uai_id, user_identity};
use crate::world::{
    DatabaseIdentity, EncryptionIdentity, EncryptionScope, Protector, SCOPE_KEYVAULT,
    SCOPE_STORAGE, ScopeKeyVaultProperties, ScopeState, ServerKey, ServerKeyType, Settings,
    SqlDatabase, SqlManagedInstance, SqlServer, StorageAccount, Subscription, TdeState, User,
    World,
};
use serde_json::{Value, json};

const TENANT: &str = "5b1e9c37-2d84-4f6a-8c03-a7e4d9b2f615";
const PROD: &str = "7d2f8a41-3c6b-4e19-9a5d-1b0e6f4c2a87";
const FINANCE: &str = "c4a9e613-8f27-4d5b-b0c1-9e3a7d5f2b64";
/// A valid resource group name that an argv must pass as `--resource-group=-rg.ops(1)`.
const DASH_GROUP: &str = "-rg.ops(1)";

const V_PAYMENTS: &str = "3f9c2a7e5b1d4c8e9a6f0b2d7e4c1a85";
const V_AUDIT: &str = "b7e1d4a9c2f64e3b8d5a0c9f1e7b2d46";
const V_SQL_PAY: &str = "9a4e7c1f3b8d4a2e6c0f5b9d1e3a7c48";
const V_SQL_HR: &str = "e2c8a5f1b7d34e9a0c6f2b8d4a1e7c93";
const V_SQL_HR_OLD: &str = "5d1b9e3a7c2f4e8b0a6d3c9f1e5b7a24";
const V_DB_KEY: &str = "c6f0a3e9d2b74c1e8a5f9b0d3e7c2a61";
const V_DB_KEY_OLD: &str = "1a7d4c9e2f5b48e3a0c6d1f8b3e9a572";
const V_ORDERS_OLD: &str = "8e2b5d0a3c7f41e6b9d2a5c8f0e3b716";
const V_SCOPE_LOGS: &str = "f3a6c9e2b5d84f17a0c3e6b9d2f5a841";
/// The multi-tenant application through which `orders` reaches its key in a partner's tenant.
const ORDERS_FEDERATED_CLIENT: &str = "d7b2e9a4-6c1f-4e83-b5a0-3f8c2d6e9b14";
const V_MI_PAY: &str = "4b8e2d6a0c9f4e1b7a3d5c8f2e6b0a97";

fn account(sub: &str, rg: &str, name: &str, tags: Value) -> StorageAccount {
    StorageAccount {
        subscription: sub.into(),
        resource_group: rg.into(),
        name: name.into(),
        location: "eastus".into(),
        kind: "StorageV2".into(),
        sku: json!({"name": "Standard_LRS", "tier": "Standard"}),
        tags,
        identity: None,
        encryption: None,
    }
}

fn storage_accounts() -> Vec<StorageAccount> {
    [
        microsoft_managed_accounts(),
        key_version_accounts(),
        identity_and_spelling_accounts(),
        finance_accounts(),
    ]
    .concat()
}

/// The system-assigned identity through which an account reaches its key.
fn sai(name: &str) -> Option<Value> {
    Some(system_identity(TENANT, name))
}

/// Production accounts already compliant: each form in which Microsoft-managed keys show.
fn microsoft_managed_accounts() -> Vec<StorageAccount> {
    vec![
        // Compliant: Microsoft-managed keys, infrastructure encryption on.
        StorageAccount {
            encryption: mmk("Microsoft.Storage", Some(true)),
            ..account(PROD, "rg-finance", "stfinance01", critical())
        },
        // Compliant: the key source in lower case, as some API versions return it.
        StorageAccount {
            encryption: mmk("microsoft.storage", None),
            ..account(PROD, "rg-ops", "stlogs01", json!({"env": "prod"}))
        },
        // Compliant: no encryption object at all (platform default), a general-purpose v1 account.
        StorageAccount {
            kind: "Storage".into(),
            sku: json!({"name": "Standard_GRS", "tier": "Standard"}),
            ..account(PROD, "rg-legacy", "stlegacy01", json!({}))
        },
    ]
}

/// Production CMK accounts, one per state of `keyVersion`: `""`, null and a pinned version.
fn key_version_accounts() -> Vec<StorageAccount> {
    vec![
        // CMK, versionless with keyVersion "".
        StorageAccount {
            identity: sai("stpayments01"),
            encryption: cmk(
                "Microsoft.Keyvault",
                "kv-payments-prod",
                "st-payments-cmk",
                Some(""),
                None,
            ),
            ..account(PROD, "rg-payments", "stpayments01", critical())
        },
        // CMK, versionless with keyVersion null.
        StorageAccount {
            identity: sai("sthrdocs01"),
            encryption: cmk(
                "Microsoft.Keyvault",
                "kv-hr-prod",
                "st-hrdocs-cmk",
                None,
                None,
            ),
            ..account(
                PROD,
                "rg-hr",
                "sthrdocs01",
                json!({"data-classification": "confidential"}),
            )
        },
        // CMK pinned to a key version.
        StorageAccount {
            identity: sai("staudit01"),
            encryption: cmk(
                "Microsoft.Keyvault",
                "kv-audit-prod",
                "st-audit-cmk",
                Some(V_AUDIT),
                None,
            ),
            ..account(PROD, "rg-audit", "staudit01", critical())
        },
    ]
}

/// Production CMK accounts that reach their key through a user-assigned identity, spell the key
/// source in lower case or sit in a resource group whose name starts with '-'.
fn identity_and_spelling_accounts() -> Vec<StorageAccount> {
    let uai_customer = uai_id(PROD, "rg-identity", "id-stcustomer01-cmk");
    let uai_partner = uai_id(PROD, "rg-identity", "id-stpartner01-cmk");
    vec![
        // CMK through a user-assigned identity.
        StorageAccount {
            identity: Some(user_identity(&uai_customer)),
            encryption: cmk(
                "Microsoft.Keyvault",
                "kv-customer-prod",
                "st-customer-cmk",
                None,
                Some(EncryptionIdentity {
                    encryption_user_assigned_identity: Some(uai_customer.clone()),
                    encryption_federated_identity_client_id: None,
                }),
            ),
            ..account(PROD, "rg-customer", "stcustomer01", critical())
        },
        // Cross-tenant CMK: user-assigned identity plus a federated client id.
        StorageAccount {
            identity: Some(user_identity(&uai_partner)),
            encryption: cmk(
                "Microsoft.Keyvault",
                "kv-partner-shared",
                "st-partner-cmk",
                Some(""),
                Some(EncryptionIdentity {
                    encryption_user_assigned_identity: Some(uai_partner.clone()),
                    encryption_federated_identity_client_id: Some(
                        "a3c5e7f9-1b2d-4f6a-8c0e-2d4f6a8c0e1b".into(),
                    ),
                }),
            ),
            ..account(PROD, "rg-partner", "stpartner01", json!({}))
        },
        // CMK with the key source spelled in lower case.
        StorageAccount {
            identity: sai("stanalytics01"),
            encryption: cmk(
                "microsoft.keyvault",
                "kv-analytics-prod",
                "st-analytics-cmk",
                None,
                None,
            ),
            ..account(
                PROD,
                "rg-analytics",
                "stanalytics01",
                json!({"env": "prod"}),
            )
        },
        // CMK in a resource group whose name starts with '-'.
        StorageAccount {
            identity: sai("stopsbackup01"),
            encryption: cmk(
                "Microsoft.Keyvault",
                "kv-ops-prod",
                "st-opsbackup-cmk",
                Some(""),
                None,
            ),
            ..account(PROD, DASH_GROUP, "stopsbackup01", critical())
        },
    ]
}

/// The finance subscription: one account of each key source.
fn finance_accounts() -> Vec<StorageAccount> {
    vec![
        StorageAccount {
            encryption: mmk("Microsoft.Storage", Some(false)),
            ..account(FINANCE, "rg-finance-dev", "stfinance02", json!({}))
        },
        StorageAccount {
            identity: sai("stledger02"),
            encryption: cmk(
                "Microsoft.Keyvault",
                "kv-finance-dev",
                "st-ledger-cmk",
                Some(V_PAYMENTS),
                None,
            ),
            ..account(FINANCE, "rg-ledger", "stledger02", critical())
        },
    ]
}

fn server(
    sub: &str,
    rg: &str,
    name: &str,
    protector: Protector,
    keys: Vec<ServerKey>,
) -> SqlServer {
    SqlServer {
        subscription: sub.into(),
        resource_group: rg.into(),
        name: name.into(),
        location: "eastus".into(),
        tags: None,
        identity: Some(system_identity(TENANT, name)),
        protector,
        keys,
    }
}

fn akv(uri: &str, rotate: bool) -> Protector {
    Protector {
        server_key_type: ServerKeyType::AzureKeyVault,
        uri: Some(uri.into()),
        auto_rotation_enabled: rotate,
    }
}

fn sql_servers() -> Vec<SqlServer> {
    let pay_key = key_id("kv-payments-prod", "sql-tde", V_SQL_PAY);
    let hr_key = key_id("kv-hr-prod", "sql-tde", V_SQL_HR);
    let hr_old = key_id("kv-hr-prod", "sql-tde", V_SQL_HR_OLD);
    let hr_uai = uai_id(PROD, "rg-identity", "id-sql-hr-prod");
    vec![
        // Key Vault protector with auto-rotation on.
        server(
            PROD,
            "rg-payments",
            "sql-payments-prod",
            akv(&pay_key, true),
            vec![ServerKey {
                uri: pay_key.clone(),
                auto_rotation_enabled: true,
            }],
        ),
        // Key Vault protector, auto-rotation off, an older key still registered.
        SqlServer {
            identity: Some(user_identity(&hr_uai)),
            ..server(
                PROD,
                "rg-hr",
                "sql-hr-prod",
                akv(&hr_key, false),
                vec![
                    ServerKey {
                        uri: hr_old,
                        auto_rotation_enabled: false,
                    },
                    ServerKey {
                        uri: hr_key.clone(),
                        auto_rotation_enabled: false,
                    },
                ],
            )
        },
        // Service-managed protector (hosts a database with its own customer key).
        server(PROD, "rg-web", "sql-web-prod", Protector::default(), vec![]),
        // Service-managed, in the resource group whose name starts with '-'.
        server(
            PROD,
            DASH_GROUP,
            "sql-ops-prod",
            Protector::default(),
            vec![],
        ),
        server(
            FINANCE,
            "rg-finance-dev",
            "sql-finance-dev",
            Protector::default(),
            vec![],
        ),
    ]
}

fn database(srv: &SqlServer, name: &str, tde: TdeState) -> SqlDatabase {
    SqlDatabase {
        subscription: srv.subscription.clone(),
        resource_group: srv.resource_group.clone(),
        server: srv.name.clone(),
        name: name.into(),
        location: None,
        tags: None,
        kind: None,
        sku: None,
        encryption_protector: None,
        tde_state: tde,
        encryption_protector_auto_rotation: None,
        keys: Vec::new(),
        identity: None,
        federated_client_id: None,
    }
}

fn sql_databases(servers: &[SqlServer]) -> Vec<SqlDatabase> {
    let by_name = |n: &str| {
        servers
            .iter()
            .find(|s| s.name == n)
            .cloned()
            .unwrap_or_else(|| panic!("demo server {n}"))
    };
    let (pay, hr, web, ops, fin) = (
        by_name("sql-payments-prod"),
        by_name("sql-hr-prod"),
        by_name("sql-web-prod"),
        by_name("sql-ops-prod"),
        by_name("sql-finance-dev"),
    );
    // The system database on every server.
    let mut dbs: Vec<SqlDatabase> = servers
        .iter()
        .map(|s| database(s, "master", TdeState::Enabled))
        .collect();
    dbs.extend([
        SqlDatabase {
            tags: Some(critical()),
            ..database(&pay, "payments", TdeState::Enabled)
        },
        database(&pay, "ledger", TdeState::Disabled),
        database(&hr, "hr", TdeState::Enabled),
        database(&web, "web", TdeState::Enabled),
        database(&web, "sessions", TdeState::Disabled),
        customers(&web),
        orders(&pay),
        database(&ops, "opsdb", TdeState::Disabled),
        database(&fin, "finance", TdeState::Enabled),
        database(&fin, "reporting", TdeState::Disabled),
    ]);
    dbs
}

/// A database-level customer key on a service-managed server: not on MMK. The key was rotated
/// once by hand, so the database holds two keys; it reaches them through a user-assigned
/// identity whose id spells `resourcegroups` in lower case, as the SQL RP printed it in the
/// recorded `db_show_perdb_cmk`. Auto-rotation never set (the field absent, as recorded).
fn customers(web: &SqlServer) -> SqlDatabase {
    let uai = format!(
        "/subscriptions/{PROD}/resourcegroups/rg-identity/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-sql-customers-cmk"
    );
    let protector = key_id("kv-web-prod", "sql-customers-cmk", V_DB_KEY);
    SqlDatabase {
        tags: Some(critical()),
        sku: Some(json!({"name": "Standard", "tier": "Standard", "capacity": 10})),
        keys: vec![
            key_id("kv-web-prod", "sql-customers-cmk", V_DB_KEY_OLD),
            protector.clone(),
        ],
        encryption_protector: Some(protector),
        identity: Some(DatabaseIdentity::of(&[uai], None)),
        ..database(web, "customers", TdeState::Enabled)
    }
}

/// A database-level key on a server whose own protector is in Key Vault: a versionless key in a
/// partner's tenant (auto-rotation on, the form rotation uses), reached through a user-assigned
/// identity and a federated client id, with the version it replaced still among its keys.
fn orders(pay: &SqlServer) -> SqlDatabase {
    let uai = uai_id(PROD, "rg-identity", "id-sql-orders-cmk");
    let protector = "https://kv-partner-shared.vault.azure.net/keys/sql-orders-cmk".to_string();
    SqlDatabase {
        sku: Some(
            json!({"name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 2}),
        ),
        keys: vec![
            key_id("kv-partner-shared", "sql-orders-cmk", V_ORDERS_OLD),
            protector.clone(),
        ],
        encryption_protector: Some(protector),
        encryption_protector_auto_rotation: Some(true),
        identity: Some(DatabaseIdentity::of(&[uai], None)),
        federated_client_id: Some(ORDERS_FEDERATED_CLIENT.into()),
        ..database(pay, "orders", TdeState::Enabled)
    }
}

fn managed_instance(rg: &str, name: &str, protector: Protector) -> SqlManagedInstance {
    SqlManagedInstance {
        subscription: PROD.into(),
        resource_group: rg.into(),
        name: name.into(),
        location: "eastus".into(),
        tags: Some(critical()),
        identity: Some(system_identity(TENANT, name)),
        sku: json!({"name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 4}),
        protector,
        keys: Vec::new(),
    }
}

/// SQL Managed Instances: one on the service-managed key, one on a Key Vault key with
/// auto-rotation (its key registered, as Azure requires).
fn sql_managed_instances() -> Vec<SqlManagedInstance> {
    let mi_key = key_id("kv-payments-prod", "sqlmi-tde", V_MI_PAY);
    vec![
        managed_instance("rg-sqlmi", "sqlmi-ops-prod", Protector::default()),
        SqlManagedInstance {
            keys: vec![ServerKey {
                uri: mi_key.clone(),
                auto_rotation_enabled: true,
            }],
            ..managed_instance("rg-sqlmi", "sqlmi-payments-prod", akv(&mi_key, true))
        },
    ]
}

/// A scope on stfinance01 (an MMK account), created at the demo's creation time.
fn scope(name: &str, source: &str, key_uri: Option<&str>, state: ScopeState) -> EncryptionScope {
    EncryptionScope {
        subscription: PROD.into(),
        resource_group: "rg-finance".into(),
        account: "stfinance01".into(),
        name: name.into(),
        source: source.into(),
        // The service's versioned key id and rotation time are derived by `normalize`.
        key_vault_properties: key_uri.map(|u| ScopeKeyVaultProperties {
            key_uri: Some(u.into()),
            ..Default::default()
        }),
        state,
        require_infrastructure_encryption: None,
        creation_time: "2024-02-01T09:00:00+00:00".into(),
        last_modified_time: "2024-02-01T09:00:00+00:00".into(),
    }
}

/// stfinance01's encryption scopes: five, so that a list pages at the default page size (2)
/// into three pages. A Key Vault scope on a versionless key (enabled), one on a pinned version
/// (disabled: a list with `--include Enabled` leaves it out), Microsoft.Storage scopes (one
/// with infrastructure encryption), and a second enabled Key Vault scope.
fn encryption_scopes() -> Vec<EncryptionScope> {
    let versionless = "https://kv-payments-prod.vault.azure.net/keys/scope-cmk";
    let pinned = key_id("kv-audit-prod", "scope-cmk", V_AUDIT);
    vec![
        scope(
            "archive",
            SCOPE_KEYVAULT,
            Some(&pinned),
            ScopeState::Disabled,
        ),
        scope(
            "customer-data",
            SCOPE_KEYVAULT,
            Some(versionless),
            ScopeState::Enabled,
        ),
        EncryptionScope {
            require_infrastructure_encryption: Some(true),
            ..scope("infra-double", SCOPE_STORAGE, None, ScopeState::Enabled)
        },
        scope("platform", SCOPE_STORAGE, None, ScopeState::Enabled),
        scope(
            "reports",
            SCOPE_KEYVAULT,
            Some(versionless),
            ScopeState::Enabled,
        ),
    ]
}

/// stlogs01's scopes (an MMK account, key source in lower case): five, of which only the last
/// by name is on a customer key (pinned to a version), alone on the third page of a list at
/// the default page size, so that only a reader that follows every page finds it.
fn log_scopes() -> Vec<EncryptionScope> {
    let on_logs = |s: EncryptionScope| EncryptionScope {
        resource_group: "rg-ops".into(),
        account: "stlogs01".into(),
        ..s
    };
    let pinned = key_id("kv-ops-prod", "scope-logs-cmk", V_SCOPE_LOGS);
    ["app", "billing", "diagnostics", "metrics"]
        .into_iter()
        .map(|n| scope(n, SCOPE_STORAGE, None, ScopeState::Enabled))
        .chain([scope(
            "tenant-keyed",
            SCOPE_KEYVAULT,
            Some(&pinned),
            ScopeState::Enabled,
        )])
        .map(on_logs)
        .collect()
}

pub fn world() -> World {
    let servers = sql_servers();
    World {
        tenant_id: TENANT.into(),
        user: User {
            name: "ops@contoso.com".into(),
            kind: "user".into(),
        },
        settings: Settings::default(),
        subscriptions: vec![
            Subscription {
                id: PROD.into(),
                name: "Contoso Production".into(),
                state: "Enabled".into(),
                is_default: true,
            },
            Subscription {
                id: FINANCE.into(),
                name: "Contoso Finance".into(),
                state: "Enabled".into(),
                is_default: false,
            },
        ],
        storage_accounts: storage_accounts(),
        sql_databases: sql_databases(&servers),
        sql_servers: servers,
        sql_managed_instances: sql_managed_instances(),
        encryption_scopes: [encryption_scopes(), log_scopes()].concat(),
        faults: Vec::new(),
    }
}
