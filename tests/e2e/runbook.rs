//! The whole runbook end to end: plan, apply with its change log, backout.

use crate::harness::*;
use serde_json::{Value, json};

/// The edge world plus the remaining customer-key variants: a system-assigned identity, a
/// federated client id, and an AzureKeyVault protector without auto-rotation.
fn variant_world() -> Value {
    let mut world = edge_world();
    let accounts = world["storageAccounts"].as_array_mut().unwrap();
    let mut system = account(
        SUB_A,
        "rg-data",
        "stcmksystem",
        cmk(
            "kv-finance",
            "st-key",
            json!("0123456789abcdef0123456789abcdef"),
        ),
        json!({}),
    );
    system["identity"] = json!({"type": "SystemAssigned", "principalId": "11111111-2222-3333-4444-555555555555",
                                "tenantId": TENANT, "userAssignedIdentities": null});
    accounts.push(system);
    let mut federated = cmk("kv-finance", "st-key", json!(""));
    federated["encryptionIdentity"] = json!({
        "encryptionUserAssignedIdentity": uai(SUB_A),
        "encryptionFederatedIdentityClientId": "99999999-8888-7777-6666-555555555555"
    });
    accounts.push(account(
        SUB_A,
        "rg-data",
        "stcmkfederated",
        federated,
        json!({}),
    ));
    let servers = world["sqlServers"].as_array_mut().unwrap();
    servers.push(json!({"subscription": SUB_A, "resourceGroup": "rg-sql", "name": "sql-akv-norotate", "tags": null,
        "protector": {"serverKeyType": "AzureKeyVault", "uri": KEY_URI_2, "autoRotationEnabled": false},
        "keys": [{"uri": KEY_URI_2, "autoRotationEnabled": false}]}));
    world
}

const KEY_URI_2: &str =
    "https://kv-sql2.vault.azure.net/keys/tde2/abcdefabcdefabcdefabcdefabcdefab";

#[test]
fn apply_then_backout_restores_every_customer_key_variant() {
    let sim = Sim::new(&variant_world());
    let original = essentials(&sim.dump());

    let report = sim.azbook_json(&["apply", "--yes", "--output", "json"], 0);
    let run = report["run"].as_str().unwrap().to_string();
    for name in [
        "stcmkempty",
        "stcmknull",
        "stcmkpinned",
        "stcmkuai",
        "stkvlower",
        "stcmksystem",
        "stcmkfederated",
    ] {
        assert_eq!(
            change_status(&report, &storage_id(SUB_A, "rg-data", name)),
            "done",
            "{name}"
        );
    }
    assert_eq!(
        change_status(&report, &server_id(SUB_A, "rg-sql", "sql-akv")),
        "done"
    );
    assert_eq!(
        change_status(&report, &server_id(SUB_A, "rg-sql", "sql-akv-norotate")),
        "done"
    );
    assert_eq!(
        change_status(&report, &db_id(SUB_A, "rg-sql", "sql-sm", "db-off")),
        "done"
    );
    assert_eq!(
        change_status(&report, &db_id(SUB_A, "rg-sql", "sql-sm", "db-cmk")),
        "done",
        "its own key is reverted to the server's"
    );

    let changed = sim.dump();
    assert_ne!(essentials(&changed), original);
    let after = sim
        .azbook()
        .args(["test", "--output", "json"])
        .output()
        .unwrap();
    let results = results_by_resource(&after.stdout);
    let noncompliant: Vec<&String> = results
        .iter()
        .filter(|(_, r)| r["status"] == "noncompliant")
        .map(|(k, _)| k)
        .collect();
    assert!(noncompliant.is_empty(), "{noncompliant:?}");

    let backout = sim.azbook_json(&["backout", "--yes", "--output", "json"], 0);
    assert!(
        backout["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "restored"),
        "{backout}"
    );
    assert_eq!(
        essentials(&sim.dump()),
        original,
        "backout of {run} restores every recorded field"
    );
}

#[test]
fn backout_registers_a_removed_server_key_before_restoring_the_protector() {
    let sim = Sim::new(&variant_world());
    let original = essentials(&sim.dump());
    sim.azbook()
        .args([
            "apply",
            "--yes",
            "--playbook",
            "sql-server-tde-protector-mmk",
        ])
        .assert()
        .code(0);
    // Someone removed the key from the server after the change.
    let mut world = sim.dump();
    for server in world["sqlServers"].as_array_mut().unwrap() {
        if server["name"] == "sql-akv" {
            server["keys"] = json!([]);
        }
    }
    sim.load(&world);
    sim.azbook().args(["backout", "--yes"]).assert().code(0);
    assert_eq!(essentials(&sim.dump()), original);
    let creates: Vec<Value> = sim
        .mutating_calls()
        .into_iter()
        .filter(|c| {
            c["argv"].as_array().unwrap().starts_with(&[
                json!("sql"),
                json!("server"),
                json!("key"),
                json!("create"),
            ])
        })
        .collect();
    assert_eq!(
        creates.len(),
        1,
        "the key is registered only where it is missing: {creates:?}"
    );
    assert!(
        creates[0]["argv"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("--kid={KEY_URI}")))
    );
}

#[test]
fn plan_and_dry_runs_change_nothing_and_show_everything() {
    let sim = Sim::new(&edge_world());
    let before = sim.dump();
    let plan = sim.azbook_json(&["plan", "--output", "json"], 0);
    assert_eq!(plan["schemaVersion"], 1);
    let change = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"].as_str().unwrap().ends_with("/stcmkpinned"))
        .unwrap();
    assert_eq!(change["status"], "pending");
    assert_eq!(change["playbook"], "storage-account-mmk");
    assert_eq!(change["steps"][0]["kind"], "az");
    assert_eq!(change["steps"][0]["reversible"], true);
    assert_eq!(
        change["steps"][0]["argv"],
        json!([
            "az",
            "storage",
            "account",
            "update",
            "--name=stcmkpinned",
            "--resource-group=rg-data",
            "--encryption-key-source=Microsoft.Storage",
            format!("--subscription={SUB_A}"),
            "--output=json"
        ])
    );
    assert!(
        change["steps"][0]["warning"]
            .as_str()
            .unwrap()
            .contains("removes the customer's control of the key")
    );
    assert_eq!(
        change["before"]["encryption"]["keySource"],
        "Microsoft.Keyvault"
    );
    assert_eq!(
        change["after"]["encryption"]["keySource"],
        "Microsoft.Storage"
    );
    assert!(change["backout"][0].as_array().unwrap().contains(&json!(
        "--encryption-key-version=0123456789abcdef0123456789abcdef"
    )));
    let own_key = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"].as_str().unwrap().ends_with("/db-cmk"))
        .unwrap();
    assert_eq!(own_key["status"], "pending");
    assert_eq!(
        own_key["steps"][0]["argv"].as_array().unwrap()[..6],
        json!(["az", "sql", "db", "tde", "key", "revert"])
            .as_array()
            .unwrap()[..]
    );
    assert!(
        own_key["backout"][0]
            .as_array()
            .unwrap()
            .contains(&json!(format!("--encryption-protector={DB_KEY_URI}")))
    );
    for c in plan["changes"].as_array().unwrap() {
        let was_cmk = c["before"].to_string().contains("Keyvault")
            || c["before"].to_string().contains("AzureKeyVault");
        if was_cmk && c["status"] == "pending" {
            assert!(
                c.to_string().contains("control of the key"),
                "CMK to MMK must say so: {c}"
            );
        }
    }
    let table = sim.azbook().args(["plan"]).output().unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains("$ az storage account update --name=stcmkpinned"),
        "{text}"
    );
    assert!(
        text.contains("$ az sql db tde key revert --database=db-cmk"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "--encryption-protector={DB_KEY_URI} --keys {DB_KEY_URI}"
        )),
        "the restore lists the database's keys as separate arguments: {text}"
    );
    sim.azbook().args(["apply", "--dry-run"]).assert().code(0);
    assert!(
        sim.mutating_calls().is_empty(),
        "plan and dry run never run a mutating command"
    );
    assert_eq!(sim.dump(), before);
    // The state directory is the per-user one (XDG_STATE_HOME is the Sim's xdg-state).
    assert!(
        !sim.dir.path().join("xdg-state/azbook").exists()
            || std::fs::read_dir(sim.dir.path().join("xdg-state/azbook/runs"))
                .map_or(true, |mut d| d.next().is_none())
    );
}

#[test]
fn apply_twice_and_backout_twice_change_nothing_the_second_time() {
    let sim = Sim::new(&edge_world());
    let original = essentials(&sim.dump());
    sim.azbook().args(["apply", "--yes"]).assert().code(0);
    let after_first = sim.mutating_calls().len();
    assert!(after_first > 0);
    sim.azbook().args(["apply", "--yes"]).assert().code(0);
    assert_eq!(
        sim.mutating_calls().len(),
        after_first,
        "a second apply runs no mutating command"
    );
    let run = latest_apply_run(&sim);
    sim.azbook()
        .args(["backout", "--yes", &run])
        .assert()
        .code(0);
    let after_backout = sim.mutating_calls().len();
    assert_eq!(essentials(&sim.dump()), original);
    assert!(
        sim.azbook_json(&["backout", "--yes", "--output", "json", &run], 0)["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "unchanged")
    );
    assert_eq!(
        sim.mutating_calls().len(),
        after_backout,
        "a second backout changes nothing"
    );
}

#[test]
fn verification_reads_back_only_what_a_change_can_alter() {
    let sim = Sim::new(&edge_world());
    let tde_reads_of_db_off = |sim: &Sim| {
        sim.calls_starting(&["sql", "db", "tde", "show"])
            .iter()
            .filter(|c| c.contains(&"--database=db-off".to_string()))
            .count()
    };
    let shows_of_db_off = |sim: &Sim| {
        sim.calls_starting(&["sql", "db", "show"])
            .iter()
            .filter(|c| c.contains(&"--name=db-off".to_string()))
            .count()
    };
    sim.azbook().args(["apply", "--yes"]).assert().code(0);
    // The test read db-off's TDE once; turning TDE on cannot change the database's own key, so
    // the change is verified by one more `tde show` and no `az sql db show` of db-off runs.
    assert_eq!(shows_of_db_off(&sim), 0);
    assert_eq!(tde_reads_of_db_off(&sim), 2);
    let run = latest_apply_run(&sim);
    sim.azbook()
        .args(["backout", "--yes", &run])
        .assert()
        .code(0);
    // Backout reads db-off whole before restoring it (its key included), then only its TDE.
    assert_eq!(shows_of_db_off(&sim), 1);
    assert_eq!(tde_reads_of_db_off(&sim), 4);
}

fn latest_apply_run(sim: &Sim) -> String {
    let runs = sim.azbook_json(&["runs", "--output", "json"], 0);
    runs.as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["kind"] == "apply")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn drift_before_backout_is_refused_unless_forced() {
    let sim = Sim::new(&edge_world());
    sim.azbook()
        .args(["apply", "--yes", "--playbook", "storage-account-mmk"])
        .assert()
        .code(0);
    // Someone put a value there that is neither the recorded one nor azbook's.
    let mut world = sim.dump();
    for a in world["storageAccounts"].as_array_mut().unwrap() {
        if a["name"] == "stcmkpinned" {
            a["encryption"]["keySource"] = json!("Microsoft.HardwareSecurityModule");
        }
    }
    sim.load(&world);
    let report = sim.azbook_json(&["backout", "--yes", "--output", "json"], 3);
    let drifted = storage_id(SUB_A, "rg-data", "stcmkpinned");
    assert_eq!(change_status(&report, &drifted), "drifted");
    let message = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "drifted")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("Microsoft.HardwareSecurityModule") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(
        change_status(&report, &storage_id(SUB_A, "rg-data", "stcmknull")),
        "restored"
    );
    let world = sim.dump();
    let pinned = world["storageAccounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "stcmkpinned")
        .unwrap();
    assert_eq!(
        pinned["encryption"]["keySource"], "Microsoft.HardwareSecurityModule",
        "a drifted target is left alone"
    );

    let run = latest_apply_run(&sim);
    let report = sim.azbook_json(
        &["backout", "--yes", "--force", "--output", "json", &run],
        0,
    );
    assert_eq!(change_status(&report, &drifted), "restored");
}

#[test]
fn a_failing_change_leaves_the_others_done_and_the_log_right() {
    let mut world = edge_world();
    world["faults"] = json!([{"command": "storage account update", "argvContains": "stcmknull",
        "error": {"code": "KeyVaultPolicyError", "exitCode": 1, "message": "Keyvault policy recoverable is not set"}}]);
    let sim = Sim::new(&world);
    let original = essentials(&sim.dump());
    let report = sim.azbook_json(
        &[
            "apply",
            "--yes",
            "--playbook",
            "storage-account-mmk",
            "--output",
            "json",
        ],
        3,
    );
    let failed = storage_id(SUB_A, "rg-data", "stcmknull");
    assert_eq!(change_status(&report, &failed), "failed");
    assert_eq!(
        change_status(&report, &storage_id(SUB_A, "rg-data", "stcmkpinned")),
        "done"
    );
    let run = report["run"].as_str().unwrap();
    let log = sim
        .azbook()
        .args(["log", run, "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(log.status.code(), Some(0));
    let entries = json_out(&log)["entries"].as_array().unwrap().clone();
    let intent = entries
        .iter()
        .find(|e| {
            e["kind"] == "intent"
                && e["resource"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case(&failed)
        })
        .unwrap();
    let outcome = entries
        .iter()
        .find(|e| e["kind"] == "outcome" && e["intent"] == intent["seq"])
        .unwrap();
    assert_eq!(outcome["status"], "failed");
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("KeyVaultPolicyError")
    );
    assert!(entries.iter().position(|e| e == intent) < entries.iter().position(|e| e == outcome));
    sim.azbook().args(["backout", "--yes"]).assert().code(0);
    assert_eq!(essentials(&sim.dump()), original);
}

#[test]
fn a_saved_plan_skips_targets_that_changed_since() {
    let sim = Sim::new(&edge_world());
    let plan = sim.dir.path().join("plan.json");
    sim.azbook()
        .args(["plan", "--playbook", "storage-account-mmk", "--out"])
        .arg(&plan)
        .assert()
        .code(0);
    // The world moves on: someone fixes one account by hand.
    let mut world = sim.dump();
    for a in world["storageAccounts"].as_array_mut().unwrap() {
        if a["name"] == "stcmkuai" {
            a["encryption"] = mmk("Microsoft.Storage");
        }
    }
    sim.load(&world);
    let plan = plan.to_str().unwrap();
    let report = sim.azbook_json(&["apply", "--yes", "--output", "json", plan], 3);
    assert_eq!(
        change_status(&report, &storage_id(SUB_A, "rg-data", "stcmkuai")),
        "drifted"
    );
    assert_eq!(
        change_status(&report, &storage_id(SUB_A, "rg-data", "stcmkpinned")),
        "done"
    );
    assert!(
        !sim.mutating_calls()
            .iter()
            .any(|c| c["argv"].to_string().contains("stcmkuai"))
    );
}

#[test]
fn an_edited_or_stale_plan_is_refused() {
    let sim = Sim::new(&edge_world());
    let path = sim.dir.path().join("plan.json");
    sim.azbook()
        .args(["plan", "--playbook", "storage-account-mmk", "--out"])
        .arg(&path)
        .assert()
        .code(0);
    let plan: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let refused = |edit: &dyn Fn(&mut Value), expect: &str| {
        let mut p = plan.clone();
        edit(&mut p);
        let edited = sim.dir.path().join("edited.json");
        std::fs::write(&edited, serde_json::to_vec(&p).unwrap()).unwrap();
        let out = sim
            .azbook()
            .args(["apply", "--yes"])
            .arg(&edited)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{expect}: {stderr}");
        assert!(stderr.contains(expect), "expected `{expect}` in: {stderr}");
    };
    refused(
        &|p| {
            p["changes"][0]["steps"][0]["argv"][6] =
                json!("--encryption-key-source=Microsoft.Keyvault")
        },
        "edited",
    );
    refused(
        &|p| p["changes"][0]["backout"][0][2] = json!("delete"),
        "edited",
    );
    refused(
        &|p| p["createdAt"] = json!("2020-01-01T00:00:00Z"),
        "--max-age",
    );
    refused(
        &|p| p["tenantId"] = json!("11111111-1111-1111-1111-111111111111"),
        "tenant",
    );
    refused(
        &|p| {
            p["subscriptions"] = json!([SUB_B]);
        },
        "subscription",
    );
    refused(
        &|p| p["playbooks"][0]["sha256"] = json!("00"),
        "changed since the plan",
    );
    refused(
        &|p| {
            let other = storage_id(SUB_A, "rg-data", "stmmk");
            p["changes"][0]["resource"] = json!(other);
        },
        "its `resource` is not what playbook storage-account-mmk derives",
    );
    refused(
        &|p| p["changes"][0]["after"]["encryption"]["keySource"] = json!("Microsoft.Keyvault"),
        "its `after` is not what playbook",
    );
    refused(
        &|p| p["createdAt"] = json!("2099-01-01T00:00:00Z"),
        "from now",
    );
    assert!(sim.mutating_calls().is_empty());
    // The untouched plan applies.
    sim.azbook()
        .args(["apply", "--yes"])
        .arg(&path)
        .assert()
        .code(0);
}

/// A change copied in from a plan made for another scope is refused with the whole plan.
#[test]
fn a_change_from_another_plan_is_refused() {
    let sim = Sim::new(&edge_world());
    let plan_for = |name: &str, args: &[&str]| -> Value {
        let path = sim.dir.path().join(name);
        sim.azbook()
            .args(["plan", "--playbook", "storage-account-mmk", "--out"])
            .arg(&path)
            .args(args)
            .assert()
            .code(0);
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    };
    let mut narrow = plan_for("narrow.json", &["--name", "stcmkp*"]);
    let wide = plan_for("wide.json", &[]);
    let stray = wide["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"].as_str().unwrap().ends_with("/stdash"))
        .unwrap()
        .clone();
    narrow["changes"].as_array_mut().unwrap().push(stray);
    let edited = sim.dir.path().join("edited.json");
    std::fs::write(&edited, serde_json::to_vec(&narrow).unwrap()).unwrap();
    let out = sim
        .azbook()
        .args(["apply", "--yes"])
        .arg(&edited)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("which its own scope leaves out (name stcmkp*)"),
        "{stderr}"
    );
    assert!(sim.mutating_calls().is_empty());
}

#[test]
fn max_changes_is_enforced_before_anything_runs() {
    let sim = Sim::new(&edge_world());
    let out = sim
        .azbook()
        .args(["apply", "--yes", "--max-changes", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--max-changes"), "{stderr}");
    assert!(sim.mutating_calls().is_empty());
}

#[test]
fn apply_without_a_terminal_needs_yes() {
    let sim = Sim::new(&edge_world());
    let out = sim.azbook().args(["apply"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert!(sim.mutating_calls().is_empty());
}

#[test]
fn a_second_concurrent_apply_refuses_with_a_clear_message() {
    let mut world = edge_world();
    world["settings"]["latencyMs"] = json!(150);
    let sim = Sim::new(&world);
    let mut first = sim.azbook_process();
    first.args([
        "--jobs",
        "1",
        "apply",
        "--yes",
        "--playbook",
        "storage-account-mmk",
    ]);
    let mut child = first.spawn().unwrap();
    let runs = sim.dir.path().join("xdg-state/azbook/runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(&runs).map_or(true, |mut d| d.next().is_none()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the first apply never started its run"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = sim.azbook().args(["apply", "--yes"]).output().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another azbook"), "{stderr}");
}

#[test]
fn runs_and_log_tell_the_story_and_detect_tampering() {
    let sim = Sim::new(&edge_world());
    sim.azbook()
        .args([
            "apply",
            "--yes",
            "--playbook",
            "sql-server-tde-protector-mmk",
        ])
        .assert()
        .code(0);
    let apply_run = latest_apply_run(&sim);
    sim.azbook().args(["backout", "--yes"]).assert().code(0);
    let runs = json_out(
        &sim.azbook()
            .args(["runs", "--output", "json"])
            .output()
            .unwrap(),
    );
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["kind"], "apply");
    assert_eq!(runs[1]["kind"], "backout");
    assert_eq!(runs[1]["reverts"], json!(apply_run));
    assert_eq!(runs[0]["revertedBy"], json!([runs[1]["id"]]));
    let text = String::from_utf8(
        sim.azbook()
            .args(["log", &apply_run])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(text.contains("ops@contoso.com"), "{text}");
    assert!(text.contains("tde-key set"), "{text}");
    assert!(text.contains("sql-akv"), "{text}");

    let journal = sim
        .dir
        .path()
        .join("xdg-state/azbook/runs")
        .join(&apply_run)
        .join("journal.jsonl");
    let original = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(
        &journal,
        original.replacen("AzureKeyVault", "ServiceManaged", 1),
    )
    .unwrap();
    let out = sim.azbook().args(["log", &apply_run]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = sim
        .azbook()
        .args(["backout", "--yes", &apply_run])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("altered"));
}

/// Cuts a change log right after its last intent, as a run killed after writing it (before its
/// outcome) leaves it, and returns that intent.
fn cut_after_last_intent(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last_intent = lines
        .iter()
        .rposition(|l| l.contains("\"kind\":\"intent\""))
        .unwrap();
    std::fs::write(path, lines[..=last_intent].join("\n") + "\n").unwrap();
    serde_json::from_str(lines[last_intent]).unwrap()
}

fn journal_path(sim: &Sim, run: &str) -> std::path::PathBuf {
    sim.dir
        .path()
        .join("xdg-state/azbook/runs")
        .join(run)
        .join("journal.jsonl")
}

#[test]
fn an_intent_without_outcome_is_resolved_by_reading_the_world() {
    let sim = Sim::new(&edge_world());
    let original = essentials(&sim.dump());
    sim.azbook()
        .args([
            "--jobs",
            "1",
            "apply",
            "--yes",
            "--playbook",
            "storage-account-mmk",
        ])
        .assert()
        .code(0);
    let run = latest_apply_run(&sim);
    // As if azbook was killed after az changed the last account but before the outcome was
    // written: cut the log right after the last intent.
    let path = journal_path(&sim, &run);
    let last_target = cut_after_last_intent(&path);
    // And a torn line, as a crash in the middle of a write leaves.
    let mut torn = std::fs::read_to_string(&path).unwrap();
    torn.push_str("{\"seq\": 99, \"kind\": \"outc");
    std::fs::write(&path, torn).unwrap();

    let out = sim
        .azbook()
        .args(["backout", "--yes", "--output", "json", &run])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning"),
        "the torn line is reported: {stderr}"
    );
    let report = json_out(&out);
    assert_eq!(
        change_status(&report, last_target["resource"].as_str().unwrap()),
        "restored"
    );
    assert_eq!(essentials(&sim.dump()), original);
}

#[test]
fn an_intent_whose_change_never_happened_is_left_unchanged() {
    let sim = Sim::new(&edge_world());
    let world = sim.dump();
    sim.azbook()
        .args([
            "--jobs",
            "1",
            "apply",
            "--yes",
            "--playbook",
            "storage-account-mmk",
        ])
        .assert()
        .code(0);
    let run = latest_apply_run(&sim);
    let target = cut_after_last_intent(&journal_path(&sim, &run));
    // The killed run never reached az for that account: put it back as it was.
    let name = target["resource"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let mut now = sim.dump();
    let original_account = world["storageAccounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name.as_str())
        .unwrap()
        .clone();
    for a in now["storageAccounts"].as_array_mut().unwrap() {
        if a["name"] == name.as_str() {
            *a = original_account.clone();
        }
    }
    sim.load(&now);
    let before_backout = sim.mutating_calls().len();
    let report = sim.azbook_json(&["backout", "--yes", "--output", "json", &run], 0);
    assert_eq!(
        change_status(&report, target["resource"].as_str().unwrap()),
        "unchanged"
    );
    let restored = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "restored")
        .count();
    assert_eq!(
        sim.mutating_calls().len() - before_backout,
        restored,
        "nothing runs for the unchanged one"
    );
    assert_eq!(essentials(&sim.dump()), essentials(&world));
}

#[test]
fn backout_refuses_another_tenant() {
    let sim = Sim::new(&edge_world());
    sim.azbook()
        .args(["apply", "--yes", "--playbook", "storage-account-mmk"])
        .assert()
        .code(0);
    let mut world = sim.dump();
    world["tenantId"] = json!("99999999-9999-9999-9999-999999999999");
    sim.load(&world);
    let before = sim.mutating_calls().len();
    let out = sim.azbook().args(["backout", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tenant") && stderr.contains("az login --tenant"),
        "{stderr}"
    );
    assert_eq!(sim.mutating_calls().len(), before);
}

#[test]
fn backout_dry_run_changes_nothing() {
    let sim = Sim::new(&edge_world());
    sim.azbook().args(["apply", "--yes"]).assert().code(0);
    let before = sim.mutating_calls().len();
    let changed = sim.dump();
    let report = sim.azbook_json(&["backout", "--dry-run", "--output", "json"], 0);
    assert!(
        report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "pending")
    );
    assert!(
        report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| !c["steps"].as_array().unwrap().is_empty())
    );
    assert_eq!(sim.mutating_calls().len(), before);
    assert_eq!(sim.dump(), changed);
}

#[test]
fn a_key_that_many_accounts_use_is_checked_once() {
    let mut world = edge_world();
    let shared = cmk("kv-shared", "shared", json!("0a1b2c"));
    world["storageAccounts"] = json!(["sta", "stb", "stc"].map(|name| account(
        SUB_A,
        "rg-data",
        name,
        shared.clone(),
        json!({})
    )));
    world["faults"] = json!([{"command": "keyvault key show", "argvContains": "kv-shared",
        "error": {"code": "Forbidden", "exitCode": 1, "message": "The user does not have keys get permission."}}]);
    let sim = Sim::new(&world);
    let report = sim.azbook_json(
        &[
            "apply",
            "--yes",
            "--playbook",
            "storage-account-mmk",
            "--output",
            "json",
        ],
        0,
    );
    let checks = sim.calls_starting(&["keyvault", "key", "show"]);
    assert_eq!(
        checks.len(),
        1,
        "one read for the three accounts: {checks:?}"
    );
    // Its answer still reaches every change that depends on it.
    let changes = report["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3);
    for change in changes {
        assert_eq!(change["status"], "done", "{change}");
        let warning = change["warnings"][0].as_str().unwrap_or("");
        assert!(warning.contains("Forbidden"), "{change}");
    }
}

#[test]
fn apply_warns_when_it_cannot_confirm_the_customer_key_exists() {
    let mut world = edge_world();
    world["faults"] = json!([{"command": "keyvault key show", "argvContains": "kv-sql",
        "error": {"code": "KeyNotFound", "exitCode": 3, "message": "A key with (name/id) tde was not found in this key vault."}}]);
    let sim = Sim::new(&world);
    let report = sim.azbook_json(&["apply", "--yes", "--output", "json"], 0);
    let warned: Vec<&Value> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("warnings").is_some())
        .collect();
    assert_eq!(
        warned.len(),
        1,
        "only the server whose key is gone: {report}"
    );
    assert!(
        warned[0]["resource"]
            .as_str()
            .unwrap()
            .ends_with("/sql-akv")
    );
    let warning = warned[0]["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("cannot confirm") && warning.contains("KeyNotFound"),
        "{warning}"
    );
    // The key checks are data-plane reads: no --subscription.
    let checks = sim.calls_starting(&["keyvault", "key", "show"]);
    assert!(checks.len() >= 2, "{checks:?}");
    assert!(
        checks
            .iter()
            .all(|c| !c.iter().any(|a| a.starts_with("--subscription")))
    );
    let run = report["run"].as_str().unwrap();
    let log = json_out(
        &sim.azbook()
            .args(["log", run, "--output", "json"])
            .output()
            .unwrap(),
    );
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "note"
                && e["message"].as_str().unwrap().contains("cannot confirm"))
    );
}

#[test]
fn hostile_names_from_azure_stay_single_inert_arguments() {
    let marker = std::env::temp_dir().join(format!("azbook-pwned-{}", std::process::id()));
    let hostile_rg = format!("-rg; $(touch {}) 'q' \"dq\"\nnext `id`", marker.display());
    let mut world = edge_world();
    world["storageAccounts"] = json!([account(
        SUB_A,
        &hostile_rg,
        "st evil;name",
        cmk("kv-x", "k", json!("")),
        json!({})
    )]);
    let sim = Sim::new(&world);
    let original = essentials(&sim.dump());
    sim.azbook()
        .args(["test", "--playbook", "storage-account-mmk"])
        .assert()
        .code(1);
    sim.azbook()
        .args(["apply", "--yes", "--playbook", "storage-account-mmk"])
        .assert()
        .code(0);
    sim.azbook().args(["backout", "--yes"]).assert().code(0);
    assert_eq!(essentials(&sim.dump()), original);
    assert!(!marker.exists(), "a value from Azure ran as a command");
    let updates = sim.calls_starting(&["storage", "account", "update"]);
    assert_eq!(updates.len(), 2);
    for call in updates {
        assert!(
            call.contains(&format!("--resource-group={hostile_rg}")),
            "{call:?}"
        );
        assert!(
            call.contains(&"--name=st evil;name".to_string()),
            "{call:?}"
        );
    }
}

#[test]
fn az_left_running_by_a_killed_apply_holds_the_lock_until_it_ends() {
    use std::os::unix::process::CommandExt;
    let mut world = edge_world();
    world["faults"] = json!([{"command": "storage account update", "argvContains": "--name=stcmkpinned", "latencyMs": 1500, "times": 1}]);
    let sim = Sim::new(&world);
    let original = essentials(&sim.dump());
    let mut apply = sim.azbook_process();
    apply
        .args(["apply", "--yes", "--playbook", "storage-account-mmk"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    let child = apply.spawn().unwrap();
    sim.wait_for_call("storage account update --name=stcmkpinned");
    // Kill azbook as a terminal or a CI runner would: its whole process group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let mut child = child;
    child.wait().unwrap();
    // The az it started is still changing the account: backout must not race it.
    let out = sim.azbook().args(["backout", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("az commands it started are still running"),
        "{stderr}"
    );
    // Once it has ended, backout restores everything, the late change included.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let restored = loop {
        let out = sim.azbook().args(["backout", "--yes"]).output().unwrap();
        if out.status.code() != Some(2) {
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lock was never released"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        restored.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(essentials(&sim.dump()), original);
}

#[test]
fn a_run_that_never_started_is_passed_over_by_the_default_backout() {
    let sim = Sim::new(&edge_world());
    let original = essentials(&sim.dump());
    sim.azbook()
        .args(["apply", "--yes", "--playbook", "storage-account-mmk"])
        .assert()
        .code(0);
    // An apply killed between creating its directory and writing its first record.
    let empty = sim
        .dir
        .path()
        .join("xdg-state/azbook/runs/29991231T235959Z-apply-0000");
    std::fs::create_dir_all(empty.join("playbooks")).unwrap();
    let out = sim.azbook().args(["backout", "--yes"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(essentials(&sim.dump()), original);
}
