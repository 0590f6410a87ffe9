//! End-to-end tests of azsim: the real binary, run through a symlink named `az` exactly as azbook
//! and the demo run it, against worlds written here.
//!
//! The conformance test replays every capture of the real azure-cli 2.91 in
//! `tests/reference/az_cli_2.91/` (at the workspace root) against the equivalent azsim world and
//! compares exit codes, stdout (byte for byte, after the few fields a world cannot know) and
//! stderr.
//!
//! Command lines are written as one string split on whitespace (`sim.az("account show")`);
//! the `_args` variants take an argv for values that contain spaces.

use crate::harness::{Sim, text, words};
use serde_json::{Value, json};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const SUB: &str = "00000000-0000-0000-0000-00000000aaaa";
const UAI: &str = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai1";
const SQL_KID: &str = "https://kv1.vault.azure.net/keys/sqlkey/0123456789abcdef0123456789abcdef";

fn first_line(out: &Output) -> String {
    text(&out.stderr)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Exit code and first stderr line, compared together for failing calls.
fn failure(out: &Output) -> (Option<i32>, String) {
    (out.status.code(), first_line(out))
}

fn fails(code: i32, line: &str) -> (Option<i32>, String) {
    (Some(code), line.to_string())
}

// ---------------------------------------------------------------------------------------------
// Conformance with azure-cli 2.91
// ---------------------------------------------------------------------------------------------

/// The world equivalent to `tests/reference/az_cli_2.91/_wire_input.json` (the disk, Cosmos DB,
/// PostgreSQL and MySQL resources there are outside azsim's model and no capture reads them).
fn reference_world() -> Value {
    let service = json!({"enabled": true, "keyType": "Account", "lastEnabledTime": "2024-01-01T00:00:00+00:00"});
    let kvp = json!({
        "keyName": "key1", "keyVersion": "", "keyVaultUri": "https://kv1.vault.azure.net/",
        "currentVersionedKeyIdentifier": "https://kv1.vault.azure.net/keys/key1/0123456789abcdef0123456789abcdef",
        "currentVersionedKeyExpirationTimestamp": null, "lastKeyRotationTimestamp": "2024-01-02T00:00:00+00:00"
    });
    let storage_uai = json!({"principalId": "11111111-0000-0000-0000-000000000001", "clientId": "11111111-0000-0000-0000-000000000002"});
    json!({
        "tenantId": "00000000-0000-0000-0000-00000000bbbb",
        "user": {"name": "22222222-0000-0000-0000-000000000001", "type": "servicePrincipal"},
        "settings": {"cloudName": "EmuCloud"},
        "subscriptions": [{"id": SUB, "name": "Emu Subscription", "state": "Enabled", "isDefault": true}],
        "storageAccounts": [
            {"subscription": SUB, "resourceGroup": "rg1", "name": "sacmk", "location": "eastus", "kind": "StorageV2",
             "sku": {"name": "Standard_LRS", "tier": "Standard"}, "tags": {},
             "identity": {"principalId": null, "tenantId": null, "type": "UserAssigned", "userAssignedIdentities": {UAI: storage_uai}},
             "encryption": {"keySource": "Microsoft.Keyvault", "requireInfrastructureEncryption": false, "keyVaultProperties": kvp,
                 "encryptionIdentity": {"encryptionUserAssignedIdentity": UAI, "encryptionFederatedIdentityClientId": null},
                 "services": {"blob": service, "file": service, "queue": null, "table": null}}},
            {"subscription": SUB, "resourceGroup": "rg1", "name": "sapmk",
             "encryption": {"keySource": "Microsoft.Storage", "requireInfrastructureEncryption": true}}
        ],
        "sqlServers": [{"subscription": SUB, "resourceGroup": "rg1", "name": "sql1", "location": "eastus", "tags": null,
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAI: {"principalId": "p", "clientId": "c"}}},
            "protector": {"serverKeyType": "AzureKeyVault", "uri": SQL_KID, "autoRotationEnabled": false},
            "keys": [{"uri": SQL_KID, "autoRotationEnabled": false}]}],
        "sqlDatabases": [{"subscription": SUB, "resourceGroup": "rg1", "server": "sql1", "name": "db1",
            "kind": "v12.0,user", "sku": {"name": "GP_S_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 1},
            "encryptionProtector": null, "tdeState": "Enabled"}]
    })
}

/// How a capture is checked.
enum Check {
    /// stdout equal byte for byte, except these top-level fields (with the reason).
    Stdout(&'static [&'static str], &'static str),
    /// stderr and stdout equal byte for byte.
    Stderr,
    /// The error layout and code only: the message text inside `(Code) ...` came from the
    /// emulator that served the capture, not from Azure (see
    /// tests/reference/az_cli_2.91/README.md).
    ErrorCode,
}

const STORAGE_UNKNOWN: &[&str] = &[
    "creationTime",
    "minimumTlsVersion",
    "primaryLocation",
    "statusOfPrimary",
];
const STORAGE_REASON: &str = "the capture's wire body for sapmk omitted these properties; azsim always \
    prints them as a real account has them (sacmk's, which the wire did carry, match)";
const DB_REASON: &str =
    "the emulator's placeholder id 'd1'; azsim derives a GUID from the database id";
const THUMBPRINT_REASON: &str =
    "the emulator's placeholder 'ABCDEF'; azsim derives a 40-hex thumbprint from the key URI";

fn capture_plan(name: &str) -> Option<(Check, Value)> {
    let mut world = reference_world();
    let check = match name {
        "account_list.json"
        | "account_show.json"
        | "storage_account_show_cmk_uai.json"
        | "storage_account_update_to_mmk.json"
        | "sql_server_list.json"
        | "sql_server_show.json"
        | "sql_db_tde_show.json"
        | "sql_db_tde_set_disabled.json"
        | "sql_server_tde_key_set_servicemanaged.json" => Check::Stdout(&[], ""),
        "storage_account_list.json" | "storage_account_show_mmk_infra.json" => {
            Check::Stdout(STORAGE_UNKNOWN, STORAGE_REASON)
        }
        "sql_db_list.json" | "sql_db_show.json" => Check::Stdout(&["databaseId"], DB_REASON),
        "sql_server_key_list.json" | "sql_server_tde_key_show_akv.json" => {
            Check::Stdout(&["thumbprint"], THUMBPRINT_REASON)
        }
        "sql_server_tde_key_show_servicemanaged.json" => {
            // Captured after the protector was set to ServiceManaged; the key stays registered.
            world["sqlServers"][0]["protector"] = json!({"serverKeyType": "ServiceManaged", "uri": null, "autoRotationEnabled": false});
            Check::Stdout(&[], "")
        }
        "error_authorization_failed_rc1.json" => {
            let message = "The client 'ops@contoso.com' with object id '00000000-0000-0000-0000-00000000cccc' does not have \
                authorization to perform action 'Microsoft.Storage/storageAccounts/write' over scope \
                '/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/sapmk' \
                or the scope is invalid. If access was recently granted, please refresh your credentials.";
            let error = json!({"code": "AuthorizationFailed", "message": message});
            world["faults"] = json!([{"command": "storage account update", "error": error}]);
            Check::Stderr
        }
        "error_missing_argument_rc2.json" | "error_unrecognized_argument_rc2.json" => Check::Stderr,
        "error_not_found_rc3.json" => Check::ErrorCode,
        _ => return None,
    };
    Some((check, world))
}

/// Copies the excepted fields from the expected objects into the actual ones.
fn apply_exceptions(expected: &Value, actual: &mut Value, fields: &[&str]) {
    let pairs: Vec<(&Value, &mut Value)> = match (expected, actual) {
        (Value::Array(e), Value::Array(a)) => e.iter().zip(a.iter_mut()).collect(),
        (e, a) => vec![(e, a)],
    };
    for (e, a) in pairs {
        for field in fields {
            assert!(
                a.get(*field).is_some() && e.get(*field).is_some(),
                "excepted field {field} must exist on both sides"
            );
            a[*field] = e[*field].clone();
        }
    }
}

fn check_capture(name: &str, capture: &Value, check: Check, out: &Output) {
    let want_code = capture["exit_code"].as_i64().map(|c| c as i32);
    assert_eq!(
        out.status.code(),
        want_code,
        "{name}: exit code; stderr {}",
        text(&out.stderr)
    );
    let want_out = capture["stdout"].as_str().expect("stdout");
    let want_err = capture["stderr"].as_str().expect("stderr");
    match check {
        Check::Stdout(fields, reason) => {
            assert!(
                fields.is_empty() || !reason.is_empty(),
                "{name}: every exception has a reason"
            );
            let expected: Value = serde_json::from_str(want_out).expect("captured stdout is JSON");
            let mut actual: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("{name}: {}", text(&out.stdout)));
            if fields.is_empty() {
                assert_eq!(text(&out.stdout), want_out, "{name}: stdout bytes");
            }
            apply_exceptions(&expected, &mut actual, fields);
            let printed = format!(
                "{}\n",
                serde_json::to_string_pretty(&actual).expect("print")
            );
            assert_eq!(printed, want_out, "{name}: stdout fields");
            assert_eq!(text(&out.stderr), want_err, "{name}: stderr");
        }
        Check::Stderr => {
            assert_eq!(text(&out.stderr), want_err, "{name}: stderr");
            assert_eq!(text(&out.stdout), want_out, "{name}: stdout");
        }
        Check::ErrorCode => {
            let code = |s: &str| {
                s.lines()
                    .next()
                    .and_then(|l| l.split_once(") "))
                    .map(|(c, _)| c.to_string())
            };
            let got = text(&out.stderr);
            assert_eq!(code(&got), code(want_err), "{name}: error code");
            let labels: Vec<&str> = got
                .lines()
                .map(|l| l.split(' ').next().unwrap_or_default())
                .collect();
            assert_eq!(
                labels,
                ["ERROR:", "Code:", "Message:"],
                "{name}: error layout"
            );
        }
    }
}

#[test]
fn conformance_with_azure_cli_2_91() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/az_cli_2.91");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("reference dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !name.ends_with(".json") || name == "_wire_input.json" || name == "version.json" {
            continue;
        }
        let capture: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
            .expect("capture JSON");
        let (check, world) = capture_plan(&name)
            .unwrap_or_else(|| panic!("no conformance plan for new capture {name}"));
        let argv: Vec<&str> = capture["argv"]
            .as_array()
            .expect("argv")
            .iter()
            .skip(1)
            .map(|a| a.as_str().expect("arg"))
            .collect();
        let out = Sim::new(&world).az_args(&argv);
        check_capture(&name, &capture, check, &out);
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} captures checked");
}

#[test]
fn version_matches_reference() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/reference/az_cli_2.91/version.json");
    let capture: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON");
    let out = Sim::new(&reference_world()).az("version --output=json");
    assert_eq!(
        text(&out.stdout),
        capture["stdout"].as_str().expect("stdout")
    );
}

// ---------------------------------------------------------------------------------------------
// Storage accounts
// ---------------------------------------------------------------------------------------------

fn demo() -> Sim {
    Sim::seeded("--fleet demo")
}

#[test]
fn update_to_mmk_clears_key_vault_properties_and_identity() {
    let sim = demo();
    let before = sim.json("storage account show -n stpartner01 -g rg-partner");
    assert!(
        before["encryption"]["encryptionIdentity"]["encryptionFederatedIdentityClientId"]
            .is_string()
    );
    let after = sim.json("storage account update -n stpartner01 -g rg-partner --encryption-key-source microsoft.storage");
    assert_eq!(
        after["encryption"]["keySource"], "Microsoft.Storage",
        "enum value normalized"
    );
    assert_eq!(after["encryption"]["keyVaultProperties"], Value::Null);
    assert_eq!(after["encryption"]["encryptionIdentity"], Value::Null);
    assert_eq!(
        after["identity"], before["identity"],
        "the managed identity itself stays"
    );
    assert_eq!(
        sim.json("storage account show -n stpartner01 -g rg-partner"),
        after
    );
}

#[test]
fn keyvault_update_round_trip_keeps_key_version_exact() {
    let sim = demo();
    let update = "storage account update -n stfinance01 -g rg-finance";
    let to_mmk = || {
        sim.json(&format!(
            "{update} --encryption-key-source=Microsoft.Storage"
        ))
    };
    let to_cmk = |extra: &str| {
        let cmk = "--encryption-key-source Microsoft.Keyvault --encryption-key-vault https://kv-fin.vault.azure.net/ --encryption-key-name fin-key";
        let printed = sim.json(&format!("{update} {cmk} {extra}"));
        assert_eq!(
            printed,
            sim.json("storage account show -n stfinance01 -g rg-finance"),
            "update prints the account"
        );
        printed["encryption"].clone()
    };

    let enc = to_cmk("");
    assert_eq!(enc["keySource"], "Microsoft.Keyvault");
    assert_eq!(
        enc["keyVaultProperties"]["keyVersion"],
        Value::Null,
        "no flag: null"
    );
    let current = enc["keyVaultProperties"]["currentVersionedKeyIdentifier"]
        .as_str()
        .expect("identifier");
    let prefix = "https://kv-fin.vault.azure.net/keys/fin-key/";
    assert!(
        current.starts_with(prefix) && current.len() == prefix.len() + 32,
        "{current}"
    );
    assert!(
        enc["keyVaultProperties"]["lastKeyRotationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with("+00:00"))
    );

    to_mmk();
    let enc = to_cmk("--encryption-key-version=");
    assert_eq!(
        enc["keyVaultProperties"]["keyVersion"], "",
        "empty flag: \"\""
    );

    to_mmk();
    let version = "00112233445566778899aabbccddeeff";
    let enc = to_cmk(&format!(
        "--encryption-key-version {version} -u {UAI} --key-vault-federated-client-id=fed-1"
    ));
    assert_eq!(enc["keyVaultProperties"]["keyVersion"], version);
    assert_eq!(
        enc["keyVaultProperties"]["currentVersionedKeyIdentifier"],
        format!("{prefix}{version}")
    );
    let identity = json!({"encryptionUserAssignedIdentity": UAI, "encryptionFederatedIdentityClientId": "fed-1"});
    assert_eq!(enc["encryptionIdentity"], identity);

    // Without a version flag the recorded version stays (az sends the account's own properties).
    assert_eq!(to_cmk("")["keyVaultProperties"]["keyVersion"], version);
}

#[test]
fn storage_update_validators_as_azure_cli() {
    let sim = demo();
    let update = "storage account update -n stfinance01 -g rg-finance";
    let out = sim.az(&format!(
        "{update} --encryption-key-source Microsoft.Keyvault --encryption-key-name k"
    ));
    let required = "ERROR: --encryption-key-name and --encryption-key-vault are required when \
                    --encryption-key-source=Microsoft.Keyvault is specified.\n";
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(2), required.to_string())
    );
    let out = sim.az(&format!(
        "{update} --encryption-key-source Microsoft.Storage --encryption-key-version="
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(first_line(&out).contains("are not applicable without Microsoft.Keyvault key-source."));
    let out = sim.az(&format!("{update} --encryption-key-name k"));
    let specify = "ERROR: Specify `--encryption-key-source=Microsoft.Keyvault` to configure key vault properties.";
    assert_eq!(failure(&out), fails(1, specify));
    let out = sim.az(&format!("{update} --encryption-key-source Vault"));
    let invalid = "ERROR: az storage account update: 'Vault' is not a valid value for '--encryption-key-source'. \
                   Allowed values: Microsoft.Storage, Microsoft.Keyvault.";
    assert_eq!(failure(&out), fails(2, invalid));
    assert_eq!(
        sim.dump()["storageAccounts"],
        demo().dump()["storageAccounts"],
        "rejected updates change nothing"
    );
}

#[test]
fn dash_resource_group_needs_the_equals_form() {
    let sim = demo();
    let shown = sim.json("storage account show --name=stopsbackup01 --resource-group=-rg.ops(1)");
    assert_eq!(shown["resourceGroup"], "-rg.ops(1)");
    let updated = sim.json(
        "storage account update --name=stopsbackup01 --resource-group=-rg.ops(1) --encryption-key-source=Microsoft.Storage",
    );
    assert_eq!(updated["encryption"]["keySource"], "Microsoft.Storage");
    let out = sim.az("storage account show -n stopsbackup01 -g -rg.ops(1)");
    assert_eq!(
        failure(&out),
        fails(
            2,
            "ERROR: argument --resource-group/-g: expected one argument"
        )
    );
    let dbs =
        sim.json("sql db list --server=sql-ops-prod --resource-group=-rg.ops(1) --query [].name");
    assert_eq!(dbs, json!(["master", "opsdb"]));
}

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

#[test]
fn tde_key_set_both_ways() {
    let sim = demo();
    let key =
        "https://kv-payments-prod.vault.azure.net/keys/sql-tde/9a4e7c1f3b8d4a2e6c0f5b9d1e3a7c48";
    let server = "-s sql-payments-prod -g rg-payments";
    let key_id =
        || sim.json("sql server show -n sql-payments-prod -g rg-payments")["keyId"].clone();

    let sm = sim.json(&format!(
        "sql server tde-key set {server} --server-key-type ServiceManaged"
    ));
    assert_eq!(sm["serverKeyType"], "ServiceManaged");
    assert_eq!(sm["serverKeyName"], "ServiceManaged");
    assert_eq!(sm["kind"], "servicemanaged");
    assert_eq!(sm["uri"], Value::Null);
    assert_eq!(sim.json(&format!("sql server tde-key show {server}")), sm);
    assert_eq!(key_id(), Value::Null);

    let akv = sim.json(&format!(
        "sql server tde-key set {server} -t AzureKeyVault -k {key} --auto-rotation-enabled true"
    ));
    assert_eq!(akv["serverKeyType"], "AzureKeyVault");
    assert_eq!(
        akv["serverKeyName"],
        "kv-payments-prod_sql-tde_9a4e7c1f3b8d4a2e6c0f5b9d1e3a7c48"
    );
    assert_eq!(akv["uri"], key);
    assert_eq!(akv["autoRotationEnabled"], true);
    assert_eq!(akv["kind"], "azurekeyvault");
    assert_eq!(key_id(), key);

    let unregistered =
        "https://kv-payments-prod.vault.azure.net/keys/other/0123456789abcdef0123456789abcdef";
    let out = sim.az(&format!(
        "sql server tde-key set {server} --server-key-type=AzureKeyVault --kid {unregistered}"
    ));
    assert_eq!(out.status.code(), Some(1));
    let not_found = "ERROR: (ServerKeyNotFound) The requested server key was not found.\n\
                     Code: ServerKeyNotFound\nMessage: The requested server key was not found.\n";
    assert_eq!(text(&out.stderr), not_found);
    let out = sim.az(&format!("sql server tde-key set {server} -t AzureKeyVault"));
    assert_eq!(
        failure(&out),
        fails(
            1,
            "ERROR: A uri must be provided if the server_key_type is AzureKeyVault."
        )
    );
    let out = sim.az(&format!("sql server tde-key set {server}"));
    assert_eq!(
        failure(&out),
        fails(
            2,
            "ERROR: the following arguments are required: --server-key-type/-t"
        )
    );
    assert_eq!(
        sim.json(&format!("sql server tde-key show {server}")),
        akv,
        "failed sets change nothing"
    );
}

#[test]
fn key_create_registers_a_key_for_tde_key_set() {
    let sim = demo();
    let kid = "https://kv-web-prod.vault.azure.net/keys/sql-tde/0123456789abcdef0123456789abcdef";
    let server = "--server sql-web-prod --resource-group rg-web";
    let created = sim.json(&format!("sql server key create {server} --kid {kid}"));
    assert_eq!(
        created["name"],
        "kv-web-prod_sql-tde_0123456789abcdef0123456789abcdef"
    );
    assert_eq!(created["uri"], kid);
    assert_eq!(created["serverKeyType"], "AzureKeyVault");
    assert_eq!(
        sim.json(&format!("sql server key create {server} --kid {kid}")),
        created,
        "create is idempotent"
    );
    let names = sim.json(&format!("sql server key list {server} --query [].name"));
    assert_eq!(
        names,
        json!([
            "kv-web-prod_sql-tde_0123456789abcdef0123456789abcdef",
            "ServiceManaged"
        ])
    );
    assert_eq!(
        sim.json(&format!("sql server key show {server} -k {kid}")),
        created
    );
    let set = sim.json(&format!(
        "sql server tde-key set {server} -t AzureKeyVault --kid {kid}"
    ));
    assert_eq!(set["serverKeyName"], created["name"]);
    let out = sim.az(&format!(
        "sql server key create {server} --kid https://example.com/keys/k/1"
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(first_line(&out).starts_with("ERROR: The provided uri is invalid."));
}

// ---------------------------------------------------------------------------------------------
// SQL Managed Instance (shapes checked against azure-cli 2.91 over `azsim serve`)
// ---------------------------------------------------------------------------------------------

const MI_KEY: &str =
    "https://kv-payments-prod.vault.azure.net/keys/sqlmi-tde/4b8e2d6a0c9f4e1b7a3d5c8f2e6b0a97";

#[test]
fn mi_list_and_show_per_subscription_and_group() {
    let sim = demo();
    assert_eq!(
        sim.json("sql mi list --query [].name"),
        json!(["sqlmi-ops-prod", "sqlmi-payments-prod"])
    );
    assert_eq!(
        sim.json("sql mi list -g rg-sqlmi --query [].name"),
        json!(["sqlmi-ops-prod", "sqlmi-payments-prod"])
    );
    let finance = "c4a9e613-8f27-4d5b-b0c1-9e3a7d5f2b64";
    assert_eq!(
        sim.json(&format!("sql mi list --subscription {finance}")),
        json!([])
    );
    let mi = sim.json("sql mi show -g rg-sqlmi -n sqlmi-payments-prod");
    assert_eq!(mi["keyId"], MI_KEY);
    assert_eq!(mi["type"], "Microsoft.Sql/managedInstances");
    assert_eq!(mi["resourceGroup"], "rg-sqlmi");
    assert_eq!(mi["storageSizeInGb"], 256);
    assert_eq!(mi["vCores"], 4);
    assert_eq!(mi["sku"]["size"], Value::Null);
    assert_eq!(mi["servicePrincipal"], Value::Null);
    assert_eq!(
        sim.json("sql mi show -g rg-sqlmi -n sqlmi-ops-prod")["keyId"],
        Value::Null
    );
    let out = sim.az("sql mi show -g rg-sqlmi -n nope");
    assert_eq!(
        failure(&out),
        fails(
            3,
            "ERROR: (ResourceNotFound) The Resource 'Microsoft.Sql/managedInstances/nope' under resource group 'rg-sqlmi' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        )
    );
    let out = sim.az("sql mi list -g rg-nope");
    assert_eq!(
        failure(&out),
        fails(
            3,
            "ERROR: (ResourceGroupNotFound) Resource group 'rg-nope' could not be found."
        )
    );
}

#[test]
fn mi_tde_key_show_and_set_both_ways() {
    let sim = demo();
    let pay = "-g rg-sqlmi --mi sqlmi-payments-prod";
    let shown = sim.json(&format!("sql mi tde-key show {pay}"));
    assert_eq!(
        shown,
        json!({
            "autoRotationEnabled": true,
            "id": "/subscriptions/7d2f8a41-3c6b-4e19-9a5d-1b0e6f4c2a87/resourceGroups/rg-sqlmi/providers/Microsoft.Sql/managedInstances/sqlmi-payments-prod/encryptionProtector/current",
            "kind": "azurekeyvault",
            "name": "current",
            "resourceGroup": "rg-sqlmi",
            "serverKeyName": "kv-payments-prod_sqlmi-tde_4b8e2d6a0c9f4e1b7a3d5c8f2e6b0a97",
            "serverKeyType": "AzureKeyVault",
            "thumbprint": null,
            "type": "Microsoft.Sql/managedInstances/encryptionProtector",
            "uri": MI_KEY,
        })
    );
    let sm = sim.json(&format!("sql mi tde-key set {pay} -t ServiceManaged"));
    assert_eq!(
        (&sm["serverKeyName"], &sm["kind"], &sm["uri"]),
        (
            &json!("ServiceManaged"),
            &json!("servicemanaged"),
            &Value::Null
        )
    );
    assert_eq!(sm["autoRotationEnabled"], false);
    assert_eq!(sim.json(&format!("sql mi tde-key show {pay}")), sm);
    assert_eq!(
        sim.json("sql mi show -g rg-sqlmi -n sqlmi-payments-prod")["keyId"],
        Value::Null
    );
    let back = sim.json(&format!(
        "sql mi tde-key set {pay} --server-key-type AzureKeyVault --kid {MI_KEY} --auto-rotation-enabled true"
    ));
    assert_eq!(
        back, shown,
        "the registered key is still there to go back to"
    );

    // A key never registered on the instance: the service refuses it and nothing changes.
    let ops = "--resource-group rg-sqlmi --managed-instance sqlmi-ops-prod";
    let out = sim.az(&format!(
        "sql mi tde-key set {ops} -t AzureKeyVault -k {MI_KEY}"
    ));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "ERROR: (ServerKeyNotFound) The requested server key was not found.\n\
         Code: ServerKeyNotFound\nMessage: The requested server key was not found.\n"
    );
    let out = sim.az(&format!("sql mi tde-key set {ops} -t AzureKeyVault"));
    assert_eq!(
        failure(&out),
        fails(
            1,
            "ERROR: A uri must be provided if the server_key_type is AzureKeyVault."
        )
    );
    assert_eq!(
        sim.json(&format!("sql mi tde-key show {ops}"))["serverKeyType"],
        "ServiceManaged"
    );
    let out = sim.az("sql mi tde-key show -g rg-sqlmi --mi nope");
    assert_eq!(
        failure(&out),
        fails(
            3,
            "ERROR: (ParentResourceNotFound) Can not perform requested operation on nested resource. Parent resource 'nope' not found."
        )
    );
}

#[test]
fn mi_key_create_list_show() {
    let sim = demo();
    let ops = "-g rg-sqlmi --mi sqlmi-ops-prod";
    let only_builtin = sim.json(&format!("sql mi key list {ops}"));
    assert_eq!(
        only_builtin,
        json!([{
            "autoRotationEnabled": null,
            "creationDate": null,
            "id": "/subscriptions/7d2f8a41-3c6b-4e19-9a5d-1b0e6f4c2a87/resourceGroups/rg-sqlmi/providers/Microsoft.Sql/managedInstances/sqlmi-ops-prod/keys/ServiceManaged",
            "kind": "servicemanaged",
            "name": "ServiceManaged",
            "resourceGroup": "rg-sqlmi",
            "serverKeyType": "ServiceManaged",
            "thumbprint": null,
            "type": "Microsoft.Sql/managedInstances/keys",
            "uri": null,
        }])
    );
    let created = sim.json(&format!("sql mi key create {ops} --kid {MI_KEY}"));
    assert_eq!(
        created["name"],
        "kv-payments-prod_sqlmi-tde_4b8e2d6a0c9f4e1b7a3d5c8f2e6b0a97"
    );
    assert_eq!(created["uri"], MI_KEY);
    assert_eq!(created["serverKeyType"], "AzureKeyVault");
    assert_eq!(created["creationDate"], "2024-01-01T00:00:00+00:00");
    assert_eq!(
        sim.json(&format!("sql mi key create {ops} --kid {MI_KEY}")),
        created,
        "create is idempotent"
    );
    assert_eq!(
        sim.json(&format!("sql mi key list {ops} --query [].name")),
        json!([created["name"], "ServiceManaged"])
    );
    assert_eq!(
        sim.json(&format!("sql mi key show {ops} -k {MI_KEY}")),
        created
    );
    let set = sim.json(&format!(
        "sql mi tde-key set {ops} -t AzureKeyVault -k {MI_KEY}"
    ));
    assert_eq!(set["serverKeyName"], created["name"]);
    assert_eq!(set["autoRotationEnabled"], false);

    let other = "https://kv1.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef";
    let out = sim.az(&format!("sql mi key show {ops} -k {other}"));
    assert_eq!(
        failure(&out),
        fails(
            3,
            "ERROR: (ResourceNotFound) The requested resource of type 'Microsoft.Sql/managedInstances/keys' with name 'kv1_k_0123456789abcdef0123456789abcdef' was not found."
        )
    );
    let out = sim.az(&format!("sql mi key create {ops}"));
    assert_eq!(
        failure(&out),
        fails(2, "ERROR: the following arguments are required: --kid/-k")
    );
    let out = sim.az(&format!(
        "sql mi key create {ops} --kid https://example.com/keys/k/1"
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(first_line(&out).starts_with("ERROR: The provided uri is invalid."));
    let dumped = sim.dump();
    let mi = dumped["sqlManagedInstances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "sqlmi-ops-prod")
        .unwrap()
        .clone();
    assert_eq!(
        mi["keys"],
        json!([{"uri": MI_KEY, "autoRotationEnabled": false}])
    );
    assert_eq!(mi["protector"]["uri"], MI_KEY);
}

#[test]
fn worlds_without_managed_instances_load_and_dump_unchanged() {
    let world = json!({
        "subscriptions": [{"id": SUB, "name": "one"}],
        "sqlServers": [{"resourceGroup": "rg1", "name": "sql1"}]
    });
    let sim = Sim::new(&world);
    let dumped = sim.dump();
    assert!(dumped.get("sqlManagedInstances").is_none(), "{dumped}");
    assert_eq!(sim.json("sql mi list"), json!([]));
    let again = Sim::new(&dumped);
    assert_eq!(again.dump(), dumped);
}

#[test]
fn db_list_includes_master_and_protector_strings() {
    let sim = demo();
    let dbs = sim.json("sql db list -s sql-web-prod -g rg-web");
    let find = |name: &str| {
        dbs.as_array()
            .expect("list")
            .iter()
            .find(|d| d["name"] == name)
            .cloned()
            .expect("listed")
    };
    let master = find("master");
    assert_eq!(master["kind"], "v12.0,system");
    assert_eq!(master["sku"]["tier"], "System");
    let customers = sim.json("sql db show -n customers -s sql-web-prod -g rg-web");
    let protector = customers["encryptionProtector"]
        .as_str()
        .expect("a plain string");
    assert!(protector.starts_with("https://kv-web-prod.vault.azure.net/keys/"));
    assert_eq!(
        find("customers"),
        customers,
        "list and show print the same database"
    );
}

#[test]
fn db_tde_set_and_master_refusal() {
    let sim = demo();
    let db = "-d sessions -s sql-web-prod -g rg-web";
    assert_eq!(
        sim.json(&format!("sql db tde show {db}"))["state"],
        "Disabled"
    );
    let set = sim.json(&format!("sql db tde set {db} --status enabled"));
    assert_eq!(set["state"], "Enabled");
    assert_eq!(set["name"], "current");
    assert_eq!(
        sim.json(&format!("sql db tde show {db}"))["state"],
        "Enabled"
    );

    let master = "--database master --server sql-web-prod --resource-group rg-web";
    let out = sim.az(&format!("sql db tde set {master} --status Disabled"));
    assert_eq!(out.status.code(), Some(1));
    assert!(first_line(&out).starts_with("ERROR: (OperationNotSupportedOnSystemDatabase)"));
    assert_eq!(
        sim.json(&format!("sql db tde show {master}"))["state"],
        "Enabled"
    );
}

#[test]
fn legacy_tde_field_prints_status() {
    let sim = demo();
    sim.settings("tdeField=status");
    let db = "-d web -s sql-web-prod -g rg-web";
    let shown = sim.json(&format!("sql db tde show {db}"));
    assert_eq!(shown["status"], "Enabled");
    assert_eq!(shown["location"], "eastus");
    assert_eq!(shown.get("state"), None);
    let set = sim.json(&format!("sql db tde set {db} --status Disabled"));
    assert_eq!(set["status"], "Disabled");
    assert_eq!(
        set["location"],
        Value::Null,
        "the 2014 PUT response had location null"
    );
}

// ---------------------------------------------------------------------------------------------
// Grammar, --query, --ids, errors
// ---------------------------------------------------------------------------------------------

#[test]
fn query_and_output_formats() {
    let sim = demo();
    let names = sim.json(
        "storage account list --query [?encryption.keySource=='Microsoft.Keyvault'].name -o json",
    );
    let expected = json!([
        "stopsbackup01",
        "staudit01",
        "stcustomer01",
        "sthrdocs01",
        "stpartner01",
        "stpayments01"
    ]);
    assert_eq!(names, expected, "in group, then name order");
    let legacy = "storage account show -n stlegacy01 -g rg-legacy -o tsv --query";
    let out = sim.az_args(&[words(legacy), vec!["{n: name, e: encryption, k: kind}"]].concat());
    assert_eq!(
        text(&out.stdout),
        "None\tStorage\tstlegacy01\n",
        "one row, values in key order"
    );
    let out = sim.az(&format!("{legacy} [name,kind]"));
    assert_eq!(
        text(&out.stdout),
        "stlegacy01\nStorage\n",
        "a list prints one row per item"
    );
    let out = sim.az("account show -o none");
    assert!(out.status.success() && out.stdout.is_empty());
    let out = sim.az("account show --query nosuchfield");
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "a null result prints nothing"
    );
    assert_eq!(sim.az("account show -o xml").status.code(), Some(2));
    let finance = sim.json_args(&[
        "account",
        "show",
        "--subscription",
        "Contoso Finance",
        "--query",
        "id",
    ]);
    assert_eq!(finance, "c4a9e613-8f27-4d5b-b0c1-9e3a7d5f2b64");
    let accounts = sim.json(
        "storage account list --subscription c4a9e613-8f27-4d5b-b0c1-9e3a7d5f2b64 --query [].name",
    );
    assert_eq!(accounts, json!(["stfinance02", "stledger02"]));
}

#[test]
fn ids_instead_of_names() {
    let sim = demo();
    let by_name = sim.json("storage account show -n staudit01 -g rg-audit");
    let id = by_name["id"].as_str().expect("id");
    assert_eq!(
        sim.json(&format!("storage account show --ids {id}")),
        by_name
    );
    let other = sim.json_args(&[
        "storage",
        "account",
        "show",
        "-n",
        "stledger02",
        "-g",
        "rg-ledger",
        "--subscription",
        "Contoso Finance",
    ]);
    let other_id = other["id"].as_str().expect("id");
    let both = sim.json(&format!(
        "storage account show --ids {id} {other_id} --query [].name"
    ));
    assert_eq!(
        both,
        json!(["staudit01", "stledger02"]),
        "each id carries its own subscription"
    );

    let db_id = sim.json("sql db show -n ledger -s sql-payments-prod -g rg-payments --query id");
    let tde_id = format!(
        "{}/transparentDataEncryption/current",
        db_id.as_str().expect("id")
    );
    let set = sim.json(&format!("sql db tde set --ids {tde_id} --status Enabled"));
    assert_eq!(set["state"], "Enabled");
    assert_eq!(set["id"], tde_id);
    let out = sim.az("storage account show --ids /subscriptions/x/resourceGroups/rg");
    assert_eq!(
        failure(&out),
        fails(1, "ERROR: (--name | --ids) are required")
    );
}

#[test]
fn parser_errors_as_azure_cli() {
    let sim = demo();
    let out = sim.az("storage acount list");
    assert_eq!(
        failure(&out),
        fails(
            2,
            "ERROR: 'acount' is misspelled or not recognized by the system."
        )
    );
    let out = sim.az("storage account show text_causing_parsing_error -n x -g y");
    assert_eq!(
        failure(&out),
        fails(
            2,
            "ERROR: unrecognized arguments: text_causing_parsing_error"
        )
    );
    let out = sim.az("sql db show -s sql-web-prod -g rg-web");
    assert_eq!(
        failure(&out),
        fails(1, "ERROR: (--name | --ids) are required")
    );
    let out = sim.az("sql server key create -s sql-web-prod");
    assert_eq!(
        failure(&out),
        fails(
            2,
            "ERROR: the following arguments are required: --resource-group/-g, --kid/-k"
        )
    );
    assert_eq!(
        sim.az("storage account show -n x -g y --query [?")
            .status
            .code(),
        Some(2)
    );
    let help = sim.az("sql db tde set --help");
    assert!(help.status.success() && text(&help.stdout).contains("--status [Required]"));
}

#[test]
fn not_found_errors_use_arm_wording_and_exit_3() {
    let sim = demo();
    let out = sim.az("storage account show -n nosuch -g rg-finance");
    assert_eq!(out.status.code(), Some(3));
    let msg = "The Resource 'Microsoft.Storage/storageAccounts/nosuch' under resource group 'rg-finance' was not found. \
               For more details please go to https://aka.ms/ARMResourceNotFoundFix";
    assert_eq!(
        text(&out.stderr),
        format!("ERROR: (ResourceNotFound) {msg}\nCode: ResourceNotFound\nMessage: {msg}\n")
    );
    let out = sim.az("storage account show -n stfinance01 -g fake_group");
    assert_eq!(
        failure(&out),
        fails(
            3,
            "ERROR: (ResourceGroupNotFound) Resource group 'fake_group' could not be found."
        )
    );
    let out = sim.az("sql db show -n nodb -s sql-web-prod -g rg-web");
    let sql = "ERROR: (ResourceNotFound) The requested resource of type 'Microsoft.Sql/servers/databases' with name 'nodb' was not found.";
    assert_eq!(failure(&out), fails(3, sql));
    let out = sim.az("sql server tde-key show -s nosrv -g rg-web");
    let parent = "ERROR: (ParentResourceNotFound) Can not perform requested operation on nested resource. Parent resource 'nosrv' not found.";
    assert_eq!(failure(&out), fails(3, parent));
    let out = sim.az("storage account list --subscription nope");
    assert_eq!(
        failure(&out),
        fails(
            1,
            "ERROR: Subscription 'nope' not found. Check the spelling and casing and try again."
        )
    );
    // Lookups are case-insensitive; printed names keep their case.
    assert_eq!(
        sim.json("storage account show -n STFINANCE01 -g RG-FINANCE --query name"),
        "stfinance01"
    );
}

/// `az group exists` prints the JSON boolean azure-cli 2.91 prints (`true` or `false`, exit 0
/// either way), whatever the case of the name, in the subscription the call names. A group
/// exists in azsim when a resource of the world is in it.
#[test]
fn group_exists_prints_a_json_boolean() {
    let sim = demo();
    let printed = |args: &[&str]| {
        let out = sim.az_args(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "az {args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), "", "az {args:?}");
        text(&out.stdout)
    };
    assert_eq!(printed(&words("group exists -n rg-web")), "true\n");
    assert_eq!(printed(&words("group exists --name=RG-WEB")), "true\n");
    assert_eq!(printed(&words("group exists -g rg-nosuch")), "false\n");
    assert_eq!(
        printed(&words("group exists --resource-group rg-web -o tsv")),
        "true\n",
        "knack prints a boolean row in lower case"
    );
    assert_eq!(printed(&words("group exists --name=-rg.ops(1)")), "true\n");
    // rg-finance-dev is in Contoso Finance, not in the default subscription.
    assert_eq!(printed(&words("group exists -n rg-finance-dev")), "false\n");
    assert_eq!(
        printed(&[
            "group",
            "exists",
            "-n",
            "rg-finance-dev",
            "--subscription",
            "Contoso Finance"
        ]),
        "true\n"
    );
    // A group holding no resource any more is gone from azsim's world.
    let mut world = sim.dump();
    let accounts = world["storageAccounts"].as_array_mut().unwrap();
    accounts.retain(|a| a["resourceGroup"] != "rg-audit");
    sim.load(&world);
    assert_eq!(printed(&words("group exists -n rg-audit")), "false\n");

    let out = sim.az("group exists");
    assert_eq!(
        failure(&out),
        fails(
            2,
            "ERROR: the following arguments are required: --name/-n/--resource-group/-g"
        )
    );
    let out = sim.az("group exists -n -rg.ops(1)");
    assert_eq!(
        failure(&out),
        fails(
            2,
            "ERROR: argument --name/-n/--resource-group/-g: expected one argument"
        )
    );
    let out = sim.az("group exists -n rg-web --subscription nope");
    assert_eq!(
        failure(&out),
        fails(
            1,
            "ERROR: Subscription 'nope' not found. Check the spelling and casing and try again."
        )
    );
    sim.settings("signedIn=false");
    let out = sim.az("group exists -n rg-web");
    assert_eq!(
        failure(&out),
        fails(1, "ERROR: Please run 'az login' to setup account.")
    );
}

#[test]
fn not_signed_in() {
    let sim = demo();
    sim.settings("signedIn=false");
    let out = sim.az("storage account list");
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (
            Some(1),
            "ERROR: Please run 'az login' to setup account.\n".into()
        )
    );
    assert_eq!(sim.az("account show").status.code(), Some(1));
    assert!(sim.az("version").status.success());
    let out = sim.az("account list");
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "[]\n".into())
    );
    assert_eq!(
        text(&out.stderr),
        "WARNING: Please run \"az login\" to access your accounts.\n"
    );
    assert_eq!(
        sim.az("storage account list --bogus").status.code(),
        Some(2),
        "the parser runs before the sign-in check"
    );
}

#[test]
fn world_must_be_set() {
    let sim = demo();
    let out = sim
        .az_cmd(&["account", "show"])
        .env_remove("AZSIM_WORLD")
        .output()
        .expect("run");
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(1), "ERROR: azsim: AZSIM_WORLD is not set\n".into())
    );
    assert!(!sim.log().exists(), "nothing touched");
    let missing = sim.dir().join("missing.db");
    let out = sim
        .az_cmd(&["account", "show"])
        .env("AZSIM_WORLD", &missing)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(!missing.exists(), "a missing world is never created");
}

// ---------------------------------------------------------------------------------------------
// Faults and latency
// ---------------------------------------------------------------------------------------------

fn demo_with_faults(faults: Value) -> Sim {
    let mut world = demo().dump();
    world["faults"] = faults;
    Sim::new(&world)
}

#[test]
fn error_fault_fires_times_and_matches_argv() {
    let error = json!({"code": "TooManyRequests", "message": "The request is being throttled.", "exitCode": 1});
    let sim = demo_with_faults(
        json!([{"command": "sql db tde show", "argvContains": "sessions", "times": 1, "error": error}]),
    );
    assert!(
        sim.az("sql db tde show -d web -s sql-web-prod -g rg-web")
            .status
            .success(),
        "argv does not match"
    );
    let sessions = "sql db tde show -d sessions -s sql-web-prod -g rg-web";
    let out = sim.az(sessions);
    assert_eq!(out.status.code(), Some(1));
    let throttled = "ERROR: (TooManyRequests) The request is being throttled.\n\
                     Code: TooManyRequests\nMessage: The request is being throttled.\n";
    assert_eq!(text(&out.stderr), throttled);
    assert!(sim.az(sessions).status.success(), "times: 1 is used up");
    assert_eq!(sim.dump()["faults"][0]["times"], 0);
}

#[test]
fn latency_faults_and_settings_delay_the_answer() {
    let sim = demo_with_faults(json!([{"command": "account", "latencyMs": 300}]));
    let start = Instant::now();
    assert!(sim.az("account show").status.success());
    assert!(start.elapsed() >= Duration::from_millis(300));
    sim.settings("latencyMs=250 jitterMs=20");
    let start = Instant::now();
    assert!(sim.az("version").status.success());
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[test]
fn hang_fault_blocks_until_killed() {
    let sim = demo_with_faults(json!([{"command": "storage account list", "hangSeconds": 60}]));
    let mut child = sim
        .command(sim.dir().join("az"))
        .args(words("storage account list"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().expect("poll").is_none(), "still hanging");
    child.kill().expect("kill");
    assert_eq!(child.wait().expect("wait").signal(), Some(9));
}

#[test]
fn malformed_fault_prints_broken_json_with_exit_0() {
    let sim = demo_with_faults(json!([{"command": "sql server list", "malformed": true}]));
    let out = sim.az("sql server list");
    assert!(out.status.success());
    assert!(!out.stdout.is_empty());
    assert!(serde_json::from_slice::<Value>(&out.stdout).is_err());
}

#[test]
fn crash_after_change_commits_then_dies() {
    let sim = demo_with_faults(
        json!([{"command": "sql db tde set", "times": 1, "crashAfterChange": true}]),
    );
    let db = "-d sessions -s sql-web-prod -g rg-web";
    let out = sim.az(&format!("sql db tde set {db} --status Enabled"));
    assert_eq!(
        (out.status.code(), out.status.signal()),
        (None, Some(9)),
        "killed like a 137 exit"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        sim.json(&format!("sql db tde show {db}"))["state"],
        "Enabled",
        "the change was made"
    );
}

// ---------------------------------------------------------------------------------------------
// Invocation log and parallel callers
// ---------------------------------------------------------------------------------------------

#[test]
fn invocation_log_records_every_call_before_it_runs() {
    let sim = demo();
    sim.az("storage account list --only-show-errors");
    sim.az(
        "storage account update -n stlogs01 -g rg-ops --encryption-key-source Microsoft.Storage",
    );
    sim.az("sql db tde set -d x --bogus");
    sim.az("nosuch command");
    let log = std::fs::read_to_string(sim.log()).expect("log");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let summary: Vec<(&str, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["argv"][0].as_str().expect("word"),
                l["mutating"].as_bool().expect("flag"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("storage", false),
            ("storage", true),
            ("sql", true),
            ("nosuch", false)
        ]
    );
    assert_eq!(
        lines[0]["argv"],
        json!(["storage", "account", "list", "--only-show-errors"])
    );
    assert!(
        lines
            .iter()
            .all(|l| l["ts"].as_f64().is_some_and(|t| t > 1.0e9))
    );
    assert_eq!(sim.calls("--mutating").lines().count(), 2);

    let custom = sim.dir().join("custom.jsonl");
    sim.az_cmd(&["version"])
        .env("AZSIM_LOG", &custom)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(custom)
            .expect("AZSIM_LOG")
            .lines()
            .count(),
        1
    );
    assert_eq!(
        std::fs::read_to_string(sim.log())
            .expect("log")
            .lines()
            .count(),
        4,
        "AZSIM_LOG replaces the default"
    );
}

#[test]
fn parallel_callers_change_atomically() {
    let sim = Sim::seeded("--fleet small --noncompliant-percent 100 --seed 7");
    let mut world = sim.dump();
    let error = json!({"code": "TooManyRequests", "message": "slow down"});
    world["faults"] = json!([{"command": "storage account update", "times": 5, "error": error}]);
    sim.load(&world);
    let targets = sim.json("storage account list --query [].[name,resourceGroup]");
    let targets: Vec<&Value> = targets.as_array().expect("list").iter().take(16).collect();
    assert_eq!(targets.len(), 16);
    let codes: Vec<Option<i32>> = std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| {
                let (name, rg) = (t[0].as_str().expect("name"), t[1].as_str().expect("group"));
                let line = format!("storage account update -n {name} -g {rg} --encryption-key-source Microsoft.Storage");
                let sim = &sim;
                s.spawn(move || sim.az(&line).status.code())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let count = |code: i32| codes.iter().filter(|c| **c == Some(code)).count();
    assert_eq!(
        (count(1), count(0)),
        (5, 11),
        "a counted fault fires exactly `times` times: {codes:?}"
    );
    let mmk = sim
        .json("storage account list --query length([?encryption.keySource=='Microsoft.Storage'])");
    assert_eq!(mmk, 11, "every successful update landed");
    let log = std::fs::read_to_string(sim.log()).expect("log");
    let mutating = log
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["mutating"] == true))
        .count();
    assert_eq!(mutating, 16);
}

// ---------------------------------------------------------------------------------------------
// Management: seed, dump, load
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_demo_covers_the_edge_cases() {
    let world = demo().dump();
    demo_storage_edge_cases(world["storageAccounts"].as_array().expect("accounts"));
    demo_sql_edge_cases(
        world["sqlServers"].as_array().expect("servers"),
        world["sqlDatabases"].as_array().expect("dbs"),
    );
    demo_database_key_edge_cases(world["sqlDatabases"].as_array().expect("dbs"));
    demo_scope_and_instance_edge_cases(&world);
}

/// Databases with their own key: each with a user-assigned identity and its keys (the
/// protector's among them, an older version too); one reached through an id spelling
/// `resourcegroups` in lower case, one with auto-rotation on, a versionless key and a federated
/// client id; one never set auto-rotation.
fn demo_database_key_edge_cases(dbs: &[Value]) {
    let own: Vec<&Value> = dbs
        .iter()
        .filter(|d| d["encryptionProtector"].is_string())
        .collect();
    assert!(own.len() >= 2);
    for d in &own {
        let keys = d["keys"].as_array().expect("keys");
        assert!(keys.contains(&d["encryptionProtector"]), "{}", d["name"]);
        assert!(keys.len() >= 2, "an older key kept: {}", d["name"]);
        assert_eq!(d["identity"]["type"], "UserAssigned");
    }
    let ids = |d: &Value| -> Vec<String> {
        d["identity"]["userAssignedIdentities"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert!(own.iter().any(|d| ids(d)[0].contains("/resourcegroups/")));
    assert!(
        own.iter()
            .any(|d| d.get("encryptionProtectorAutoRotation").is_none())
    );
    assert!(own.iter().any(|d| {
        d["encryptionProtectorAutoRotation"] == true
            && d["federatedClientId"].is_string()
            && d["encryptionProtector"]
                .as_str()
                .unwrap()
                .matches('/')
                .count()
                == 4
    }));
    let plain: Vec<&Value> = dbs
        .iter()
        .filter(|d| d["encryptionProtector"].is_null())
        .collect();
    assert!(
        plain
            .iter()
            .all(|d| d.get("keys").is_none() && d.get("identity").is_none())
    );
}

/// An MMK account whose only customer-key scope is alone on a later page, a disabled
/// customer-key scope, versioned and versionless scope keys, and a managed instance on a
/// customer key with auto-rotation.
fn demo_scope_and_instance_edge_cases(world: &Value) {
    let scopes = world["encryptionScopes"].as_array().expect("scopes");
    let kv = |s: &Value| s["source"] == "Microsoft.KeyVault";
    let mut logs: Vec<&Value> = scopes
        .iter()
        .filter(|s| s["account"] == "stlogs01")
        .collect();
    logs.sort_by_key(|s| s["name"].as_str().unwrap().to_string());
    assert!(logs.len() > 2);
    assert_eq!(logs.iter().filter(|s| kv(s)).count(), 1);
    assert!(
        kv(logs[logs.len() - 1]),
        "the customer-key scope is last by name"
    );
    assert!(scopes.iter().any(|s| kv(s) && s["state"] == "Disabled"));
    let slashes = |s: &Value| {
        s["keyVaultProperties"]["keyUri"]
            .as_str()
            .unwrap()
            .matches('/')
            .count()
    };
    assert!(scopes.iter().any(|s| kv(s) && slashes(s) == 5), "versioned");
    assert!(
        scopes.iter().any(|s| kv(s) && slashes(s) == 4),
        "versionless"
    );
    let accounts = world["storageAccounts"].as_array().unwrap();
    let mmk = accounts.iter().find(|a| a["name"] == "stlogs01").unwrap();
    assert!(mmk["encryption"]["keyVaultProperties"].is_null());
    let instances = world["sqlManagedInstances"].as_array().expect("instances");
    assert!(
        instances
            .iter()
            .any(|m| m["protector"]["serverKeyType"] == "AzureKeyVault"
                && m["protector"]["autoRotationEnabled"] == true)
    );
}

/// Every form of key source, key version and encryption identity the runbooks must read.
fn demo_storage_edge_cases(accounts: &[Value]) {
    let has =
        |pred: &dyn Fn(&Value, &Value) -> bool| accounts.iter().any(|a| pred(&a["encryption"], a));
    let keyvault = |e: &Value| e["keySource"] == "Microsoft.Keyvault";
    assert!(has(&|e, _| e["keySource"] == "Microsoft.Storage"));
    assert!(has(&|e, _| e["keySource"] == "microsoft.storage"));
    assert!(
        has(&|e, _| e.is_null()),
        "no encryption object (platform default)"
    );
    assert!(has(
        &|e, _| keyvault(e) && e["keyVaultProperties"]["keyVersion"] == ""
    ));
    assert!(has(
        &|e, _| keyvault(e) && e["keyVaultProperties"]["keyVersion"].is_null()
    ));
    assert!(has(&|e, _| e["keyVaultProperties"]["keyVersion"]
        .as_str()
        .is_some_and(|v| v.len() == 32)));
    assert!(has(&|e, _| {
        e["encryptionIdentity"]["encryptionUserAssignedIdentity"].is_string()
    }));
    assert!(has(&|e, _| {
        e["encryptionIdentity"]["encryptionFederatedIdentityClientId"].is_string()
    }));
    assert!(has(&|e, _| e["keySource"] == "microsoft.keyvault"));
    assert!(has(&|_, a| a["resourceGroup"]
        .as_str()
        .is_some_and(|g| g.starts_with('-'))));
    assert!(has(&|_, a| a["tags"]["data-classification"] == "critical"));
    let real_vault = |e: &Value| {
        e["keyVaultProperties"]["keyVaultUri"]
            .as_str()
            .is_some_and(|u| u.ends_with(".vault.azure.net/"))
    };
    assert!(
        accounts.iter().all(
            |a| a["encryption"]["keyVaultProperties"].is_null() || real_vault(&a["encryption"])
        )
    );
    let subs: std::collections::HashSet<&str> = accounts
        .iter()
        .map(|a| a["subscription"].as_str().expect("sub"))
        .collect();
    assert_eq!(subs.len(), 2);
}

/// A service-managed protector and Key Vault ones with and without rotation, a master on every
/// server, and databases with TDE on, off and on a database-level key.
fn demo_sql_edge_cases(servers: &[Value], dbs: &[Value]) {
    let protector = |s: &Value| s["protector"].clone();
    let akv = |s: &Value, rotate: bool| {
        protector(s)["serverKeyType"] == "AzureKeyVault"
            && protector(s)["autoRotationEnabled"] == rotate
    };
    assert!(
        servers
            .iter()
            .any(|s| protector(s)["serverKeyType"] == "ServiceManaged")
    );
    assert!(servers.iter().any(|s| akv(s, true)) && servers.iter().any(|s| akv(s, false)));
    for s in servers.iter().filter(|s| akv(s, true) || akv(s, false)) {
        assert!(
            s["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .any(|k| k["uri"] == protector(s)["uri"]),
            "protector key registered"
        );
    }
    for s in servers {
        let is_master = |d: &&Value| d["server"] == s["name"] && d["name"] == "master";
        let master = dbs.iter().find(is_master).expect("master on every server");
        assert_eq!(
            (&master["kind"], &master["sku"]["tier"]),
            (&json!("v12.0,system"), &json!("System"))
        );
    }
    assert!(dbs.iter().any(|d| d["name"] != "master"
        && d["tdeState"] == "Enabled"
        && d["encryptionProtector"].is_null()));
    assert!(dbs.iter().any(|d| d["tdeState"] == "Disabled"));
    // Database-level keys on a service-managed server and on a Key Vault one.
    let hosts: Vec<Value> = dbs
        .iter()
        .filter(|d| d["encryptionProtector"].is_string())
        .map(|d| {
            assert_eq!(d["tdeState"], "Enabled");
            let host = servers
                .iter()
                .find(|s| s["name"] == d["server"])
                .expect("server");
            protector(host)["serverKeyType"].clone()
        })
        .collect();
    assert!(hosts.contains(&json!("ServiceManaged")) && hosts.contains(&json!("AzureKeyVault")));
}

#[test]
fn seeded_fleets_are_deterministic_and_sized() {
    let a = Sim::seeded("--fleet small --seed 42").dump();
    assert_eq!(a, Sim::seeded("--fleet small --seed 42").dump());
    assert_ne!(a, Sim::seeded("--fleet small --seed 43").dump());
    let len = |w: &Value, k: &str| w[k].as_array().expect("list").len();
    let total = len(&a, "storageAccounts") + len(&a, "sqlServers") + len(&a, "sqlDatabases");
    assert!(
        (40..=60).contains(&total),
        "small is about 50 resources: {total}"
    );

    let medium = Sim::seeded("--fleet medium --subscriptions 3").dump();
    let sizes = [
        "subscriptions",
        "storageAccounts",
        "sqlServers",
        "sqlDatabases",
    ]
    .map(|k| len(&medium, k));
    assert_eq!(sizes, [3, 1000, 50, 550]);
    let accounts = medium["storageAccounts"].as_array().expect("accounts");
    let cmk = accounts
        .iter()
        .filter(|a| a["encryption"]["keyVaultProperties"].is_object())
        .count();
    assert!((200..=400).contains(&cmk), "about 30% noncompliant: {cmk}");
    let masters = medium["sqlDatabases"]
        .as_array()
        .expect("dbs")
        .iter()
        .filter(|d| d["name"] == "master")
        .count();
    assert_eq!(masters, 50);
    fleet_keys_scopes_and_instances(&medium);
}

/// The medium fleet's databases with their own key each have an identity and keys, in every
/// state of auto-rotation; some accounts have scopes that page, some on Key Vault keys; some
/// managed instances are on customer keys with auto-rotation.
fn fleet_keys_scopes_and_instances(fleet: &Value) {
    let own: Vec<&Value> = fleet["sqlDatabases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["encryptionProtector"].is_string())
        .collect();
    assert!(!own.is_empty());
    assert!(own.iter().all(|d| {
        d["identity"]["type"] == "UserAssigned"
            && d["keys"]
                .as_array()
                .unwrap()
                .contains(&d["encryptionProtector"])
    }));
    for state in [json!(true), json!(false), Value::Null] {
        let rotation = |d: &Value| {
            d.get("encryptionProtectorAutoRotation")
                .cloned()
                .unwrap_or(Value::Null)
        };
        assert!(own.iter().any(|d| rotation(d) == state), "{state}");
    }
    let scopes = fleet["encryptionScopes"].as_array().unwrap();
    let mut per_account = std::collections::HashMap::new();
    for s in scopes {
        *per_account
            .entry(s["account"].as_str().unwrap())
            .or_insert(0) += 1;
    }
    assert!(per_account.values().any(|n| *n > 2), "some lists page");
    assert!(scopes.iter().any(|s| s["source"] == "Microsoft.KeyVault"));
    let instances = fleet["sqlManagedInstances"].as_array().unwrap();
    assert_eq!(instances.len(), 10);
    assert!(
        instances
            .iter()
            .any(|m| m["protector"]["autoRotationEnabled"] == true)
    );
}

#[test]
fn dump_load_round_trip_and_management_help() {
    let sim = demo();
    let first = sim.azsim("dump").output().expect("dump").stdout;
    sim.azsim("load -")
        .write_stdin(first.clone())
        .assert()
        .success();
    assert_eq!(
        sim.azsim("dump").output().expect("dump").stdout,
        first,
        "dump is canonical"
    );
    for sub in ["load", "dump", "seed", "settings", "calls"] {
        sim.azsim(&format!("{sub} --help")).assert().success();
    }
    let out = sim
        .azsim("load -")
        .write_stdin(r#"{"storageAcounts": []}"#)
        .output()
        .expect("load");
    assert_eq!(out.status.code(), Some(1), "typos in a world are rejected");
    let via_azsim = sim
        .azsim("az account show --query name")
        .output()
        .expect("azsim az");
    assert_eq!(text(&via_azsim.stdout), "\"Contoso Production\"\n");
}

// ---------------------------------------------------------------------------------------------
// Encryption scopes (stfinance01 in the demo fleet has five; the default page size is 2)
// ---------------------------------------------------------------------------------------------

const SCOPES: &[&str] = &["storage", "account", "encryption-scope"];

fn scope_args<'a>(verb: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args: Vec<&str> = SCOPES.to_vec();
    args.push(verb);
    args.extend(["--account-name", "stfinance01", "-g", "rg-finance"]);
    args.extend(rest);
    args
}

/// The names on a printed page and the nextMarker item at its end, if any.
fn scope_page(page: &Value) -> (Vec<String>, Option<String>) {
    let items = page.as_array().expect("a list");
    let mut names = Vec::new();
    let mut marker = None;
    for (i, item) in items.iter().enumerate() {
        if let Some(m) = item.get("nextMarker") {
            assert_eq!(i, items.len() - 1, "nextMarker is the last item");
            assert_eq!(item.as_object().unwrap().len(), 1, "{item}");
            marker = Some(m.as_str().unwrap().to_string());
        } else {
            names.push(item["name"].as_str().unwrap().to_string());
        }
    }
    (names, marker)
}

#[test]
fn encryption_scope_list_pages_with_a_next_marker() {
    let sim = Sim::seeded("--fleet demo");
    let mut names = Vec::new();
    let mut pages = 0;
    let mut marker: Option<String> = None;
    loop {
        let page = match &marker {
            None => sim.json_args(&scope_args("list", &[])),
            Some(m) => sim.json_args(&scope_args("list", &["--marker", m])),
        };
        pages += 1;
        let (page_names, next) = scope_page(&page);
        assert!(page_names.len() <= 2);
        names.extend(page_names);
        match next {
            Some(m) => {
                assert!(
                    m.starts_with("https://management.azure.com/subscriptions/7d2f8a41-3c6b-4e19-9a5d-1b0e6f4c2a87/resourceGroups/rg-finance/providers/Microsoft.Storage/storageAccounts/stfinance01/encryptionScopes?api-version=2025-08-01&$skipToken="),
                    "{m}"
                );
                marker = Some(m);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        [
            "archive",
            "customer-data",
            "infra-double",
            "platform",
            "reports"
        ]
    );

    // --include and --maxpagesize travel in the marker; the marker's own values apply.
    let first = sim.json_args(&scope_args(
        "list",
        &["--include", "enabled", "--maxpagesize", "3"],
    ));
    let (names, marker) = scope_page(&first);
    assert_eq!(names, ["customer-data", "infra-double", "platform"]);
    let marker = marker.expect("a fourth enabled scope");
    assert!(
        marker.contains("$maxpagesize=3&$include=Enabled&$skipToken=reports"),
        "{marker}"
    );
    let rest = sim.json_args(&scope_args(
        "list",
        &["--marker", &marker, "--maxpagesize", "1"],
    ));
    assert_eq!(scope_page(&rest), (vec!["reports".to_string()], None));

    let disabled = sim.json_args(&scope_args("list", &["--include", "Disabled"]));
    assert_eq!(scope_page(&disabled), (vec!["archive".to_string()], None));
    let filtered = sim.json_args(&scope_args("list", &["--filter", "startswith(name, 'p')"]));
    assert_eq!(scope_page(&filtered), (vec!["platform".to_string()], None));

    // A list item of a Key Vault scope carries only keyUri, as the provider's list answers.
    let kv = &first[0]["keyVaultProperties"];
    assert_eq!(
        kv,
        &json!({"currentVersionedKeyIdentifier": null, "keyUri": "https://kv-payments-prod.vault.azure.net/keys/scope-cmk", "lastKeyRotationTimestamp": null})
    );
    assert_eq!(first[1]["keyVaultProperties"], Value::Null);

    // A bigger world page size: one page, no marker.
    sim.settings("encryptionScopePageSize=10");
    let all = sim.json_args(&scope_args("list", &[]));
    assert_eq!(scope_page(&all).0.len(), 5);
    assert_eq!(scope_page(&all).1, None);
}

#[test]
fn encryption_scope_show_in_az_shape() {
    let sim = Sim::seeded("--fleet demo");
    let kv = sim.json_args(&scope_args("show", &["-n", "customer-data"]));
    assert_eq!(
        kv,
        json!({
            "creationTime": "2024-02-01T09:00:00+00:00",
            "id": "/subscriptions/7d2f8a41-3c6b-4e19-9a5d-1b0e6f4c2a87/resourceGroups/rg-finance/providers/Microsoft.Storage/storageAccounts/stfinance01/encryptionScopes/customer-data",
            "keyVaultProperties": {
                "currentVersionedKeyIdentifier": kv["keyVaultProperties"]["currentVersionedKeyIdentifier"],
                "keyUri": "https://kv-payments-prod.vault.azure.net/keys/scope-cmk",
                "lastKeyRotationTimestamp": "2024-02-01T09:00:00+00:00"
            },
            "lastModifiedTime": "2024-02-01T09:00:00+00:00",
            "name": "customer-data",
            "requireInfrastructureEncryption": null,
            "resourceGroup": "rg-finance",
            "source": "Microsoft.KeyVault",
            "state": "Enabled",
            "systemData": null,
            "type": "Microsoft.Storage/storageAccounts/encryptionScopes"
        })
    );
    let current = kv["keyVaultProperties"]["currentVersionedKeyIdentifier"]
        .as_str()
        .unwrap();
    assert!(current.starts_with("https://kv-payments-prod.vault.azure.net/keys/scope-cmk/"));
    let mmk = sim.json_args(&scope_args("show", &["-n", "infra-double"]));
    assert_eq!(mmk["keyVaultProperties"], Value::Null);
    assert_eq!(mmk["requireInfrastructureEncryption"], true);
    // Without -g, the account's group is looked up by name (azure-cli's process_resource_group).
    let no_group = sim.json_args(&[
        "storage",
        "account",
        "encryption-scope",
        "show",
        "--account-name",
        "stfinance01",
        "-n",
        "platform",
    ]);
    assert_eq!(no_group["source"], "Microsoft.Storage");
    let missing = sim.az_args(&scope_args("show", &["-n", "nope"]));
    assert_eq!(
        failure(&missing),
        fails(
            3,
            "ERROR: (ResourceNotFound) The Resource 'Microsoft.Storage/storageAccounts/encryptionScopes/stfinance01/nope' under resource group 'rg-finance' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        )
    );
    let no_account = sim.az("storage account encryption-scope show --account-name nosuch -n x");
    assert_eq!(
        failure(&no_account),
        fails(2, "ERROR: Storage account 'nosuch' not found.")
    );
}

#[test]
fn encryption_scope_update_both_ways() {
    let sim = Sim::seeded("--fleet demo");
    let mmk = sim.json_args(&scope_args(
        "update",
        &["-n", "customer-data", "--key-source", "Microsoft.Storage"],
    ));
    assert_eq!(
        (&mmk["source"], &mmk["keyVaultProperties"]),
        (&json!("Microsoft.Storage"), &Value::Null),
        "switching to Microsoft.Storage clears the Key Vault properties"
    );
    assert_ne!(mmk["lastModifiedTime"], "2024-02-01T09:00:00+00:00");
    let shown = sim.json_args(&scope_args("show", &["-n", "customer-data"]));
    assert_eq!(shown["keyVaultProperties"], Value::Null);

    let pinned = "https://kv-x.vault.azure.net/keys/k1/0123456789abcdef0123456789abcdef";
    let cmk = sim.json_args(&scope_args(
        "update",
        &[
            "-n",
            "customer-data",
            "-s",
            "microsoft.keyvault",
            "-u",
            pinned,
        ],
    ));
    assert_eq!(cmk["source"], "Microsoft.KeyVault");
    assert_eq!(cmk["keyVaultProperties"]["keyUri"], pinned);
    assert_eq!(
        cmk["keyVaultProperties"]["currentVersionedKeyIdentifier"],
        pinned
    );
    assert_eq!(
        cmk["keyVaultProperties"]["lastKeyRotationTimestamp"],
        cmk["lastModifiedTime"]
    );

    let disabled = sim.json_args(&scope_args(
        "update",
        &["-n", "customer-data", "--state", "Disabled"],
    ));
    assert_eq!(disabled["state"], "Disabled");
    assert_eq!(
        disabled["keyVaultProperties"]["keyUri"], pinned,
        "state alone keeps the key"
    );

    // az's validator (a CLIError: exit 1), with the enum member as Python 3.11+ formats it.
    let no_uri = sim.az_args(&scope_args(
        "update",
        &["-n", "platform", "-s", "Microsoft.KeyVault"],
    ));
    assert_eq!(
        failure(&no_uri),
        fails(
            1,
            "ERROR: usage error: Please specify --key-uri when using EncryptionScopeSource.MICROSOFT_KEY_VAULT as key source."
        )
    );
    let uri_only = sim.az_args(&scope_args("update", &["-n", "platform", "-u", pinned]));
    assert_eq!(
        failure(&uri_only),
        fails(
            1,
            "ERROR: usage error: Specify `--key-source=EncryptionScopeSource.MICROSOFT_KEY_VAULT` and --key-uri to configure key vault properties."
        )
    );
    let bad_state = sim.az_args(&scope_args("update", &["-n", "platform", "--state", "Off"]));
    assert_eq!(bad_state.status.code(), Some(2));
    assert!(
        first_line(&bad_state).contains(
            "'Off' is not a valid value for '--state'. Allowed values: Disabled, Enabled."
        )
    );
    let calls = sim.calls("--mutating");
    assert_eq!(
        calls
            .lines()
            .filter(|l| l.contains("customer-data"))
            .count(),
        3,
        "{calls}"
    );
}

#[test]
fn encryption_scope_create_and_list_validation() {
    let sim = Sim::seeded("--fleet demo");
    let created = sim.json_args(&scope_args("create", &["-n", "newscope", "-i"]));
    assert_eq!(created["source"], "Microsoft.Storage");
    assert_eq!(created["requireInfrastructureEncryption"], true);
    assert_eq!(
        created["keyVaultProperties"],
        json!({"currentVersionedKeyIdentifier": null, "keyUri": null, "lastKeyRotationTimestamp": null}),
        "a PUT answers keyVaultProperties {{}}"
    );
    let shown = sim.json_args(&scope_args("show", &["-n", "newscope"]));
    assert_eq!(shown["keyVaultProperties"], Value::Null);
    let uri_default_source = sim.az_args(&scope_args(
        "create",
        &["-n", "x", "-u", "https://v.vault.azure.net/keys/k"],
    ));
    assert_eq!(uri_default_source.status.code(), Some(1));
    let bad_size = sim.az_args(&scope_args("list", &["--maxpagesize", "x"]));
    assert_eq!(
        failure(&bad_size),
        fails(2, "ERROR: argument --maxpagesize: invalid int value: 'x'")
    );
    let bad_include = sim.az_args(&scope_args("list", &["--include", "bogus"]));
    assert_eq!(
        failure(&bad_include),
        fails(
            2,
            "ERROR: az storage account encryption-scope list: 'bogus' is not a valid value for '--include'. Allowed values: All, Enabled, Disabled."
        )
    );
    let zero = sim.az_args(&scope_args("list", &["--maxpagesize", "0"]));
    assert_eq!(zero.status.code(), Some(1));
    let names = scope_page(&sim.json_args(&scope_args("list", &["--maxpagesize", "10"]))).0;
    assert_eq!(names.len(), 6);
    // The world dumps the scopes; a world without any dumps no encryptionScopes key.
    let world = sim.dump();
    let on_account = |w: &Value| {
        w["encryptionScopes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["account"] == "stfinance01")
            .count()
    };
    assert_eq!(on_account(&world), 6);
    let plain = Sim::new(&json!({"subscriptions": [{"id": SUB, "name": "one"}]}));
    assert!(plain.dump().get("encryptionScopes").is_none());
}
