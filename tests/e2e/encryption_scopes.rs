//! Storage encryption scopes: every scope of every account, through every page of az's list,
//! changed and backed out exactly, reported under its account, and waived with it.

use crate::harness::*;
use serde_json::{Value, json};

const VERSIONLESS: &str = "https://kv-finance.vault.azure.net/keys/scope-key";
const PINNED: &str =
    "https://kv-finance.vault.azure.net/keys/scope-key/0123456789abcdef0123456789abcdef";

fn scope(account: &str, name: &str, key_uri: Option<&str>, state: &str) -> Value {
    let source = if key_uri.is_some() {
        "Microsoft.KeyVault"
    } else {
        "Microsoft.Storage"
    };
    json!({"subscription": SUB_A, "resourceGroup": "rg-data", "account": account, "name": name,
           "source": source, "state": state,
           "keyVaultProperties": key_uri.map(|u| json!({"keyUri": u}))})
}

/// The edge world with scopes on an account on Microsoft-managed keys: seven, so that az's list
/// pages (two a page) four times; among them a disabled Key Vault scope on a pinned key
/// version and an enabled one on a versionless key.
fn scope_world() -> Value {
    let mut world = edge_world();
    world["settings"]["encryptionScopePageSize"] = json!(2);
    let mut scopes: Vec<Value> = ["s1", "s2", "s3", "s4", "s5"]
        .iter()
        .map(|n| scope("stmmk", n, None, "Enabled"))
        .collect();
    scopes.push(scope("stmmk", "zz-pinned-off", Some(PINNED), "Disabled"));
    scopes.push(scope(
        "stmmk",
        "zz-versionless",
        Some(VERSIONLESS),
        "Enabled",
    ));
    world["encryptionScopes"] = json!(scopes);
    world
}

fn scope_id(name: &str) -> String {
    format!(
        "{}/encryptionScopes/{name}",
        storage_id(SUB_A, "rg-data", "stmmk")
    )
}

const PLAYBOOK: [&str; 2] = ["--playbook", "storage-encryption-scope-mmk"];

#[test]
fn every_scope_on_every_page_is_judged_with_its_key_as_evidence() {
    let sim = Sim::new(&scope_world());
    let out = sim
        .azbook()
        .args(["test", "--output", "json"])
        .args(PLAYBOOK)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "customer-key scopes are found");
    let results = results_by_resource(&out.stdout);
    assert_eq!(results.len(), 7, "all four pages: {results:?}");
    let pinned = &results[&scope_id("zz-pinned-off").to_lowercase()];
    assert_eq!(pinned["status"], "noncompliant", "disabled is no excuse");
    assert_eq!(pinned["evidence"]["keyVaultProperties.keyUri"], PINNED);
    assert_eq!(pinned["evidence"]["state"], "Disabled");
    assert!(pinned["message"].as_str().unwrap().contains("disabled"));
    let versionless = &results[&scope_id("zz-versionless").to_lowercase()];
    assert_eq!(versionless["status"], "noncompliant");
    assert_eq!(
        versionless["evidence"]["keyVaultProperties.keyUri"],
        VERSIONLESS
    );
    assert_eq!(
        results[&scope_id("s1").to_lowercase()]["status"],
        "compliant"
    );
    // One list per account, and one more per further page of stmmk's: never a skipped account.
    let lists = sim.calls_starting(&["storage", "account", "encryption-scope", "list"]);
    let accounts = 9; // the edge world's accounts in SUB_A
    assert_eq!(lists.len(), accounts + 3, "{lists:?}");
    let paged: Vec<_> = lists
        .iter()
        .filter(|argv| argv.iter().any(|a| a.starts_with("--marker=")))
        .collect();
    assert_eq!(paged.len(), 3);
    assert!(
        lists
            .iter()
            .all(|argv| argv.contains(&"--include=All".to_string()))
    );
}

#[test]
fn the_table_lists_scopes_under_their_account() {
    let sim = Sim::new(&scope_world());
    let out = sim.azbook().arg("test").args(PLAYBOOK).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| {
            l.contains("rg-data/stmmk") && l.contains("2 of 7 encryption scopes noncompliant")
        })
        .unwrap_or_else(|| panic!("no account line:\n{text}"));
    for name in ["s1", "s5", "zz-pinned-off", "zz-versionless"] {
        let at = lines
            .iter()
            .position(|l| l.split_whitespace().nth(2) == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{text}"));
        assert!(
            at > header && at <= header + 7,
            "{name} is not under its account:\n{text}"
        );
    }
    let markdown = sim
        .azbook()
        .args(["test", "--output", "markdown"])
        .args(PLAYBOOK)
        .output()
        .unwrap();
    let text = String::from_utf8(markdown.stdout).unwrap();
    let account_row = "|  | **rg-data/stmmk** | **2 of 7 encryption scopes noncompliant** |";
    let at = text.find(account_row).unwrap_or_else(|| panic!("{text}"));
    assert!(text[at..].contains("| noncompliant | rg-data/stmmk/zz-pinned-off |"));
}

#[test]
fn apply_then_backout_gives_each_scope_its_key_uri_exactly() {
    let sim = Sim::new(&scope_world());
    let original = sim.dump()["encryptionScopes"].clone();
    let plan = sim.azbook_json(&["plan", "--output", "json", PLAYBOOK[0], PLAYBOOK[1]], 0);
    let changes = plan["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    let warned = changes.iter().all(|c| {
        c["steps"][0]["warning"]
            .as_str()
            .unwrap()
            .contains("control of the key")
    });
    assert!(
        warned,
        "the change says it removes the customer's control of the key"
    );
    let restore = |name: &str| -> Vec<String> {
        let change = changes
            .iter()
            .find(|c| c["resource"] == scope_id(name))
            .unwrap();
        serde_json::from_value(change["backout"][0].clone()).unwrap()
    };
    assert!(restore("zz-pinned-off").contains(&format!("--key-uri={PINNED}")));
    assert!(restore("zz-versionless").contains(&format!("--key-uri={VERSIONLESS}")));

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
    assert_eq!(change_status(&applied, &scope_id("zz-pinned-off")), "done");
    let after = sim.dump()["encryptionScopes"].clone();
    assert!(
        after
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["source"] == "Microsoft.Storage"),
        "{after}"
    );
    let backout = sim.azbook_json(&["backout", "--yes", "--output", "json"], 0);
    assert_eq!(
        change_status(&backout, &scope_id("zz-versionless")),
        "restored"
    );
    let restored = sim.dump()["encryptionScopes"].clone();
    let pick = |scopes: &Value| -> Vec<(Value, Value, Value, Value)> {
        scopes
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].clone(),
                    s["source"].clone(),
                    s["state"].clone(),
                    s["keyVaultProperties"]["keyUri"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(pick(&restored), pick(&original));
}

#[test]
fn a_waiver_on_the_account_covers_its_scopes() {
    let sim = Sim::new(&scope_world());
    std::fs::write(
        sim.dir.path().join("azbook.toml"),
        r#"
[[waiver]]
resource = "*/storageAccounts/stmmk"
playbook = "storage-account-mmk"
reason = "regulator requires customer-held keys (SEC-1)"
approver = "ciso@contoso.com"
expires = 2099-12-31
"#,
    )
    .unwrap();
    let out = sim
        .azbook()
        .args(["test", "--output", "json"])
        .args(PLAYBOOK)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "every scope is waived or compliant"
    );
    let results = results_by_resource(&out.stdout);
    let waived = &results[&scope_id("zz-versionless").to_lowercase()];
    assert_eq!(waived["status"], "waived");
    assert!(waived["message"].as_str().unwrap().contains("SEC-1"));
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
    assert!(applied["changes"].as_array().unwrap().is_empty());
    assert_eq!(
        applied["waived"].as_array().unwrap().len(),
        7,
        "every scope of the account"
    );
    assert!(sim.mutating_calls().is_empty());
}

#[test]
fn apply_warns_when_a_scope_key_cannot_be_found_in_key_vault() {
    let mut world = scope_world();
    world["faults"] = json!([{"command": "keyvault key show", "argvContains": "0123456789abcdef",
        "error": {"code": "KeyNotFound", "exitCode": 3, "message": "A key with (name/id) scope-key was not found in this key vault."}}]);
    let sim = Sim::new(&world);
    let report = sim.azbook_json(
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
    let warned: Vec<&str> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("warnings").is_some())
        .map(|c| c["resource"].as_str().unwrap())
        .collect();
    assert_eq!(warned, [scope_id("zz-pinned-off")], "{report}");
    let checks = sim.calls_starting(&["keyvault", "key", "show"]);
    assert!(
        checks
            .iter()
            .any(|c| c.contains(&format!("--id={VERSIONLESS}")))
    );
}
