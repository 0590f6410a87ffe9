//! Drift is judged on everything backout writes, not on the key source alone: a customer key
//! put back by someone else between apply and backout, from another vault or pinned to another
//! version, is `drifted` (exit 3) and left as it is; and a saved plan applied after a field the
//! service changes on its own moved is backed out to the state just before the apply.

use crate::harness::*;
use serde_json::{Value, json};

const PINNED: &str = "0123456789abcdef0123456789abcdef";

/// Applies the storage playbook to `stcmkpinned` alone and returns the run id.
fn apply_pinned(sim: &Sim) -> String {
    let report = sim.azbook_json(
        &[
            "apply",
            "--yes",
            "--playbook",
            "storage-account-mmk",
            "--name",
            "stcmkpinned",
            "--output",
            "json",
        ],
        0,
    );
    assert_eq!(change_status(&report, "stcmkpinned"), "done");
    report["run"].as_str().unwrap().to_string()
}

/// Someone else puts a customer key back on `stcmkpinned`, as `encryption` says.
fn put_back(sim: &Sim, encryption: Value) {
    let mut world = sim.dump();
    let account = world["storageAccounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["name"] == "stcmkpinned")
        .unwrap();
    account["encryption"] = encryption;
    sim.load(&world);
}

fn backout_is_refused_as_drifted(sim: &Sim, run: &str, field: &str) {
    let before_backout = essentials(&sim.dump());
    let out = sim
        .azbook()
        .args(["backout", run, "--yes", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_out(&out);
    let change = &report["changes"][0];
    assert_eq!(change["status"], "drifted", "{change}");
    let differences = change["differences"].as_array().unwrap();
    assert!(
        differences.iter().any(|d| d["field"] == field),
        "{field} named with both values: {differences:?}"
    );
    assert!(change["message"].as_str().unwrap().contains(field));
    assert_eq!(
        essentials(&sim.dump()),
        before_backout,
        "a drifted target is left as it is"
    );
    assert!(
        !sim.calls_starting(&["storage", "account", "update"])
            .iter()
            .any(|c| c
                .iter()
                .any(|a| a == "--encryption-key-source=Microsoft.Keyvault")),
        "no backout step ran"
    );
}

#[test]
fn a_key_put_back_from_another_vault_is_drifted_not_unchanged() {
    let sim = Sim::new(&edge_world());
    let run = apply_pinned(&sim);
    put_back(&sim, cmk("kv-other", "st-key", json!(PINNED)));
    backout_is_refused_as_drifted(&sim, &run, "encryption.keyVaultProperties.keyVaultUri");
}

#[test]
fn the_same_key_pinned_to_another_version_is_drifted_not_unchanged() {
    let sim = Sim::new(&edge_world());
    let run = apply_pinned(&sim);
    put_back(
        &sim,
        cmk(
            "kv-finance",
            "st-key",
            json!("ffffffffffffffffffffffffffffffff"),
        ),
    );
    backout_is_refused_as_drifted(&sim, &run, "encryption.keyVaultProperties.keyVersion");
}

#[test]
fn the_recorded_key_put_back_exactly_is_unchanged_in_any_casing() {
    let sim = Sim::new(&edge_world());
    let run = apply_pinned(&sim);
    let mut same = cmk("KV-FINANCE", "st-key", json!(PINNED));
    same["keyVaultProperties"]["keyVaultUri"] = json!("https://KV-FINANCE.vault.azure.net");
    put_back(&sim, same);
    let report = sim.azbook_json(&["backout", &run, "--yes", "--output", "json"], 0);
    assert_eq!(report["changes"][0]["status"], "unchanged", "{report}");
}

/// `--force` still restores a drifted target, and the restore is verified on every field.
#[test]
fn force_restores_a_drifted_target_exactly() {
    let sim = Sim::new(&edge_world());
    let original = essentials(&sim.dump());
    let run = apply_pinned(&sim);
    put_back(&sim, cmk("kv-other", "st-key", json!(PINNED)));
    let report = sim.azbook_json(
        &["backout", &run, "--yes", "--force", "--output", "json"],
        0,
    );
    assert_eq!(report["changes"][0]["status"], "restored", "{report}");
    assert_eq!(essentials(&sim.dump()), original);
}

/// Auto-rotation moved between `plan --out` and `apply FILE` (the service may change it): the
/// plan still applies, and backout restores the state just before the apply, not the plan's.
#[test]
fn a_saved_plan_is_backed_out_to_the_state_just_before_it_was_applied() {
    let sim = Sim::new(&edge_world());
    let plan = sim.dir.path().join("plan.json");
    let plan = plan.to_str().unwrap();
    let out = sim
        .azbook()
        .args([
            "plan",
            "--playbook",
            "sql-server-tde-protector-mmk",
            "--out",
            plan,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut world = sim.dump();
    for server in world["sqlServers"].as_array_mut().unwrap() {
        if server["name"] == "sql-akv" {
            server["protector"]["autoRotationEnabled"] = json!(false);
            server["keys"][0]["autoRotationEnabled"] = json!(false);
        }
    }
    sim.load(&world);
    let just_before = essentials(&sim.dump());
    let report = sim.azbook_json(&["apply", plan, "--yes", "--output", "json"], 0);
    assert_eq!(change_status(&report, "sql-akv"), "done", "{report}");
    assert_eq!(report["changes"][0]["before"]["autoRotationEnabled"], false);
    let run = report["run"].as_str().unwrap();
    sim.azbook_json(&["backout", run, "--yes", "--output", "json"], 0);
    assert_eq!(essentials(&sim.dump()), just_before);
    let set = sim.calls_starting(&["sql", "server", "tde-key", "set"]);
    assert!(
        !set.last()
            .unwrap()
            .iter()
            .any(|a| a.starts_with("--auto-rotation-enabled")),
        "restored as it was just before the apply: {set:?}"
    );
}
