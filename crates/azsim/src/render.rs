//! az's printed shapes: ARM `properties` flattened to the top level, camelCase SDK names,
//! `resourceGroup` added and every unset attribute printed as null. Key sets and value formats
//! follow what azure-cli 2.91 printed in `tests/reference/az_cli_2.91/`.

use crate::armid;
use crate::synth;
use crate::world::{
    DatabaseIdentity, Encryption, EncryptionScope, ServerKey, ServerKeyType, SqlDatabase,
    SqlManagedInstance, SqlServer, StorageAccount, Subscription, TdeField, User,
};
use serde_json::{Map, Value, json};

const CREATED: &str = "2024-01-01T00:00:00+00:00";

/// Builds an object from fixed fields plus a list of attributes az prints as null.
fn object(fields: Value, nulls: &[&str]) -> Value {
    let mut map = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for key in nulls {
        map.entry(*key).or_insert(Value::Null);
    }
    Value::Object(map)
}

/// az prints a managed identity with all four keys, null when unset.
fn identity(identity: &Option<Value>) -> Value {
    match identity {
        Some(Value::Object(map)) => {
            let mut map = map.clone();
            for key in ["principalId", "tenantId", "type", "userAssignedIdentities"] {
                map.entry(key).or_insert(Value::Null);
            }
            Value::Object(map)
        }
        other => other.clone().unwrap_or(Value::Null),
    }
}

/// `az account show` (list: false) or one entry of `az account list` (list: true, which
/// prints `cloudName` where show prints `environmentName`).
pub fn account(sub: &Subscription, tenant_id: &str, user: &User, cloud: &str, list: bool) -> Value {
    let cloud_key = if list { "cloudName" } else { "environmentName" };
    json!({
        cloud_key: cloud,
        "homeTenantId": tenant_id,
        "id": sub.id,
        "isDefault": sub.is_default,
        "managedByTenants": [],
        "name": sub.name,
        "state": sub.state,
        "tenantId": tenant_id,
        "user": {"name": user.name, "type": user.kind},
    })
}

fn encryption(enc: &Encryption) -> Value {
    let kvp = enc.key_vault_properties.as_ref().map(|k| {
        json!({
            "currentVersionedKeyExpirationTimestamp": k.current_versioned_key_expiration_timestamp,
            "currentVersionedKeyIdentifier": k.current_versioned_key_identifier,
            "keyName": k.key_name,
            "keyVaultUri": k.key_vault_uri,
            "keyVersion": k.key_version,
            "lastKeyRotationTimestamp": k.last_key_rotation_timestamp,
        })
    });
    let identity = enc.encryption_identity.as_ref().map(|i| {
        json!({
            "encryptionFederatedIdentityClientId": i.encryption_federated_identity_client_id,
            "encryptionUserAssignedIdentity": i.encryption_user_assigned_identity,
        })
    });
    json!({
        "encryptionIdentity": identity,
        "keySource": enc.key_source,
        "keyVaultProperties": kvp,
        "requireInfrastructureEncryption": enc.require_infrastructure_encryption,
        "services": enc.services,
    })
}

const STORAGE_NULLS: &[&str] = &[
    "accessTier",
    "accountMigrationInProgress",
    "allowBlobPublicAccess",
    "allowCrossTenantReplication",
    "allowSharedKeyAccess",
    "allowSharedKeyAccessForServices",
    "allowedCopyScope",
    "azureFilesIdentityBasedAuthentication",
    "blobRestoreStatus",
    "customDomain",
    "dataCollaborationPolicyProperties",
    "defaultToOAuthAuthentication",
    "dnsEndpointType",
    "dualStackEndpointPreference",
    "enableExtendedGroups",
    "enableNfsV3",
    "extendedLocation",
    "failoverInProgress",
    "geoPriorityReplicationStatus",
    "geoReplicationStats",
    "immutableStorageWithVersioning",
    "isHnsEnabled",
    "isLocalUserEnabled",
    "isSftpEnabled",
    "isSkuConversionBlocked",
    "keyCreationTime",
    "keyPolicy",
    "largeFileSharesState",
    "lastGeoFailoverTime",
    "networkRuleSet",
    "placement",
    "primaryEndpoints",
    "privateEndpointConnections",
    "publicNetworkAccess",
    "routingPreference",
    "sasPolicy",
    "secondaryEndpoints",
    "secondaryLocation",
    "statusOfSecondary",
    "storageAccountSkuConversionStatus",
    "systemData",
    "zones",
];

/// `az storage account show/list/update`. An account without an `encryption` object (the
/// platform default) prints `"encryption": null`, as az does for such wire bodies.
pub fn storage_account(sa: &StorageAccount) -> Value {
    let sku = json!({"name": sa.sku.get("name").cloned().unwrap_or(Value::Null), "tier": sa.sku.get("tier").cloned().unwrap_or(Value::Null)});
    object(
        json!({
            "creationTime": CREATED,
            "enableHttpsTrafficOnly": true,
            "encryption": sa.encryption.as_ref().map(encryption),
            "id": armid::storage_id(&sa.subscription, &sa.resource_group, &sa.name),
            "identity": identity(&sa.identity),
            "kind": sa.kind,
            "location": sa.location,
            "minimumTlsVersion": "TLS1_2",
            "name": sa.name,
            "primaryLocation": sa.location,
            "provisioningState": "Succeeded",
            "resourceGroup": sa.resource_group,
            "sku": sku,
            "statusOfPrimary": "available",
            "tags": sa.tags,
            "type": "Microsoft.Storage/storageAccounts",
        }),
        STORAGE_NULLS,
    )
}

const SERVER_NULLS: &[&str] = &[
    "administratorLoginPassword",
    "administrators",
    "createMode",
    "externalGovernanceStatus",
    "federatedClientId",
    "isIPv6Enabled",
    "privateEndpointConnections",
    "restrictOutboundNetworkAccess",
    "retentionDays",
    "workspaceFeature",
];

/// `az sql server show/list`: `keyId` is the protector's key when it is in Key Vault.
pub fn sql_server(srv: &SqlServer) -> Value {
    let primary_uai = srv
        .identity
        .as_ref()
        .and_then(|i| i.get("userAssignedIdentities"))
        .and_then(Value::as_object)
        .and_then(|m| m.keys().next().cloned());
    object(
        json!({
            "administratorLogin": "sqladmin",
            "fullyQualifiedDomainName": format!("{}.database.windows.net", srv.name.to_ascii_lowercase()),
            "id": armid::server_id(&srv.subscription, &srv.resource_group, &srv.name),
            "identity": identity(&srv.identity),
            "keyId": srv.protector.uri,
            "kind": "v12.0",
            "location": srv.location,
            "minimalTlsVersion": "1.2",
            "name": srv.name,
            "primaryUserAssignedIdentityId": primary_uai,
            "publicNetworkAccess": "Enabled",
            "resourceGroup": srv.resource_group,
            "state": "Ready",
            "tags": srv.tags,
            "type": "Microsoft.Sql/servers",
            "version": "12.0",
        }),
        SERVER_NULLS,
    )
}

/// `az sql server tde-key show/set`.
pub fn protector(srv: &SqlServer) -> Value {
    let p = &srv.protector;
    let (kind, key_name) = match (p.server_key_type, &p.uri) {
        (ServerKeyType::AzureKeyVault, Some(uri)) => (
            "azurekeyvault",
            armid::server_key_name(uri).unwrap_or_default(),
        ),
        _ => ("servicemanaged", "ServiceManaged".to_string()),
    };
    json!({
        "autoRotationEnabled": p.auto_rotation_enabled,
        "id": format!("{}/encryptionProtector/current", armid::server_id(&srv.subscription, &srv.resource_group, &srv.name)),
        "keyVersion": null,
        "kind": kind,
        "location": srv.location,
        "name": "current",
        "resourceGroup": srv.resource_group,
        "serverKeyName": key_name,
        "serverKeyType": p.server_key_type,
        "subregion": null,
        "thumbprint": p.uri.as_deref().map(synth::thumbprint),
        "type": "Microsoft.Sql/servers/encryptionProtector",
        "uri": p.uri,
    })
}

/// One entry of `az sql server key list/show/create`; `None` is the built-in ServiceManaged key.
pub fn server_key(srv: &SqlServer, key: Option<&ServerKey>) -> Value {
    let name = key.map_or_else(
        || "ServiceManaged".to_string(),
        |k| armid::server_key_name(&k.uri).unwrap_or_default(),
    );
    json!({
        "autoRotationEnabled": key.map(|k| k.auto_rotation_enabled),
        "creationDate": key.map(|_| CREATED),
        "id": format!("{}/keys/{name}", armid::server_id(&srv.subscription, &srv.resource_group, &srv.name)),
        "keyVersion": null,
        "kind": if key.is_some() { "azurekeyvault" } else { "servicemanaged" },
        "location": srv.location,
        "name": name,
        "resourceGroup": srv.resource_group,
        "serverKeyType": if key.is_some() { "AzureKeyVault" } else { "ServiceManaged" },
        "subregion": null,
        "thumbprint": key.map(|k| synth::thumbprint(&k.uri)),
        "type": "Microsoft.Sql/servers/keys",
        "uri": key.map(|k| k.uri.clone()),
    })
}

/// What `az sql mi show/list` prints as null: the attributes of azure-mgmt-sql 4.0.0b22's
/// `ManagedInstance` (azure-cli 2.91) that azsim's instances do not have.
const MANAGED_INSTANCE_NULLS: &[&str] = &[
    "administratorLoginPassword",
    "administrators",
    "authenticationMetadata",
    "databaseFormat",
    "dnsZonePartner",
    "externalGovernanceStatus",
    "hybridSecondaryUsage",
    "hybridSecondaryUsageDetected",
    "instancePoolId",
    "isGeneralPurposeV2",
    "maintenanceConfigurationId",
    "managedInstanceCreateMode",
    "memorySizeInGb",
    "pricingModel",
    "privateEndpointConnections",
    "requestedLogicalAvailabilityZone",
    "restorePointInTime",
    "servicePrincipal",
    "sourceManagedInstanceId",
    "storageIops",
    "storageThroughputMbps",
    "timezoneId",
    "virtualClusterId",
];

/// az prints a sku with all five attributes of the SDK's `Sku`, null when unset.
fn printed_sku(sku: &Value) -> Value {
    let get = |k: &str| sku.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "capacity": get("capacity"),
        "family": get("family"),
        "name": get("name"),
        "size": get("size"),
        "tier": get("tier"),
    })
}

/// `az sql mi show/list`: `keyId` is the protector's key when it is in Key Vault. The printed
/// names are az's camelCase of the SDK's (`storageSizeInGb`, not the wire's `storageSizeInGB`).
pub fn managed_instance(mi: &SqlManagedInstance) -> Value {
    object(
        json!({
            "administratorLogin": "sqladmin",
            "collation": "SQL_Latin1_General_CP1_CI_AS",
            "createTime": CREATED,
            "currentBackupStorageRedundancy": "Geo",
            "dnsZone": mi.dns_zone(),
            "fullyQualifiedDomainName": mi.fully_qualified_domain_name(),
            "id": armid::managed_instance_id(&mi.subscription, &mi.resource_group, &mi.name),
            "identity": identity(&mi.identity),
            "keyId": mi.protector.uri,
            "licenseType": "LicenseIncluded",
            "location": mi.location,
            "minimalTlsVersion": "1.2",
            "name": mi.name,
            "primaryUserAssignedIdentityId": mi.primary_user_assigned_identity(),
            "provisioningState": "Succeeded",
            "proxyOverride": "Default",
            "publicDataEndpointEnabled": false,
            "requestedBackupStorageRedundancy": "Geo",
            "resourceGroup": mi.resource_group,
            "sku": printed_sku(&mi.sku),
            "state": "Ready",
            "storageSizeInGb": 256,
            "subnetId": mi.subnet_id(),
            "tags": mi.tags,
            "type": "Microsoft.Sql/managedInstances",
            "vCores": mi.sku.get("capacity").cloned().unwrap_or(Value::Null),
            "zoneRedundant": false,
        }),
        MANAGED_INSTANCE_NULLS,
    )
}

/// `az sql mi tde-key show/set`: the SDK's `ManagedInstanceEncryptionProtector` has no
/// location, subregion or keyVersion (unlike a server's), and the service sends no thumbprint
/// (recorded `mi_tde_key_show_akv`), so az prints it as null.
pub fn mi_protector(mi: &SqlManagedInstance) -> Value {
    let p = &mi.protector;
    let (kind, key_name) = match (p.server_key_type, &p.uri) {
        (ServerKeyType::AzureKeyVault, Some(uri)) => (
            "azurekeyvault",
            armid::server_key_name(uri).unwrap_or_default(),
        ),
        _ => ("servicemanaged", "ServiceManaged".to_string()),
    };
    json!({
        "autoRotationEnabled": p.auto_rotation_enabled,
        "id": format!("{}/encryptionProtector/current", armid::managed_instance_id(&mi.subscription, &mi.resource_group, &mi.name)),
        "kind": kind,
        "name": "current",
        "resourceGroup": mi.resource_group,
        "serverKeyName": key_name,
        "serverKeyType": p.server_key_type,
        "thumbprint": null,
        "type": "Microsoft.Sql/managedInstances/encryptionProtector",
        "uri": p.uri,
    })
}

/// One entry of `az sql mi key list/show/create` (the SDK's `ManagedInstanceKey`: no location,
/// subregion or keyVersion); `None` is the built-in ServiceManaged key.
pub fn mi_key(mi: &SqlManagedInstance, key: Option<&ServerKey>) -> Value {
    let name = key.map_or_else(
        || "ServiceManaged".to_string(),
        |k| armid::server_key_name(&k.uri).unwrap_or_default(),
    );
    json!({
        "autoRotationEnabled": key.map(|k| k.auto_rotation_enabled),
        "creationDate": key.map(|_| CREATED),
        "id": format!("{}/keys/{name}", armid::managed_instance_id(&mi.subscription, &mi.resource_group, &mi.name)),
        "kind": if key.is_some() { "azurekeyvault" } else { "servicemanaged" },
        "name": name,
        "resourceGroup": mi.resource_group,
        "serverKeyType": if key.is_some() { "AzureKeyVault" } else { "ServiceManaged" },
        "thumbprint": key.map(|k| synth::thumbprint(&k.uri)),
        "type": "Microsoft.Sql/managedInstances/keys",
        "uri": key.map(|k| k.uri.clone()),
    })
}

const DATABASE_NULLS: &[&str] = &[
    "autoPauseDelay",
    "availabilityZone",
    "catalogCollation",
    "createMode",
    "currentBackupStorageRedundancy",
    "currentSku",
    "defaultSecondaryLocation",
    "earliestRestoreDate",
    "elasticPoolId",
    "elasticPoolName",
    "failoverGroupId",
    "freeLimitExhaustionBehavior",
    "highAvailabilityReplicaCount",
    "ledgerOn",
    "licenseType",
    "longTermRetentionBackupResourceId",
    "maintenanceConfigurationId",
    "managedBy",
    "manualCutover",
    "maxLogSizeBytes",
    "maxSizeBytes",
    "minCapacity",
    "pausedDate",
    "performCutover",
    "preferredEnclaveType",
    "readScale",
    "recoverableDatabaseId",
    "recoveryServicesRecoveryPointId",
    "requestedBackupStorageRedundancy",
    "requestedServiceObjectiveName",
    "restorableDroppedDatabaseId",
    "restorePointInTime",
    "resumedDate",
    "sampleName",
    "secondaryType",
    "sourceDatabaseDeletionDate",
    "sourceDatabaseId",
    "sourceResourceId",
    "useFreeLimit",
];

/// The service objective the SQL RP reports for a sku: vCore skus (a hardware family, or a
/// vCore tier: the spec's `BC_Gen4` with capacity 2 is `BC_Gen4_2`) are `NAME_CAPACITY`, DTU
/// skus use their short names.
pub fn service_objective(sku: &Value) -> Value {
    let name = sku["name"].as_str().unwrap_or_default();
    let capacity = sku["capacity"].as_u64();
    let dtu = |table: &[(u64, &str)]| {
        table
            .iter()
            .find(|(c, _)| Some(*c) == capacity)
            .map(|(_, s)| s.to_string())
    };
    let vcore_tier = matches!(
        sku["tier"].as_str(),
        Some("GeneralPurpose" | "BusinessCritical" | "Hyperscale")
    );
    let objective = match (sku["tier"].as_str(), sku.get("family")) {
        (_, Some(Value::String(_))) => capacity.map(|c| format!("{name}_{c}")),
        _ if vcore_tier => capacity.map(|c| format!("{name}_{c}")),
        (Some("Standard"), _) => {
            dtu(&[(10, "S0"), (20, "S1"), (50, "S2"), (100, "S3"), (200, "S4")])
        }
        (Some("Premium"), _) => dtu(&[(125, "P1"), (250, "P2"), (500, "P4"), (1000, "P6")]),
        _ => None,
    };
    json!(objective.unwrap_or_else(|| name.to_string()))
}

/// A database's identity as az prints the SDK's `DatabaseIdentity`: type, tenantId (which the
/// service does not send for a database: null) and each identity's client and principal ids.
fn database_identity(identity: Option<&DatabaseIdentity>) -> Value {
    identity.map_or(Value::Null, |i| {
        json!({
            "tenantId": null,
            "type": i.kind,
            "userAssignedIdentities": i.user_assigned_identities,
        })
    })
}

/// One entry of a database's `keys` as az prints the SDK's `DatabaseKey`: what the service
/// sends (see `serve::wire::database_key`) and null for `subregion` and `keyVersion`, which it
/// does not send.
pub fn database_key(uri: &str) -> Value {
    json!({
        "creationDate": CREATED,
        "keyVersion": null,
        "subregion": null,
        "thumbprint": synth::thumbprint(uri),
        "type": "AzureKeyVault",
    })
}

/// `az sql db show/list/update`: `encryptionProtector` is a plain string (a database-level key)
/// or null. `keys` is printed only when asked for (`--expand-keys`: the service sends them only
/// for `$expand=keys`), as a map from key URI to key, null when the database has none.
pub fn database(db: &SqlDatabase, expand_keys: bool) -> Value {
    let sku = db.sku.clone().unwrap_or(Value::Null);
    let printed_sku = json!({
        "capacity": sku.get("capacity").cloned().unwrap_or(Value::Null),
        "family": sku.get("family").cloned().unwrap_or(Value::Null),
        "name": sku.get("name").cloned().unwrap_or(Value::Null),
        "size": sku.get("size").cloned().unwrap_or(Value::Null),
        "tier": sku.get("tier").cloned().unwrap_or(Value::Null),
    });
    let id = armid::database_id(&db.subscription, &db.resource_group, &db.server, &db.name);
    object(
        json!({
            "collation": "SQL_Latin1_General_CP1_CI_AS",
            "creationDate": CREATED,
            "currentServiceObjectiveName": service_objective(&sku),
            "databaseId": synth::guid(&id),
            "edition": sku.get("tier").cloned().unwrap_or(Value::Null),
            "encryptionProtector": db.encryption_protector,
            "encryptionProtectorAutoRotation": db.encryption_protector_auto_rotation,
            "federatedClientId": db.federated_client_id,
            "id": id,
            "identity": database_identity(db.identity.as_ref()),
            "isInfraEncryptionEnabled": false,
            "keys": printed_keys(db, expand_keys),
            "kind": db.kind,
            "location": db.location,
            "name": db.name,
            "resourceGroup": db.resource_group,
            "sku": printed_sku,
            "status": "Online",
            "tags": db.tags,
            "type": "Microsoft.Sql/servers/databases",
            "zoneRedundant": false,
        }),
        DATABASE_NULLS,
    )
}

fn printed_keys(db: &SqlDatabase, expand: bool) -> Value {
    if !expand || db.keys.is_empty() {
        return Value::Null;
    }
    Value::Object(
        db.keys
            .iter()
            .map(|k| (k.clone(), database_key(k)))
            .collect(),
    )
}

/// `az sql db tde show/set`. With the legacy field (api 2014-04-01) az printed `status` and a
/// `location` (the database's on show, null in the PUT response of set), and no `scanState`.
pub fn tde(db: &SqlDatabase, field: TdeField, after_set: bool) -> Value {
    let id = format!(
        "{}/transparentDataEncryption/current",
        armid::database_id(&db.subscription, &db.resource_group, &db.server, &db.name)
    );
    let mut out = json!({
        "id": id,
        "name": "current",
        "resourceGroup": db.resource_group,
        "type": "Microsoft.Sql/servers/databases/transparentDataEncryption",
    });
    match field {
        TdeField::State => {
            out["scanState"] = Value::Null;
            out["state"] = json!(db.tde_state.as_str());
        }
        TdeField::Status => {
            out["status"] = json!(db.tde_state.as_str());
            out["location"] = if after_set {
                Value::Null
            } else {
                json!(db.location)
            };
        }
    }
    out
}

/// `az storage account encryption-scope show/list/update` (and `create`, `put: true`): the
/// SDK model flattened, `systemData` and unset attributes null. `keyVaultProperties` is null
/// for a Microsoft.Storage scope, except after a PUT, whose response carries `{}` (printed
/// with its three attributes null).
///
/// A list item (`listed`) shows only `keyUri` of the Key Vault properties, the other two null,
/// because the provider's list answer carries only `keyUri` (see `serve::wire`).
pub fn encryption_scope(scope: &EncryptionScope, put: bool, listed: bool) -> Value {
    let kvp = match &scope.key_vault_properties {
        Some(k) if listed => json!({
            "currentVersionedKeyIdentifier": null,
            "keyUri": k.key_uri,
            "lastKeyRotationTimestamp": null,
        }),
        Some(k) => json!({
            "currentVersionedKeyIdentifier": k.current_versioned_key_identifier,
            "keyUri": k.key_uri,
            "lastKeyRotationTimestamp": k.last_key_rotation_timestamp,
        }),
        None if put => json!({
            "currentVersionedKeyIdentifier": null,
            "keyUri": null,
            "lastKeyRotationTimestamp": null,
        }),
        None => Value::Null,
    };
    json!({
        "creationTime": scope.creation_time,
        "id": armid::encryption_scope_id(&scope.subscription, &scope.resource_group, &scope.account, &scope.name),
        "keyVaultProperties": kvp,
        "lastModifiedTime": scope.last_modified_time,
        "name": scope.name,
        "requireInfrastructureEncryption": scope.require_infrastructure_encryption,
        "resourceGroup": scope.resource_group,
        "source": scope.source,
        "state": scope.state.as_str(),
        "systemData": null,
        "type": "Microsoft.Storage/storageAccounts/encryptionScopes",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_objectives() {
        assert_eq!(
            service_objective(
                &json!({"name": "GP_S_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 1})
            ),
            "GP_S_Gen5_1"
        );
        assert_eq!(
            service_objective(&json!({"name": "Standard", "tier": "Standard", "capacity": 10})),
            "S0"
        );
        assert_eq!(
            service_objective(
                &json!({"name": "BC_Gen4", "tier": "BusinessCritical", "capacity": 2})
            ),
            "BC_Gen4_2"
        );
        assert_eq!(
            service_objective(&json!({"name": "System0", "tier": "System", "capacity": 0})),
            "System0"
        );
    }

    #[test]
    fn identity_gets_all_keys() {
        let printed = identity(&Some(json!({"type": "SystemAssigned", "principalId": "p"})));
        assert_eq!(
            printed,
            json!({"type": "SystemAssigned", "principalId": "p", "tenantId": null, "userAssignedIdentities": null})
        );
        assert_eq!(identity(&None), Value::Null);
    }
}
