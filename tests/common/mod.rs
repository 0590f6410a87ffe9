//! A private Azure world per test: azsim on PATH as `az`, its own world file, invocation log and
//! az configuration directory, so tests never touch a real subscription or each other.

#![allow(dead_code)]

use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::PathBuf;
use tempfile::TempDir;

pub const SUB_A: &str = "00000000-0000-0000-0000-00000000aaaa";
pub const SUB_B: &str = "00000000-0000-0000-0000-00000000cccc";
pub const TENANT: &str = "00000000-0000-0000-0000-00000000bbbb";

pub struct Sim {
    pub dir: TempDir,
}

impl Sim {
    pub fn new(world: &Value) -> Sim {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(dir.path().join("azure-config")).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_azsim"), bin.join("az")).unwrap();
        let sim = Sim { dir };
        sim.azsim()
            .args(["load", "-"])
            .write_stdin(serde_json::to_vec(world).unwrap())
            .assert()
            .success();
        sim
    }

    pub fn world_path(&self) -> PathBuf {
        self.dir.path().join("world.db")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("calls.jsonl")
    }

    fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    pub fn azsim(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_azsim"));
        cmd.env("AZSIM_WORLD", self.world_path())
            .env("AZSIM_LOG", self.log_path());
        cmd
    }

    /// azbook with azsim as `az` on PATH, fast retries, no colour, no inherited AZBOOK_AZ.
    pub fn azbook(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_azbook"));
        cmd.env("PATH", self.path_env())
            .env("AZSIM_WORLD", self.world_path())
            .env("AZSIM_LOG", self.log_path())
            .env("AZURE_CONFIG_DIR", self.dir.path().join("azure-config"))
            .env_remove("AZBOOK_AZ")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .args(["--retry-delay", "0.01"]);
        cmd
    }

    /// Every az invocation so far, as azsim logged them (argv without the leading `az`).
    pub fn calls(&self) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("log line is JSON");
                v["argv"]
                    .as_array()
                    .expect("argv")
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    }

    pub fn calls_starting(&self, words: &[&str]) -> Vec<Vec<String>> {
        self.calls()
            .into_iter()
            .filter(|c| c.len() >= words.len() && c[..words.len()] == *words)
            .collect()
    }

    pub fn dump(&self) -> Value {
        let out = self.azsim().arg("dump").output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn rg_id(sub: &str, rg: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}")
}

pub fn storage_id(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Storage/storageAccounts/{name}",
        rg_id(sub, rg)
    )
}

pub fn server_id(sub: &str, rg: &str, name: &str) -> String {
    format!("{}/providers/Microsoft.Sql/servers/{name}", rg_id(sub, rg))
}

pub fn db_id(sub: &str, rg: &str, server: &str, name: &str) -> String {
    format!("{}/databases/{name}", server_id(sub, rg, server))
}

fn uai(sub: &str) -> String {
    format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai-cmk",
        rg_id(sub, "rg-identity")
    )
}

pub fn cmk(vault: &str, key: &str, version: Value) -> Value {
    json!({
        "keySource": "Microsoft.Keyvault",
        "keyVaultProperties": {
            "keyVaultUri": format!("https://{vault}.vault.azure.net/"),
            "keyName": key,
            "keyVersion": version,
        },
        "encryptionIdentity": null,
        "requireInfrastructureEncryption": false,
    })
}

pub fn mmk(key_source: &str) -> Value {
    json!({"keySource": key_source, "keyVaultProperties": null, "encryptionIdentity": null,
           "requireInfrastructureEncryption": false})
}

pub fn account(sub: &str, rg: &str, name: &str, encryption: Value, tags: Value) -> Value {
    json!({"subscription": sub, "resourceGroup": rg, "name": name, "encryption": encryption, "tags": tags})
}

pub const KEY_URI: &str =
    "https://kv-sql.vault.azure.net/keys/tde/0123456789abcdef0123456789abcdef";
pub const DB_KEY_URI: &str =
    "https://kv-db.vault.azure.net/keys/dbkey/fedcba9876543210fedcba9876543210";

/// A world with every edge case of the MMK control.
pub fn edge_world() -> Value {
    let mut uai_account = cmk("kv-finance", "st-key", json!(null));
    uai_account["encryptionIdentity"] = json!({
        "encryptionUserAssignedIdentity": uai(SUB_A),
        "encryptionFederatedIdentityClientId": null
    });
    let mut lower_kv = cmk("kv-finance", "st-key", json!(""));
    lower_kv["keySource"] = json!("microsoft.keyvault");
    json!({
        "tenantId": TENANT,
        "user": {"name": "ops@contoso.com", "type": "user"},
        "settings": {"signedIn": true, "tdeField": "state", "latencyMs": 0, "jitterMs": 0},
        "subscriptions": [
            {"id": SUB_A, "name": "Production", "state": "Enabled", "isDefault": true},
            {"id": SUB_B, "name": "Staging", "state": "Enabled", "isDefault": false}
        ],
        "storageAccounts": [
            account(SUB_A, "rg-data", "stmmk", mmk("Microsoft.Storage"), json!({"data-classification": "critical"})),
            account(SUB_A, "rg-data", "stlower", mmk("microsoft.storage"), json!({})),
            account(SUB_A, "rg-data", "stdefault", json!(null), json!({})),
            account(SUB_A, "rg-data", "stcmkempty", cmk("kv-finance", "st-key", json!("")), json!({"data-classification": "critical"})),
            account(SUB_A, "rg-data", "stcmknull", cmk("kv-finance", "st-key", json!(null)), json!({})),
            account(SUB_A, "rg-data", "stcmkpinned", cmk("kv-finance", "st-key", json!("0123456789abcdef0123456789abcdef")), json!({})),
            account(SUB_A, "rg-data", "stcmkuai", uai_account, json!({})),
            account(SUB_A, "rg-data", "stkvlower", lower_kv, json!({})),
            account(SUB_A, "-rg.ops(1)", "stdash", cmk("kv-ops", "k", json!("")), json!({})),
            account(SUB_B, "rg-stage", "ststage", cmk("kv-stage", "k", json!("")), json!({}))
        ],
        "sqlServers": [
            {"subscription": SUB_A, "resourceGroup": "rg-sql", "name": "sql-sm",
             "tags": {"data-classification": "critical"},
             "protector": {"serverKeyType": "ServiceManaged", "uri": null, "autoRotationEnabled": false},
             "keys": []},
            {"subscription": SUB_A, "resourceGroup": "rg-sql", "name": "sql-akv", "tags": null,
             "protector": {"serverKeyType": "AzureKeyVault", "uri": KEY_URI, "autoRotationEnabled": true},
             "keys": [{"uri": KEY_URI, "autoRotationEnabled": true}]}
        ],
        "sqlDatabases": [
            {"subscription": SUB_A, "resourceGroup": "rg-sql", "server": "sql-sm", "name": "master",
             "kind": "v12.0,system", "sku": {"name": "System", "tier": "System", "capacity": 0},
             "encryptionProtector": null, "tdeState": "Enabled"},
            {"subscription": SUB_A, "resourceGroup": "rg-sql", "server": "sql-sm", "name": "db-on",
             "encryptionProtector": null, "tdeState": "Enabled"},
            {"subscription": SUB_A, "resourceGroup": "rg-sql", "server": "sql-sm", "name": "db-off",
             "encryptionProtector": null, "tdeState": "Disabled"},
            {"subscription": SUB_A, "resourceGroup": "rg-sql", "server": "sql-sm", "name": "db-cmk",
             "encryptionProtector": DB_KEY_URI, "tdeState": "Enabled"},
            {"subscription": SUB_A, "resourceGroup": "rg-sql", "server": "sql-akv", "name": "master",
             "kind": "v12.0,system", "sku": {"name": "System", "tier": "System", "capacity": 0},
             "encryptionProtector": null, "tdeState": "Enabled"},
            {"subscription": SUB_A, "resourceGroup": "rg-sql", "server": "sql-akv", "name": "db-x",
             "tags": {"data-classification": "critical"},
             "encryptionProtector": null, "tdeState": "Enabled"}
        ],
        "faults": []
    })
}

/// The results of `azbook test --output json`, as (playbook, resource) -> result.
pub fn results_by_resource(stdout: &[u8]) -> std::collections::BTreeMap<String, Value> {
    let report: Value = serde_json::from_slice(stdout).expect("stdout is JSON");
    assert_eq!(report["schemaVersion"], 1);
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (r["resource"].as_str().unwrap().to_lowercase(), r.clone()))
        .collect()
}
