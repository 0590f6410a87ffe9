//! `azsim seed`: generated worlds. The demo fleet is hand-made to hold every edge case azbook
//! must get right; the sized fleets are generated for benchmarks, deterministic per `--seed`.

mod demo;
mod fleet;

use crate::synth;
use crate::world::{Encryption, EncryptionIdentity, KeyVaultProperties, World, default_services};
use anyhow::Result;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fleet {
    Demo,
    Small,
    Medium,
    Large,
}

pub fn generate(
    fleet: Fleet,
    subscriptions: Option<u32>,
    noncompliant_percent: u64,
    seed: u64,
) -> Result<World> {
    let mut world = match fleet {
        Fleet::Demo => demo::world(),
        Fleet::Small => fleet::world(&fleet::SMALL, subscriptions, noncompliant_percent, seed),
        Fleet::Medium => fleet::world(&fleet::MEDIUM, subscriptions, noncompliant_percent, seed),
        Fleet::Large => fleet::world(&fleet::LARGE, subscriptions, noncompliant_percent, seed),
    };
    world.normalize()?;
    Ok(world)
}

const ROTATED: &str = "2024-03-01T10:00:00+00:00";

pub fn vault_uri(vault: &str) -> String {
    format!("https://{vault}.vault.azure.net/")
}

/// A Key Vault key id with a 32-hex version, as Key Vault issues them.
pub fn key_id(vault: &str, key: &str, version: &str) -> String {
    format!("https://{vault}.vault.azure.net/keys/{key}/{version}")
}

pub fn uai_id(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

pub fn system_identity(tenant: &str, owner: &str) -> Value {
    json!({"principalId": synth::guid(&format!("principal|{owner}")), "tenantId": tenant, "type": "SystemAssigned", "userAssignedIdentities": null})
}

pub fn user_identity(uai: &str) -> Value {
    let ids = json!({"clientId": synth::guid(&format!("client|{uai}")), "principalId": synth::guid(&format!("principal|{uai}"))});
    json!({"principalId": null, "tenantId": null, "type": "UserAssigned", "userAssignedIdentities": {uai: ids}})
}

/// Microsoft-managed keys with the given spelling of the key source.
pub fn mmk(key_source: &str, infrastructure: Option<bool>) -> Option<Encryption> {
    Some(Encryption {
        key_source: key_source.into(),
        key_vault_properties: None,
        encryption_identity: None,
        require_infrastructure_encryption: infrastructure,
        services: default_services(),
    })
}

/// A customer-managed key. `version`: None = never set (null), Some("") = versionless, or a
/// pinned version.
pub fn cmk(
    key_source: &str,
    vault: &str,
    key: &str,
    version: Option<&str>,
    identity: Option<EncryptionIdentity>,
) -> Option<Encryption> {
    let current = match version {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => synth::key_version(&vault_uri(vault), key),
    };
    Some(Encryption {
        key_source: key_source.into(),
        key_vault_properties: Some(KeyVaultProperties {
            key_vault_uri: Some(vault_uri(vault)),
            key_name: Some(key.into()),
            key_version: version.map(str::to_string),
            current_versioned_key_identifier: Some(key_id(vault, key, &current)),
            current_versioned_key_expiration_timestamp: None,
            last_key_rotation_timestamp: Some(ROTATED.into()),
        }),
        encryption_identity: identity,
        require_infrastructure_encryption: Some(false),
        services: default_services(),
    })
}

pub fn critical() -> Value {
    json!({"data-classification": "critical"})
}
