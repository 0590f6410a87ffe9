//! The world model: what azsim knows about a tenant, in the JSON form that `azsim dump` prints
//! and `azsim load` reads.
//!
//! Field names are camelCase like az's printed shapes, so a test can copy a value from real az
//! output into a world file. Unknown fields are rejected: a typo in a test world must fail loudly
//! instead of silently producing a different world.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

/// The whole simulated tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct World {
    #[serde(default = "default_tenant")]
    pub tenant_id: String,
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    #[serde(default)]
    pub storage_accounts: Vec<StorageAccount>,
    #[serde(default)]
    pub sql_servers: Vec<SqlServer>,
    #[serde(default)]
    pub sql_databases: Vec<SqlDatabase>,
    /// Absent (and not dumped) when empty, so worlds written before managed instances existed
    /// load and dump unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sql_managed_instances: Vec<SqlManagedInstance>,
    /// Storage accounts' encryption scopes; left out of `dump` when there are none, so a world
    /// written before scopes existed dumps unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encryption_scopes: Vec<EncryptionScope>,
    #[serde(default)]
    pub faults: Vec<Fault>,
}

fn default_tenant() -> String {
    "00000000-0000-0000-0000-00000000bbbb".to_string()
}

/// The signed-in identity, printed as `user` by `az account show`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl Default for User {
    fn default() -> Self {
        User {
            name: "ops@contoso.com".into(),
            kind: "user".into(),
        }
    }
}

/// Which field `az sql db tde show/set` prints the TDE state in: azure-cli 2.34+ prints `state`,
/// older releases (api 2014-04-01) printed `status`; azbook must accept both.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TdeField {
    #[default]
    State,
    Status,
}

/// Knobs that change how the CLI face behaves rather than what the tenant holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "yes")]
    pub signed_in: bool,
    #[serde(default)]
    pub tde_field: TdeField,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub jitter_ms: u64,
    /// Printed as `environmentName`/`cloudName`; the reference corpus ran against `EmuCloud`.
    #[serde(default = "default_cloud")]
    pub cloud_name: String,
    /// How many encryption scopes one list page holds when the caller gives no
    /// `$maxpagesize` (small, so that tests and the demo page). Left out of `dump` at its default.
    #[serde(
        default = "default_scope_page_size",
        skip_serializing_if = "is_default_scope_page_size"
    )]
    pub encryption_scope_page_size: u32,
}

pub const DEFAULT_SCOPE_PAGE_SIZE: u32 = 2;

fn default_scope_page_size() -> u32 {
    DEFAULT_SCOPE_PAGE_SIZE
}

fn is_default_scope_page_size(n: &u32) -> bool {
    *n == DEFAULT_SCOPE_PAGE_SIZE
}

fn yes() -> bool {
    true
}

fn default_cloud() -> String {
    "AzureCloud".to_string()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            signed_in: true,
            tde_field: TdeField::State,
            latency_ms: 0,
            jitter_ms: 0,
            cloud_name: default_cloud(),
            encryption_scope_page_size: DEFAULT_SCOPE_PAGE_SIZE,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    pub id: String,
    pub name: String,
    #[serde(default = "enabled")]
    pub state: String,
    #[serde(default)]
    pub is_default: bool,
}

fn enabled() -> String {
    "Enabled".to_string()
}

fn eastus() -> String {
    "eastus".to_string()
}

/// A storage account. `encryption` and `identity` hold az's printed shapes so that tests can
/// state exactly what az would print, including `keyVersion` null versus `""`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageAccount {
    #[serde(default)]
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    #[serde(default = "eastus")]
    pub location: String,
    #[serde(default = "storage_kind")]
    pub kind: String,
    #[serde(default = "storage_sku")]
    pub sku: Value,
    #[serde(default = "empty_object")]
    pub tags: Value,
    #[serde(default)]
    pub identity: Option<Value>,
    #[serde(default)]
    pub encryption: Option<Encryption>,
}

fn storage_kind() -> String {
    "StorageV2".to_string()
}

fn storage_sku() -> Value {
    json!({"name": "Standard_LRS", "tier": "Standard"})
}

fn empty_object() -> Value {
    json!({})
}

/// az's printed `encryption` object of a storage account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Encryption {
    pub key_source: String,
    #[serde(default)]
    pub key_vault_properties: Option<KeyVaultProperties>,
    #[serde(default)]
    pub encryption_identity: Option<EncryptionIdentity>,
    #[serde(default)]
    pub require_infrastructure_encryption: Option<bool>,
    #[serde(default = "default_services")]
    pub services: Value,
}

/// Blob and file encryption enabled with account keys: what every account created since 2017 has.
pub fn default_services() -> Value {
    let service = json!({"enabled": true, "keyType": "Account", "lastEnabledTime": "2024-01-01T00:00:00+00:00"});
    json!({"blob": service.clone(), "file": service, "queue": null, "table": null})
}

/// `keyVersion` is an `Option<String>` on purpose: null (never set) and `""` (explicitly
/// versionless) are different states on the wire and backout must restore each exactly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyVaultProperties {
    #[serde(default)]
    pub key_vault_uri: Option<String>,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub key_version: Option<String>,
    #[serde(default)]
    pub current_versioned_key_identifier: Option<String>,
    #[serde(default)]
    pub current_versioned_key_expiration_timestamp: Option<String>,
    #[serde(default)]
    pub last_key_rotation_timestamp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionIdentity {
    #[serde(default)]
    pub encryption_user_assigned_identity: Option<String>,
    #[serde(default)]
    pub encryption_federated_identity_client_id: Option<String>,
}

pub const SCOPE_STORAGE: &str = "Microsoft.Storage";
pub const SCOPE_KEYVAULT: &str = "Microsoft.KeyVault";

/// An encryption scope of a storage account (`az storage account encryption-scope show`), in
/// az's printed names. `source` is `Microsoft.Storage` or `Microsoft.KeyVault` (the only two
/// values of the provider's enum); a Key Vault scope has `keyVaultProperties.keyUri`, versioned
/// or versionless, and the service's `currentVersionedKeyIdentifier` and
/// `lastKeyRotationTimestamp`, which `normalize` derives when a world leaves them out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionScope {
    #[serde(default)]
    pub subscription: String,
    pub resource_group: String,
    /// The storage account's name.
    pub account: String,
    pub name: String,
    #[serde(default = "scope_storage")]
    pub source: String,
    #[serde(default)]
    pub key_vault_properties: Option<ScopeKeyVaultProperties>,
    #[serde(default)]
    pub state: ScopeState,
    #[serde(default)]
    pub require_infrastructure_encryption: Option<bool>,
    #[serde(default = "scope_created")]
    pub creation_time: String,
    #[serde(default = "scope_created")]
    pub last_modified_time: String,
}

fn scope_storage() -> String {
    SCOPE_STORAGE.to_string()
}

fn scope_created() -> String {
    "2024-01-01T00:00:00+00:00".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopeKeyVaultProperties {
    #[serde(default)]
    pub key_uri: Option<String>,
    #[serde(default)]
    pub current_versioned_key_identifier: Option<String>,
    #[serde(default)]
    pub last_key_rotation_timestamp: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum ScopeState {
    #[default]
    Enabled,
    Disabled,
}

impl ScopeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeState::Enabled => "Enabled",
            ScopeState::Disabled => "Disabled",
        }
    }

    /// The provider's enum is case-insensitive.
    pub fn parse(s: &str) -> Option<ScopeState> {
        if s.eq_ignore_ascii_case("Enabled") {
            Some(ScopeState::Enabled)
        } else if s.eq_ignore_ascii_case("Disabled") {
            Some(ScopeState::Disabled)
        } else {
            None
        }
    }
}

/// The canonical spelling of a scope's key source (the provider's enum is case-insensitive).
pub fn scope_source(s: &str) -> Option<&'static str> {
    [SCOPE_STORAGE, SCOPE_KEYVAULT]
        .into_iter()
        .find(|c| c.eq_ignore_ascii_case(s))
}

/// The versioned key id the service reports for a scope's key: the key URI itself when it
/// names a version, else the key's current version (deterministic in azsim).
pub fn scope_current_key(key_uri: &str) -> String {
    let trimmed = key_uri.trim_end_matches('/');
    let parts: Vec<&str> = trimmed.split('/').collect();
    // https: / "" / vault / keys / name [/ version]
    match parts.as_slice() {
        [_, _, _, keys, _, version] if keys.eq_ignore_ascii_case("keys") && !version.is_empty() => {
            trimmed.to_string()
        }
        [scheme, empty, host, keys, name] if keys.eq_ignore_ascii_case("keys") => {
            let vault = format!("{scheme}/{empty}/{host}");
            format!("{trimmed}/{}", crate::synth::key_version(&vault, name))
        }
        _ => trimmed.to_string(),
    }
}

impl EncryptionScope {
    /// Sets a Key Vault key as the service does: the versioned id it resolves and a rotation
    /// stamp (`now`).
    pub fn set_key(&mut self, key_uri: &str, now: &str) {
        self.key_vault_properties = Some(ScopeKeyVaultProperties {
            key_uri: Some(key_uri.to_string()),
            current_versioned_key_identifier: Some(scope_current_key(key_uri)),
            last_key_rotation_timestamp: Some(now.to_string()),
        });
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ServerKeyType {
    ServiceManaged,
    AzureKeyVault,
}

/// A SQL server's TDE protector (`az sql server tde-key show`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Protector {
    pub server_key_type: ServerKeyType,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub auto_rotation_enabled: bool,
}

impl Default for Protector {
    fn default() -> Self {
        Protector {
            server_key_type: ServerKeyType::ServiceManaged,
            uri: None,
            auto_rotation_enabled: false,
        }
    }
}

/// A Key Vault key registered on a server (`az sql server key create`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerKey {
    pub uri: String,
    #[serde(default)]
    pub auto_rotation_enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SqlServer {
    #[serde(default)]
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    #[serde(default = "eastus")]
    pub location: String,
    #[serde(default)]
    pub tags: Option<Value>,
    #[serde(default)]
    pub identity: Option<Value>,
    #[serde(default)]
    pub protector: Protector,
    #[serde(default)]
    pub keys: Vec<ServerKey>,
}

/// A SQL Managed Instance (`az sql mi`): like a server, a TDE protector and the Key Vault keys
/// registered on it (`az sql mi tde-key`, `az sql mi key`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SqlManagedInstance {
    #[serde(default)]
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    #[serde(default = "eastus")]
    pub location: String,
    #[serde(default)]
    pub tags: Option<Value>,
    #[serde(default)]
    pub identity: Option<Value>,
    #[serde(default = "managed_instance_sku")]
    pub sku: Value,
    #[serde(default)]
    pub protector: Protector,
    #[serde(default)]
    pub keys: Vec<ServerKey>,
}

impl SqlManagedInstance {
    /// The DNS zone Azure gives an instance's virtual cluster (13 hex digits), fixed per
    /// instance so both faces print the same.
    pub fn dns_zone(&self) -> String {
        crate::synth::hex(
            &format!(
                "dnszone|{}|{}|{}",
                self.subscription.to_ascii_lowercase(),
                self.resource_group.to_ascii_lowercase(),
                self.name.to_ascii_lowercase()
            ),
            13,
        )
    }

    pub fn fully_qualified_domain_name(&self) -> String {
        format!(
            "{}.{}.database.windows.net",
            self.name.to_ascii_lowercase(),
            self.dns_zone()
        )
    }

    /// The delegated subnet every instance lives in: `vnet-{name}/subnets/ManagedInstance` in
    /// its own group.
    pub fn subnet_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/vnet-{}/subnets/ManagedInstance",
            self.subscription, self.resource_group, self.name
        )
    }

    /// The first user-assigned identity, which Azure makes the primary one.
    pub fn primary_user_assigned_identity(&self) -> Option<String> {
        self.identity
            .as_ref()
            .and_then(|i| i.get("userAssignedIdentities"))
            .and_then(Value::as_object)
            .and_then(|m| m.keys().next().cloned())
    }
}

fn managed_instance_sku() -> Value {
    json!({"name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 4})
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum TdeState {
    #[default]
    Enabled,
    Disabled,
}

impl TdeState {
    pub fn as_str(self) -> &'static str {
        match self {
            TdeState::Enabled => "Enabled",
            TdeState::Disabled => "Disabled",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SqlDatabase {
    #[serde(default)]
    pub subscription: String,
    pub resource_group: String,
    pub server: String,
    pub name: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub tags: Option<Value>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub sku: Option<Value>,
    /// A database-level customer key URI (az prints it as a plain string), or null.
    #[serde(default)]
    pub encryption_protector: Option<String>,
    #[serde(default)]
    pub tde_state: TdeState,
    /// Whether the database-level protector follows its key's newest version; null when never
    /// set (the service then leaves the field out, as the recorded `db_show_perdb_cmk` shows).
    /// The four per-database key fields are left out of `dump` when unset, so worlds written
    /// before them load and dump unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_protector_auto_rotation: Option<bool>,
    /// The Key Vault key URIs of the database (`keys` with `$expand=keys`): the protector's and
    /// any older ones that backups still need. `normalize` adds the protector's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// The user-assigned identity through which the database reaches its keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<DatabaseIdentity>,
    /// The multi-tenant application's client id for a key in another tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_client_id: Option<String>,
}

pub const DATABASE_IDENTITY_TYPE: &str = "UserAssigned";

/// A database's managed identity (the SDK's `DatabaseIdentity`): always `UserAssigned` (az
/// sends no other type for a database), each identity id kept exactly as it was given (the
/// recordings print `resourcegroups` in lower case) with the ids Entra ID gave it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseIdentity {
    #[serde(rename = "type", default = "database_identity_type")]
    pub kind: String,
    #[serde(default)]
    pub user_assigned_identities: BTreeMap<String, UserIdentity>,
}

fn database_identity_type() -> String {
    DATABASE_IDENTITY_TYPE.to_string()
}

/// One user-assigned identity of a database: the ids Entra ID assigned it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserIdentity {
    pub client_id: String,
    pub principal_id: String,
}

impl UserIdentity {
    /// The ids Entra ID would give the identity `id` (derived from it, so both faces agree).
    pub fn assigned(id: &str) -> UserIdentity {
        UserIdentity {
            client_id: crate::synth::guid(&format!("client|{id}")),
            principal_id: crate::synth::guid(&format!("principal|{id}")),
        }
    }
}

impl DatabaseIdentity {
    /// The identity of exactly `ids`, keeping the Entra ids of those the database already had
    /// (matched ignoring case, as Azure compares resource ids).
    pub fn of(ids: &[String], current: Option<&DatabaseIdentity>) -> DatabaseIdentity {
        let known = |id: &str| {
            current
                .into_iter()
                .flat_map(|c| c.user_assigned_identities.iter())
                .find(|(k, _)| k.eq_ignore_ascii_case(id))
                .map(|(_, v)| v.clone())
        };
        DatabaseIdentity {
            kind: database_identity_type(),
            user_assigned_identities: ids
                .iter()
                .map(|id| {
                    (
                        id.clone(),
                        known(id).unwrap_or_else(|| UserIdentity::assigned(id)),
                    )
                })
                .collect(),
        }
    }
}

impl SqlDatabase {
    /// Keeps `keys` as the set the service holds: each URI once (ignoring case), the
    /// protector's among them, in one order (by URI, ignoring case) whatever order a world or
    /// a request gave them in (a PUT's keys map arrives sorted, az's arguments do not).
    pub fn tidy_keys(&mut self) {
        let mut seen = HashSet::new();
        self.keys.retain(|k| seen.insert(k.to_ascii_lowercase()));
        if let Some(protector) = &self.encryption_protector
            && seen.insert(protector.to_ascii_lowercase())
        {
            self.keys.push(protector.clone());
        }
        self.keys
            .sort_by_cached_key(|k| (k.to_ascii_lowercase(), k.clone()));
    }

    /// `master` is the system database: listed by `az sql db list`, never a target.
    pub fn is_system(&self) -> bool {
        self.kind
            .as_deref()
            .is_some_and(|k| k.to_ascii_lowercase().contains("system"))
    }
}

/// One fault as written in the world file. Exactly one action field is set; which calls it
/// fires on and what firing does are [`crate::faults`]'s business.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// Command words, or a leading part of them ("sql" matches every SQL command). Absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A substring that some argument after `az` must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv_contains: Option<String>,
    /// How many more times the fault fires; absent means always. Counted in the store, so
    /// parallel callers share one budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FaultError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_after_change: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultError {
    pub code: String,
    pub message: String,
    #[serde(default = "one")]
    pub exit_code: i32,
    /// The HTTP status `azsim serve` answers with; absent: the status Azure uses for the code
    /// (404 for the not-found codes, 403 AuthorizationFailed, 429 for throttling, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

fn one() -> i32 {
    1
}

impl Fault {
    /// Rejects a fault that would do nothing or several things at once, so a world states
    /// unambiguously how a call goes wrong.
    pub fn validate(&self) -> Result<()> {
        let actions = [
            self.error.is_some(),
            self.latency_ms.is_some(),
            self.hang_seconds.is_some(),
            self.malformed == Some(true),
            self.crash_after_change == Some(true),
        ];
        if actions.iter().filter(|a| **a).count() != 1 {
            bail!(
                "a fault needs exactly one action (error, latencyMs, hangSeconds, malformed: true, crashAfterChange: true): {self:?}"
            );
        }
        if self
            .hang_seconds
            .is_some_and(|s| !(0.0..=86_400.0).contains(&s))
        {
            bail!("hangSeconds must be between 0 and 86400");
        }
        Ok(())
    }
}

impl World {
    /// Parses and normalizes a world file; see [`World::normalize`].
    pub fn from_json(text: &str) -> Result<World> {
        let mut world: World = serde_json::from_str(text)
            .context("world JSON does not match the azsim world schema")?;
        world.normalize()?;
        Ok(world)
    }

    /// Fills defaults that depend on other parts of the world and rejects worlds that could not
    /// exist in Azure, so every later step can rely on a consistent model.
    pub fn normalize(&mut self) -> Result<()> {
        let subs = self.normalize_subscriptions()?;
        self.normalize_storage_accounts(&subs)?;
        self.normalize_sql_servers(&subs)?;
        self.normalize_sql_databases(&subs)?;
        self.normalize_sql_managed_instances(&subs)?;
        self.normalize_encryption_scopes(&subs)?;
        for fault in &self.faults {
            fault.validate()?;
        }
        Ok(())
    }

    /// One default subscription (the first when none is marked) and no id twice.
    fn normalize_subscriptions(&mut self) -> Result<KnownSubscriptions> {
        if self.subscriptions.iter().filter(|s| s.is_default).count() > 1 {
            bail!("more than one subscription has isDefault: true");
        }
        if !self.subscriptions.is_empty() && !self.subscriptions.iter().any(|s| s.is_default) {
            self.subscriptions[0].is_default = true;
        }
        let default = self
            .subscriptions
            .iter()
            .find(|s| s.is_default)
            .map(|s| s.id.clone());
        let ids: HashSet<String> = self
            .subscriptions
            .iter()
            .map(|s| s.id.to_ascii_lowercase())
            .collect();
        if ids.len() != self.subscriptions.len() {
            bail!("duplicate subscription id");
        }
        Ok(KnownSubscriptions { default, ids })
    }

    fn normalize_storage_accounts(&mut self, subs: &KnownSubscriptions) -> Result<()> {
        let mut seen = HashSet::new();
        for sa in &mut self.storage_accounts {
            subs.fill(
                &mut sa.subscription,
                &format!("storage account {}", sa.name),
            )?;
            if sa.sku.get("tier").is_none() {
                let tier = if sa.sku["name"].as_str().unwrap_or("").starts_with("Premium") {
                    "Premium"
                } else {
                    "Standard"
                };
                sa.sku["tier"] = json!(tier);
            }
            // Storage account names are globally unique in Azure.
            if !seen.insert(sa.name.to_ascii_lowercase()) {
                bail!("duplicate storage account name {}", sa.name);
            }
        }
        Ok(())
    }

    fn normalize_sql_servers(&mut self, subs: &KnownSubscriptions) -> Result<()> {
        let mut servers = HashSet::new();
        for srv in &mut self.sql_servers {
            subs.fill(&mut srv.subscription, &format!("SQL server {}", srv.name))?;
            if !servers.insert(key(&[&srv.subscription, &srv.resource_group, &srv.name])) {
                bail!("duplicate SQL server {}", srv.name);
            }
            normalize_protector(
                &mut srv.protector,
                &mut srv.keys,
                &format!("SQL server {}", srv.name),
            )?;
        }
        Ok(())
    }

    fn normalize_sql_managed_instances(&mut self, subs: &KnownSubscriptions) -> Result<()> {
        let mut seen = HashSet::new();
        for mi in &mut self.sql_managed_instances {
            let what = format!("SQL managed instance {}", mi.name);
            subs.fill(&mut mi.subscription, &what)?;
            if !seen.insert(key(&[&mi.subscription, &mi.resource_group, &mi.name])) {
                bail!("duplicate {what}");
            }
            normalize_protector(&mut mi.protector, &mut mi.keys, &what)?;
        }
        Ok(())
    }

    /// Every database sits on a known server and takes its location from it.
    fn normalize_sql_databases(&mut self, subs: &KnownSubscriptions) -> Result<()> {
        let mut dbs = HashSet::new();
        for db in &mut self.sql_databases {
            subs.fill(&mut db.subscription, &format!("SQL database {}", db.name))?;
            let server = self
                .sql_servers
                .iter()
                .find(|s| {
                    key(&[&s.subscription, &s.resource_group, &s.name])
                        == key(&[&db.subscription, &db.resource_group, &db.server])
                })
                .with_context(|| {
                    format!(
                        "SQL database {} is on unknown server {}",
                        db.name, db.server
                    )
                })?;
            if !dbs.insert(key(&[
                &db.subscription,
                &db.resource_group,
                &db.server,
                &db.name,
            ])) {
                bail!("duplicate SQL database {} on {}", db.name, db.server);
            }
            fill_database_defaults(db, &server.location);
            normalize_database_keys(db)?;
        }
        Ok(())
    }
}

impl World {
    /// Every scope sits on a known account, with a known key source, a key URI exactly when its
    /// source is Key Vault, and the versioned key id the service derives from it.
    fn normalize_encryption_scopes(&mut self, subs: &KnownSubscriptions) -> Result<()> {
        let accounts: HashSet<String> = self
            .storage_accounts
            .iter()
            .map(|a| key(&[&a.subscription, &a.resource_group, &a.name]))
            .collect();
        let mut seen = HashSet::new();
        for scope in &mut self.encryption_scopes {
            let what = format!("encryption scope {} of {}", scope.name, scope.account);
            subs.fill(&mut scope.subscription, &what)?;
            let account = key(&[&scope.subscription, &scope.resource_group, &scope.account]);
            if !accounts.contains(&account) {
                bail!("{what}: no such storage account in that subscription and group");
            }
            if !seen.insert(key(&[&account, &scope.name])) {
                bail!("duplicate {what}");
            }
            scope.source = scope_source(&scope.source)
                .with_context(|| {
                    format!(
                        "{what}: source must be Microsoft.Storage or Microsoft.KeyVault, not {}",
                        scope.source
                    )
                })?
                .to_string();
            if scope.source == SCOPE_STORAGE {
                if scope.key_vault_properties.is_some() {
                    bail!("{what}: a Microsoft.Storage scope has no keyVaultProperties");
                }
                continue;
            }
            let modified = scope.last_modified_time.clone();
            let kvp = scope
                .key_vault_properties
                .as_mut()
                .filter(|k| k.key_uri.is_some())
                .with_context(|| {
                    format!("{what}: a Microsoft.KeyVault scope needs keyVaultProperties.keyUri")
                })?;
            let uri = kvp.key_uri.clone().unwrap_or_default();
            kvp.current_versioned_key_identifier
                .get_or_insert_with(|| scope_current_key(&uri));
            kvp.last_key_rotation_timestamp.get_or_insert(modified);
        }
        Ok(())
    }
}

/// The world's subscriptions, for the resources that name one (or leave it to the default).
struct KnownSubscriptions {
    default: Option<String>,
    /// Lowercase: subscription ids compare case-insensitively.
    ids: HashSet<String>,
}

impl KnownSubscriptions {
    /// Gives a resource without a subscription the default one and rejects an unknown one.
    fn fill(&self, sub: &mut String, what: &str) -> Result<()> {
        if sub.is_empty() {
            *sub = self
                .default
                .clone()
                .with_context(|| format!("{what} has no subscription and the world has none"))?;
        }
        if !self.ids.contains(&sub.to_ascii_lowercase()) {
            bail!("{what} names unknown subscription {sub}");
        }
        Ok(())
    }
}

/// An AzureKeyVault protector always names a registered key in Azure (on a server or a managed
/// instance); a world that forgets to list it gets it added, so that `key list` and `tde-key
/// set` stay consistent.
fn normalize_protector(
    protector: &mut Protector,
    keys: &mut Vec<ServerKey>,
    what: &str,
) -> Result<()> {
    match (protector.server_key_type, &protector.uri) {
        (ServerKeyType::AzureKeyVault, None) => {
            bail!("{what}: an AzureKeyVault protector needs a uri")
        }
        (ServerKeyType::AzureKeyVault, Some(uri)) => {
            if !keys.iter().any(|k| k.uri.eq_ignore_ascii_case(uri)) {
                keys.push(ServerKey {
                    uri: uri.clone(),
                    auto_rotation_enabled: protector.auto_rotation_enabled,
                });
            }
        }
        (ServerKeyType::ServiceManaged, _) => protector.uri = None,
    }
    Ok(())
}

/// `master` gets the system kind and sku the SQL RP reports for it; user databases get a small
/// serverless vCore sku.
fn fill_database_defaults(db: &mut SqlDatabase, server_location: &str) {
    let master = db.name.eq_ignore_ascii_case("master");
    if db.location.is_none() {
        db.location = Some(server_location.to_string());
    }
    if db.kind.is_none() {
        db.kind = Some(if master { "v12.0,system" } else { "v12.0,user" }.to_string());
    }
    if db.sku.is_none() {
        db.sku = Some(if db.is_system() {
            json!({"name": "System0", "tier": "System", "capacity": 0})
        } else {
            json!({"name": "GP_S_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 1})
        });
    }
}

/// A database's own keys as the service keeps them ([`SqlDatabase::tidy_keys`]), an identity
/// of the one type a database has, and none of it on the system database.
fn normalize_database_keys(db: &mut SqlDatabase) -> Result<()> {
    let what = format!("SQL database {} on {}", db.name, db.server);
    if db.is_system()
        && (db.encryption_protector.is_some() || !db.keys.is_empty() || db.identity.is_some())
    {
        bail!("{what}: the system database has no database-level keys or identity");
    }
    if let Some(identity) = &mut db.identity {
        if !identity.kind.eq_ignore_ascii_case(DATABASE_IDENTITY_TYPE)
            || identity.user_assigned_identities.is_empty()
        {
            bail!("{what}: a database identity is UserAssigned with at least one identity");
        }
        identity.kind = database_identity_type();
    }
    db.tidy_keys();
    Ok(())
}

/// A case-insensitive composite key: Azure names compare case-insensitively.
pub fn key(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_world_gets_defaults() {
        let w = World::from_json(
            r#"{"subscriptions":[{"id":"s1","name":"one"}],
                "storageAccounts":[{"resourceGroup":"rg","name":"sa"}],
                "sqlServers":[{"resourceGroup":"rg","name":"srv","protector":{"serverKeyType":"AzureKeyVault","uri":"https://kv.vault.azure.net/keys/k/0a"}}],
                "sqlDatabases":[{"resourceGroup":"RG","server":"SRV","name":"master"}]}"#,
        )
        .unwrap();
        assert!(w.subscriptions[0].is_default);
        assert_eq!(w.storage_accounts[0].subscription, "s1");
        assert_eq!(
            w.sql_servers[0].keys.len(),
            1,
            "protector key is registered"
        );
        assert_eq!(w.sql_databases[0].kind.as_deref(), Some("v12.0,system"));
        assert!(w.settings.signed_in);
    }

    #[test]
    fn managed_instances_are_optional_and_normalized_like_servers() {
        let old = r#"{"subscriptions":[{"id":"s1","name":"one"}]}"#;
        let w = World::from_json(old).unwrap();
        assert!(w.sql_managed_instances.is_empty());
        let dumped = serde_json::to_value(&w).unwrap();
        assert!(
            dumped.get("sqlManagedInstances").is_none(),
            "a world without instances dumps as before"
        );
        let w = World::from_json(
            r#"{"subscriptions":[{"id":"s1","name":"one"}],
                "sqlManagedInstances":[{"resourceGroup":"rg","name":"mi1","protector":{"serverKeyType":"AzureKeyVault","uri":"https://kv.vault.azure.net/keys/k/0a","autoRotationEnabled":true}}]}"#,
        )
        .unwrap();
        let mi = &w.sql_managed_instances[0];
        assert_eq!(mi.subscription, "s1");
        assert_eq!(mi.keys.len(), 1, "protector key is registered");
        assert!(mi.keys[0].auto_rotation_enabled);
        assert_eq!(mi.sku["name"], "GP_Gen5");
        let dup = r#"{"subscriptions":[{"id":"s1","name":"one"}],
            "sqlManagedInstances":[{"resourceGroup":"rg","name":"mi1"},{"resourceGroup":"RG","name":"MI1"}]}"#;
        assert!(World::from_json(dup).is_err());
        let no_uri = r#"{"subscriptions":[{"id":"s1","name":"one"}],
            "sqlManagedInstances":[{"resourceGroup":"rg","name":"mi1","protector":{"serverKeyType":"AzureKeyVault"}}]}"#;
        assert!(World::from_json(no_uri).is_err());
    }

    #[test]
    fn exactly_one_action() {
        let latency = Fault {
            latency_ms: Some(1),
            ..Fault::default()
        };
        assert!(latency.validate().is_ok());
        let two = Fault {
            malformed: Some(true),
            ..latency
        };
        assert!(two.validate().is_err());
        assert!(Fault::default().validate().is_err());
    }

    #[test]
    fn a_world_without_scopes_serializes_as_before() {
        let w = World::from_json(r#"{"subscriptions":[{"id":"s1","name":"one"}]}"#).unwrap();
        let text = serde_json::to_value(&w).unwrap();
        assert!(text.get("encryptionScopes").is_none(), "{text}");
        assert!(text["settings"].get("encryptionScopePageSize").is_none());
        assert_eq!(
            w.settings.encryption_scope_page_size,
            DEFAULT_SCOPE_PAGE_SIZE
        );
    }

    #[test]
    fn scopes_are_normalized_and_checked() {
        let base = r#"{"subscriptions":[{"id":"s1","name":"one"}],
            "storageAccounts":[{"resourceGroup":"rg","name":"sa"}],"encryptionScopes":"#;
        let w = World::from_json(&format!(
            r#"{base}[{{"resourceGroup":"RG","account":"SA","name":"a","source":"microsoft.keyvault",
                "keyVaultProperties":{{"keyUri":"https://kv.vault.azure.net/keys/k"}}}},
               {{"resourceGroup":"rg","account":"sa","name":"b","state":"Disabled"}}]}}"#
        ))
        .unwrap();
        let (a, b) = (&w.encryption_scopes[0], &w.encryption_scopes[1]);
        assert_eq!(
            (a.subscription.as_str(), a.source.as_str()),
            ("s1", SCOPE_KEYVAULT)
        );
        let kvp = a.key_vault_properties.as_ref().unwrap();
        assert!(
            kvp.current_versioned_key_identifier
                .as_deref()
                .unwrap()
                .starts_with("https://kv.vault.azure.net/keys/k/")
        );
        assert_eq!(
            kvp.last_key_rotation_timestamp.as_deref(),
            Some(a.last_modified_time.as_str())
        );
        assert_eq!(
            (b.source.as_str(), b.state),
            (SCOPE_STORAGE, ScopeState::Disabled)
        );
        for bad in [
            r#"[{"resourceGroup":"rg","account":"nope","name":"a"}]"#,
            r#"[{"resourceGroup":"rg","account":"sa","name":"a"},{"resourceGroup":"rg","account":"sa","name":"A"}]"#,
            r#"[{"resourceGroup":"rg","account":"sa","name":"a","source":"Microsoft.KeyVault"}]"#,
            r#"[{"resourceGroup":"rg","account":"sa","name":"a","source":"Other"}]"#,
            r#"[{"resourceGroup":"rg","account":"sa","name":"a","keyVaultProperties":{"keyUri":"u"}}]"#,
        ] {
            assert!(
                World::from_json(&format!("{base}{bad}}}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn database_keys_are_normalized_and_optional() {
        let base = r#"{"subscriptions":[{"id":"s1","name":"one"}],
            "sqlServers":[{"resourceGroup":"rg","name":"srv"}],"sqlDatabases":"#;
        let old = World::from_json(&format!(
            r#"{base}[{{"resourceGroup":"rg","server":"srv","name":"db"}}]}}"#
        ))
        .unwrap();
        let dumped = serde_json::to_value(&old).unwrap();
        let db = &dumped["sqlDatabases"][0];
        for field in [
            "keys",
            "identity",
            "federatedClientId",
            "encryptionProtectorAutoRotation",
        ] {
            assert!(
                db.get(field).is_none(),
                "{field} left out of an old world's dump"
            );
        }
        let uai = "/subscriptions/s1/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u";
        let w = World::from_json(&format!(
            r#"{base}[{{"resourceGroup":"rg","server":"srv","name":"db",
                "encryptionProtector":"https://kv.vault.azure.net/keys/k/2",
                "keys":["https://kv.vault.azure.net/keys/k/1","HTTPS://kv.vault.azure.net/keys/k/1"],
                "identity":{{"type":"userassigned","userAssignedIdentities":{{"{uai}":{{"clientId":"c","principalId":"p"}}}}}}}}]}}"#
        ))
        .unwrap();
        let db = &w.sql_databases[0];
        assert_eq!(
            db.keys,
            [
                "https://kv.vault.azure.net/keys/k/1",
                "https://kv.vault.azure.net/keys/k/2"
            ],
            "duplicates dropped, the protector added"
        );
        let identity = db.identity.as_ref().unwrap();
        assert_eq!(identity.kind, "UserAssigned");
        assert!(
            identity.user_assigned_identities.contains_key(uai),
            "id kept as given"
        );
        for bad in [
            r#"[{"resourceGroup":"rg","server":"srv","name":"master","keys":["https://kv.vault.azure.net/keys/k"]}]"#,
            r#"[{"resourceGroup":"rg","server":"srv","name":"db","identity":{"type":"SystemAssigned"}}]"#,
            r#"[{"resourceGroup":"rg","server":"srv","name":"db","identity":{"type":"UserAssigned"}}]"#,
        ] {
            assert!(
                World::from_json(&format!("{base}{bad}}}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn database_identity_keeps_known_entra_ids() {
        let current = DatabaseIdentity::of(&["/x/A".to_string()], None);
        let next = DatabaseIdentity::of(&["/x/a".to_string(), "/x/b".to_string()], Some(&current));
        assert_eq!(
            next.user_assigned_identities["/x/a"],
            current.user_assigned_identities["/x/A"]
        );
        assert_eq!(
            next.user_assigned_identities["/x/b"],
            UserIdentity::assigned("/x/b")
        );
    }

    #[test]
    fn rejects_typos_and_orphans() {
        assert!(World::from_json(r#"{"subscriptionz":[]}"#).is_err());
        let orphan = r#"{"subscriptions":[{"id":"s1","name":"one"}],
            "sqlDatabases":[{"resourceGroup":"rg","server":"nope","name":"db"}]}"#;
        assert!(World::from_json(orphan).is_err());
    }
}
