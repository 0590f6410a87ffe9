//! SQL Managed Instances: the TDE protector judged, switched to the service-managed key, and
//! backed out to the recorded customer key with its auto-rotation, re-registering the key when
//! the instance no longer has it.

use crate::harness::*;
use serde_json::{Value, json};

const MI_KEY: &str = "https://kv-mi.vault.azure.net/keys/mi-tde/0123456789abcdef0123456789abcdef";

fn mi_world() -> Value {
    let mut world = edge_world();
    world["sqlManagedInstances"] = json!([
        {"subscription": SUB_A, "resourceGroup": "rg-mi", "name": "mi-sm",
         "protector": {"serverKeyType": "ServiceManaged", "uri": null, "autoRotationEnabled": false},
         "keys": []},
        {"subscription": SUB_A, "resourceGroup": "rg-mi", "name": "mi-akv",
         "protector": {"serverKeyType": "AzureKeyVault", "uri": MI_KEY, "autoRotationEnabled": true},
         "keys": [{"uri": MI_KEY, "autoRotationEnabled": true}]}
    ]);
    world
}

fn mi_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB_A}/resourceGroups/rg-mi/providers/Microsoft.Sql/managedInstances/{name}"
    )
}

fn instance_mut<'w>(world: &'w mut Value, name: &str) -> &'w mut Value {
    world["sqlManagedInstances"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|mi| mi["name"] == name)
        .unwrap()
}

const PLAYBOOK: [&str; 2] = ["--playbook", "sql-managed-instance-tde-protector-mmk"];

#[test]
fn an_instance_on_a_customer_key_is_noncompliant_with_its_key_as_evidence() {
    let sim = Sim::new(&mi_world());
    let out = sim
        .azbook()
        .args(["test", "--output", "json"])
        .args(PLAYBOOK)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let results = results_by_resource(&out.stdout);
    assert_eq!(
        results[&mi_id("mi-sm").to_lowercase()]["status"],
        "compliant"
    );
    let akv = &results[&mi_id("mi-akv").to_lowercase()];
    assert_eq!(akv["status"], "noncompliant");
    assert_eq!(akv["evidence"]["uri"], MI_KEY);
    assert_eq!(akv["evidence"]["autoRotationEnabled"], true);
    assert_eq!(sim.calls_starting(&["sql", "mi", "list"]).len(), 1);
}

#[test]
fn the_plan_and_apply_say_the_change_is_long_running() {
    let sim = Sim::new(&mi_world());
    let plan = sim.azbook().arg("plan").args(PLAYBOOK).output().unwrap();
    let text = String::from_utf8(plan.stdout).unwrap();
    assert!(text.contains("long-running"), "{text}");
    let out = sim
        .azbook()
        .args(["apply", "--yes", "--change-timeout", "900"])
        .args(PLAYBOOK)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("mi-akv: make the service-managed key the TDE protector: long-running")
            && err.contains("waits up to 15 min"),
        "{err}"
    );
    let quiet = Sim::new(&mi_world());
    let out = quiet
        .azbook()
        .args(["apply", "--yes", "--quiet"])
        .args(PLAYBOOK)
        .output()
        .unwrap();
    assert!(
        !String::from_utf8(out.stderr)
            .unwrap()
            .contains("long-running")
    );
}

#[test]
fn backout_registers_the_key_again_and_restores_auto_rotation() {
    let sim = Sim::new(&mi_world());
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
    assert_eq!(change_status(&applied, &mi_id("mi-akv")), "done");
    let mut world = sim.dump();
    let instance = instance_mut(&mut world, "mi-akv");
    assert_eq!(instance["protector"]["serverKeyType"], "ServiceManaged");
    // Someone removes the key from the instance between the change and its backout.
    instance["keys"] = json!([]);
    sim.load(&world);
    let backout = sim.azbook_json(&["backout", "--yes", "--output", "json"], 0);
    assert_eq!(change_status(&backout, &mi_id("mi-akv")), "restored");
    let created = sim.calls_starting(&["sql", "mi", "key", "create"]);
    assert_eq!(created.len(), 1);
    assert!(created[0].contains(&format!("--kid={MI_KEY}")));
    let set = sim.calls_starting(&["sql", "mi", "tde-key", "set"]);
    assert!(
        set.last()
            .unwrap()
            .contains(&"--auto-rotation-enabled=true".to_string())
    );
    let mut after = sim.dump();
    let instance = instance_mut(&mut after, "mi-akv");
    assert_eq!(instance["protector"]["serverKeyType"], "AzureKeyVault");
    assert_eq!(instance["protector"]["uri"], MI_KEY);
    assert_eq!(instance["protector"]["autoRotationEnabled"], true);
}
