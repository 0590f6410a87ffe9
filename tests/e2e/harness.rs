//! A private Azure world per test: azsim on PATH as `az`, its own world file, invocation log, az
//! configuration directory, home, state directory and working directory, so tests never touch a
//! real subscription, the user's files or each other.

use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tempfile::TempDir;

pub const SUB_A: &str = "00000000-0000-0000-0000-00000000aaaa";
pub const SUB_B: &str = "00000000-0000-0000-0000-00000000cccc";
pub const TENANT: &str = "00000000-0000-0000-0000-00000000bbbb";

/// The azsim binary the tests put on PATH as `az`.
///
/// azsim is a package of its own, so Cargo gives azbook's tests no `CARGO_BIN_EXE_azsim`, and an
/// artifact dependency is not stable Cargo. The tests therefore ask the Cargo that is running
/// them to build it (`cargo build --workspace --bin azsim`: the same feature set as `cargo test
/// --workspace`, so after that command it is a no-op of a fraction of a second) and take the
/// executable's path from Cargo's own JSON messages, which hold for any profile, target or
/// `CARGO_TARGET_DIR`. It is built once per test process; a stale azsim can never be tested
/// against. `AZBOOK_TEST_AZSIM` names a prebuilt one instead (for a test binary run without Cargo).
fn azsim_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("AZBOOK_TEST_AZSIM") {
            return PathBuf::from(path);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--workspace",
                "--bin",
                "azsim",
                "--message-format=json",
            ])
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .stderr(std::process::Stdio::inherit());
        // What Cargo set for this test process only: build scripts that watch these (ring's
        // watches CARGO_MANIFEST_DIR) would otherwise rebuild on every test run.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_BIN_EXE_")
                || matches!(
                    name.as_ref(),
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "CARGO_RUSTC_CURRENT_DIR"
                        | "OUT_DIR"
                )
            {
                cargo.env_remove(name.as_ref());
            }
        }
        let out = cargo.output().expect("run cargo to build azsim");
        assert!(out.status.success(), "cargo build --bin azsim failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "azsim")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no azsim executable")
    })
}

/// One test's private directory: the simulated world and its invocation log, a `bin` directory
/// put first on PATH (azsim as `az` in it), a home, a state directory, an az configuration
/// directory, and the working directory azbook runs in (the directory itself, so its default
/// `.azbook` state directory and `azbook.toml` are there too).
pub struct Sim {
    pub dir: TempDir,
    azure: bool,
}

impl Sim {
    /// A private Azure world holding `world`, with azsim on PATH as `az`.
    pub fn new(world: &Value) -> Sim {
        let mut sim = Sim::without_azure();
        std::os::unix::fs::symlink(azsim_bin(), sim.bin_dir().join("az")).unwrap();
        sim.azure = true;
        sim.load(world);
        sim
    }

    /// The same private directories with no `az` at all (PATH is only the empty `bin`
    /// directory), for commands that never reach Azure.
    pub fn without_azure() -> Sim {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["bin", "home", "xdg-state", "azure-config"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Sim { dir, azure: false }
    }

    fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn world_path(&self) -> PathBuf {
        self.dir.path().join("world.db")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("calls.jsonl")
    }

    fn path_env(&self) -> String {
        if !self.azure {
            return self.bin_dir().display().to_string();
        }
        format!(
            "{}:{}",
            self.bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    fn azsim(&self) -> Command {
        let mut cmd = Command::new(azsim_bin());
        cmd.env("AZSIM_WORLD", self.world_path())
            .env("AZSIM_LOG", self.log_path());
        cmd
    }

    /// Replaces the simulated world with `world` (`azsim load -`).
    pub fn load(&self, world: &Value) {
        self.azsim()
            .args(["load", "-"])
            .write_stdin(serde_json::to_vec(world).unwrap())
            .assert()
            .success();
    }

    /// The simulated world as it is now (`azsim dump`).
    pub fn dump(&self) -> Value {
        let out = self.azsim().arg("dump").output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// azbook in this test's directories: azsim as `az` on PATH, its own home, state and az
    /// configuration directories, this directory as its working directory, and no inherited
    /// AZBOOK_* settings.
    fn azbook_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_azbook"));
        cmd.env("PATH", self.path_env())
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_STATE_HOME", self.dir.path().join("xdg-state"))
            .env("AZURE_CONFIG_DIR", self.dir.path().join("azure-config"))
            .env("AZSIM_WORLD", self.world_path())
            .env("AZSIM_LOG", self.log_path())
            .env_remove("AZBOOK_AZ")
            .env_remove("AZBOOK_STATE_DIR")
            .env_remove("AZBOOK_WAIVERS")
            .current_dir(self.dir.path());
        cmd
    }

    /// azbook as a plain process (to run in the background or kill), its output discarded.
    pub fn azbook_process(&self) -> std::process::Command {
        let mut cmd = self.azbook_std();
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    }

    /// azbook with fast retries and no colour.
    pub fn azbook(&self) -> Command {
        let mut cmd = Command::from_std(self.azbook_std());
        cmd.env("NO_COLOR", "1").args(["--retry-delay", "0.01"]);
        cmd
    }

    /// Runs azbook with `args`, requires exit code `code` (showing its stderr otherwise) and
    /// returns what it printed on stdout, parsed as JSON.
    pub fn azbook_json(&self, args: &[&str], code: i32) -> Value {
        let out = self.azbook().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "azbook {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_out(&out)
    }

    /// Every line of azsim's invocation log so far.
    fn log(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("log line is JSON"))
            .collect()
    }

    /// Every az invocation so far, as azsim logged them (argv without the leading `az`).
    pub fn calls(&self) -> Vec<Vec<String>> {
        self.log()
            .iter()
            .map(|v| {
                v["argv"]
                    .as_array()
                    .expect("argv")
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    }

    /// Waits (up to 30 s) until azsim has logged a call whose argv starts with `prefix`: a
    /// background azbook has reached that step.
    pub fn wait_for_call(&self, prefix: &str) {
        self.wait_for_call_after(0, prefix);
    }

    /// As [`Sim::wait_for_call`], counting only the calls after the first `seen` logged.
    pub fn wait_for_call_after(&self, seen: usize, prefix: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self
            .calls()
            .iter()
            .skip(seen)
            .any(|c| c.join(" ").starts_with(prefix))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no call `{prefix}...` within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn calls_starting(&self, words: &[&str]) -> Vec<Vec<String>> {
        self.calls()
            .into_iter()
            .filter(|c| c.len() >= words.len() && c[..words.len()] == *words)
            .collect()
    }

    /// Calls that changed something, as azsim logged them.
    pub fn mutating_calls(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|v| v["mutating"] == true)
            .collect()
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

pub fn uai(sub: &str) -> String {
    format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai-cmk",
        rg_id(sub, "rg-identity")
    )
}

pub fn cmk(vault: &str, key: &str, version: Value) -> Value {
    // Azure resolves a versionless key to its current version and prints it here.
    let current = version
        .as_str()
        .filter(|v| !v.is_empty())
        .unwrap_or("5f4e3d2c1b0a99887766554433221100");
    json!({
        "keySource": "Microsoft.Keyvault",
        "keyVaultProperties": {
            "keyVaultUri": format!("https://{vault}.vault.azure.net/"),
            "keyName": key,
            "keyVersion": version,
            "currentVersionedKeyIdentifier": format!("https://{vault}.vault.azure.net/keys/{key}/{current}"),
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

/// The results of `azbook test --output json`, as resource (lower-cased) -> result.
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

/// The fields the MMK control reads or restores, per resource: what apply then backout must
/// leave exactly as they were.
pub fn essentials(world: &Value) -> Value {
    let pick = |v: &Value, paths: &[&str]| {
        let mut out = serde_json::Map::new();
        for p in paths {
            let mut cur = v;
            for seg in p.split('.') {
                cur = cur.get(seg).unwrap_or(&Value::Null);
            }
            out.insert(p.to_string(), cur.clone());
        }
        Value::Object(out)
    };
    // Enum values compare case-insensitively (ARCHITECTURE.md, "Equality rules"): az normalises the casing of an
    // enum argument, so a key source Azure once stored as `microsoft.keyvault` comes back as
    // `Microsoft.Keyvault`, the same value to the service.
    let lower = |mut v: Value, key: &str| {
        if let Some(s) = v[key].as_str() {
            v[key] = json!(s.to_lowercase());
        }
        v
    };
    let mut out = serde_json::Map::new();
    for a in world["storageAccounts"].as_array().unwrap() {
        out.insert(
            format!("storage {} {}", a["resourceGroup"], a["name"]),
            lower(
                pick(
                    a,
                    &[
                        "encryption.keySource",
                        "encryption.keyVaultProperties.keyVaultUri",
                        "encryption.keyVaultProperties.keyName",
                        "encryption.keyVaultProperties.keyVersion",
                        "encryption.encryptionIdentity.encryptionUserAssignedIdentity",
                        "encryption.encryptionIdentity.encryptionFederatedIdentityClientId",
                        "identity",
                    ],
                ),
                "encryption.keySource",
            ),
        );
    }
    for s in world["sqlServers"].as_array().unwrap() {
        let mut keys: Vec<String> = s["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["uri"].as_str().unwrap().to_lowercase())
            .collect();
        keys.sort();
        let mut v = pick(
            s,
            &[
                "protector.serverKeyType",
                "protector.uri",
                "protector.autoRotationEnabled",
            ],
        );
        v["keys"] = json!(keys);
        out.insert(format!("server {}", s["name"]), v);
    }
    for d in world["sqlDatabases"].as_array().unwrap() {
        out.insert(
            format!("db {} {}", d["server"], d["name"]),
            pick(
                d,
                &[
                    "tdeState",
                    "encryptionProtector",
                    "encryptionProtectorAutoRotation",
                    "keys",
                    "identity",
                    "federatedClientId",
                ],
            ),
        );
    }
    let none = Vec::new();
    for s in world["encryptionScopes"].as_array().unwrap_or(&none) {
        out.insert(
            format!("scope {} {}", s["account"], s["name"]),
            pick(s, &["source", "state", "keyVaultProperties.keyUri"]),
        );
    }
    for m in world["sqlManagedInstances"].as_array().unwrap_or(&none) {
        out.insert(
            format!("instance {}", m["name"]),
            pick(
                m,
                &[
                    "protector.serverKeyType",
                    "protector.uri",
                    "protector.autoRotationEnabled",
                    "keys",
                ],
            ),
        );
    }
    Value::Object(out)
}

/// The status of the change to `resource` in a plan, apply or backout report: `resource` is its
/// ARM id (in any case) or just its name.
pub fn change_status<'a>(report: &'a Value, resource: &str) -> &'a str {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            let id = c["resource"].as_str().unwrap();
            id.eq_ignore_ascii_case(resource) || id.ends_with(&format!("/{resource}"))
        })
        .unwrap_or_else(|| panic!("no change for {resource} in {report}"))["status"]
        .as_str()
        .unwrap()
}

/// A command's stdout as JSON, or a failure that shows its stderr.
pub fn json_out(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
