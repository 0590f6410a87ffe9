//! Database-level customer keys: read once more only where a database has one, reverted to the
//! server's key, and restored field by field with one `az sql db update`.

use crate::harness::*;
use serde_json::{Value, json};

const OLD_KEY: &str = "https://kv-db.vault.azure.net/keys/db-key/00000000000000000000000000000001";
const DB_UAI: &str = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourcegroups/rg-identity/providers/Microsoft.ManagedIdentity/userAssignedIdentities/db-uai";

/// The edge world with a second database on its own key: a user-assigned identity, two keys
/// (the protector and an older one backups still need), auto-rotation and a federated client.
fn key_world() -> Value {
    let mut world = edge_world();
    world["sqlDatabases"].as_array_mut().unwrap().push(json!({
        "subscription": SUB_A, "resourceGroup": "rg-sql", "server": "sql-sm", "name": "db-uai",
        "encryptionProtector": DB_KEY_URI, "tdeState": "Enabled",
        "encryptionProtectorAutoRotation": true,
        "keys": [DB_KEY_URI, OLD_KEY],
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {
            DB_UAI: {"clientId": "11111111-0000-0000-0000-000000000001",
                     "principalId": "11111111-0000-0000-0000-000000000002"}}},
        "federatedClientId": "22222222-0000-0000-0000-000000000003"
    }));
    world
}

fn database<'w>(world: &'w Value, name: &str) -> &'w Value {
    world["sqlDatabases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["server"] == "sql-sm" && d["name"] == name)
        .unwrap()
}

/// What backout must give back of a database's key setup.
fn key_setup(world: &Value, name: &str) -> Value {
    let db = database(world, name);
    let mut keys: Vec<String> = db["keys"]
        .as_array()
        .map(|k| {
            k.iter()
                .map(|u| u.as_str().unwrap().to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    json!({
        "encryptionProtector": db["encryptionProtector"],
        "encryptionProtectorAutoRotation": db["encryptionProtectorAutoRotation"],
        "keys": keys,
        "identity": db["identity"],
        "federatedClientId": db["federatedClientId"],
        "tdeState": db["tdeState"],
    })
}

const PLAYBOOK: [&str; 2] = ["--playbook", "sql-database-tde-mmk"];

#[test]
fn only_a_database_with_its_own_key_is_read_again_and_its_setup_is_evidence() {
    let sim = Sim::new(&key_world());
    let out = sim
        .azbook()
        .args(["test", "--output", "json"])
        .args(PLAYBOOK)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let shows = sim.calls_starting(&["sql", "db", "show"]);
    let mut shown: Vec<&str> = shows
        .iter()
        .map(|argv| {
            assert!(argv.contains(&"--expand-keys=true".to_string()), "{argv:?}");
            argv.iter().find_map(|a| a.strip_prefix("--name=")).unwrap()
        })
        .collect();
    shown.sort();
    assert_eq!(shown, ["db-cmk", "db-uai"], "no extra call for the others");
    let results = results_by_resource(&out.stdout);
    let uai = &results[&db_id(SUB_A, "rg-sql", "sql-sm", "db-uai").to_lowercase()];
    assert_eq!(uai["status"], "noncompliant");
    assert_eq!(uai["evidence"]["target.encryptionProtector"], DB_KEY_URI);
    assert_eq!(
        uai["evidence"]["dbkey.encryptionProtectorAutoRotation"],
        true
    );
    assert!(uai["evidence"]["dbkey.identity.userAssignedIdentities"][DB_UAI].is_object());
    assert!(uai["evidence"]["dbkey.keys"][OLD_KEY].is_object());
}

#[test]
fn revert_then_backout_restores_every_key_field_exactly() {
    let sim = Sim::new(&key_world());
    let original = sim.dump();
    let plan = sim.azbook_json(&["plan", "--output", "json", PLAYBOOK[0], PLAYBOOK[1]], 0);
    let id = db_id(SUB_A, "rg-sql", "sql-sm", "db-uai");
    let change = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == id)
        .unwrap();
    assert_eq!(change["status"], "pending", "an az step, not a manual one");
    let restore: Vec<String> = serde_json::from_value(change["backout"][0].clone()).unwrap();
    assert_eq!(restore[..4], ["az", "sql", "db", "update"]);
    let keys_at = restore.iter().position(|a| a == "--keys").unwrap();
    let umi_at = restore
        .iter()
        .position(|a| a == "--user-assigned-identity-id")
        .unwrap();
    assert!(restore.contains(&"--assign-identity=true".to_string()));
    assert_eq!(restore[umi_at + 1], DB_UAI);
    assert!(restore[keys_at + 1..keys_at + 3].contains(&OLD_KEY.to_string()));

    let applied = sim.azbook_json(
        &[
            "apply",
            "--yes",
            "--output",
            "json",
            PLAYBOOK[0],
            PLAYBOOK[1],
        ],
        0,
    );
    assert_eq!(change_status(&applied, &id), "done");
    let reverted = sim.dump();
    assert_eq!(
        database(&reverted, "db-uai")["encryptionProtector"],
        Value::Null
    );
    assert_eq!(
        sim.calls_starting(&["sql", "db", "tde", "key", "revert"])
            .len(),
        2
    );

    let backout = sim.azbook_json(&["backout", "--yes", "--output", "json"], 0);
    assert_eq!(change_status(&backout, &id), "restored");
    let restored = sim.dump();
    for name in ["db-uai", "db-cmk", "db-off"] {
        assert_eq!(
            key_setup(&restored, name),
            key_setup(&original, name),
            "{name}"
        );
    }
}
