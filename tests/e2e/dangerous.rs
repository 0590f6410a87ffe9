//! Steps that delete, purge, revoke, regenerate keys or grant access (issue 13, point 8): a
//! custom playbook must declare them (`reversible = false` and a `warning`), a plan marks them
//! `!! DESTRUCTIVE`, and apply runs them only with `--allow-destructive`.
//!
//! azsim simulates no delete command, so the run that is allowed to delete reaches az with
//! `az storage account delete` and az refuses the command: what the test checks is that azbook
//! ran it.

use crate::harness::*;

/// A custom storage playbook whose second implement step deletes the account; `declaration`
/// goes into that step (empty: undeclared).
fn playbook(declaration: &str) -> String {
    format!(
        r#"schema = 1
id = "custom-storage"
title = "Custom storage check"
resource_type = "Microsoft.Storage/storageAccounts"

[control]
id = "X.1"
title = "A control"

[[discover]]
name = "account"
argv = ["az", "storage", "account", "list"]

[test]
compliant = "lower(encryption.keySource || 'Microsoft.Storage') == 'microsoft.storage'"
evidence = ["encryption.keySource"]
record = ["encryption.keySource", "encryption.keyVaultProperties.keyName"]
controlled = ["encryption.keySource"]
refresh = ["az", "storage", "account", "show", "--resource-group={{target.resourceGroup}}", "--name={{target.name}}"]

[[implement]]
name = "switch"
argv = ["az", "storage", "account", "update", "--name={{target.name}}", "--resource-group={{target.resourceGroup}}", "--encryption-key-source=Microsoft.Storage"]

[[implement]]
name = "delete the account"
argv = ["az", "storage", "account", "delete", "--name={{target.name}}", "--resource-group={{target.resourceGroup}}", "--yes"]
{declaration}"#
    )
}

/// The line of the delete step's `argv` in `playbook(..)`.
const DELETE_ARGV_LINE: usize = 27;

const DECLARED: &str =
    "reversible = false\nwarning = \"the account and every blob in it are deleted for good\"\n";

/// `sim`'s directory holding the playbook with `declaration`, as a path argument.
fn write(sim: &Sim, declaration: &str) -> String {
    let path = sim.dir.path().join("custom.toml");
    std::fs::write(&path, playbook(declaration)).unwrap();
    path.display().to_string()
}

#[test]
fn an_undeclared_delete_step_is_refused_at_load_with_its_line() {
    let sim = Sim::new(&edge_world());
    let path = write(&sim, "");
    for command in ["list", "test", "plan"] {
        let out = sim
            .azbook()
            .args([command, "--playbook", &path])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("{path}:{DELETE_ARGV_LINE}:8: ")),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains("`az storage account delete` deletes")
                && stderr.contains("`reversible = false` and a `warning`"),
            "{command}: {stderr}"
        );
    }
    assert!(
        sim.calls().is_empty(),
        "az ran before the playbook was validated"
    );
    // Half a declaration is not one.
    let path = write(&sim, "reversible = false\n");
    let out = sim
        .azbook()
        .args(["list", "--playbook", &path])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a `warning` saying what is lost"));
}

#[test]
fn a_plan_marks_a_declared_destructive_step_with_its_warning() {
    let sim = Sim::new(&edge_world());
    let path = write(&sim, DECLARED);
    let out = sim
        .azbook()
        .args(["plan", "--playbook", &path, "--name", "stcmkempty"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("!! DESTRUCTIVE: 1 step(s) below delete"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  2. delete the account (cannot be undone)\n")
            && stdout.contains(
                "!! DESTRUCTIVE: deletes, cannot be undone: the account and every blob in it are deleted for good\n"
            ),
        "{stdout}"
    );
    let markdown = sim
        .azbook()
        .args([
            "plan",
            "--playbook",
            &path,
            "--name",
            "stcmkempty",
            "--output",
            "markdown",
        ])
        .output()
        .unwrap();
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        markdown.contains("> **!! DESTRUCTIVE: 1 step(s) delete")
            && markdown.contains("**delete the account** deletes: the account and every blob in it are deleted for good")
            && markdown.contains("> **!! DESTRUCTIVE:** this step deletes"),
        "{markdown}"
    );
    let plan = sim.azbook_json(
        &[
            "plan",
            "--playbook",
            &path,
            "--name",
            "stcmkempty",
            "--output",
            "json",
        ],
        0,
    );
    let step = &plan["changes"][0]["steps"][1];
    assert_eq!(step["reversible"], false, "{step}");
    assert_eq!(
        step["warning"],
        "the account and every blob in it are deleted for good"
    );
    assert!(sim.mutating_calls().is_empty());
}

#[test]
fn apply_without_allow_destructive_refuses_before_asking_or_changing() {
    let sim = Sim::new(&edge_world());
    let path = write(&sim, DECLARED);
    let before = sim.dump();
    let refused = |args: &[&str]| {
        let out = sim.azbook().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("1 destructive step(s)")
                && stderr.contains(
                    "delete the account on stcmkempty (custom-storage: `az storage account delete` deletes)"
                )
                && stderr.contains("--allow-destructive"),
            "{args:?}: {stderr}"
        );
        stderr
    };
    refused(&[
        "apply",
        "--playbook",
        &path,
        "--name",
        "stcmkempty",
        "--yes",
    ]);
    // Checked before confirmation: without --yes it is this refusal, not the question.
    let stderr = refused(&["apply", "--playbook", &path, "--name", "stcmkempty"]);
    assert!(!stderr.contains("needs confirmation"), "{stderr}");
    // A saved plan too.
    let saved = sim.dir.path().join("plan.json").display().to_string();
    sim.azbook()
        .args([
            "plan",
            "--playbook",
            &path,
            "--name",
            "stcmkempty",
            "--out",
            &saved,
        ])
        .assert()
        .success();
    refused(&["apply", &saved, "--yes"]);
    assert!(
        sim.mutating_calls().is_empty(),
        "{:?}",
        sim.mutating_calls()
    );
    assert!(
        sim.calls_starting(&["storage", "account", "delete"])
            .is_empty()
    );
    assert!(
        sim.calls_starting(&["storage", "account", "update"])
            .is_empty()
    );
    assert_eq!(sim.dump(), before, "the world is as it was");
}

#[test]
fn apply_with_allow_destructive_runs_the_step() {
    let sim = Sim::new(&edge_world());
    let path = write(&sim, DECLARED);
    let out = sim
        .azbook()
        .args([
            "apply",
            "--playbook",
            &path,
            "--name",
            "stcmkempty",
            "--yes",
            "--allow-destructive",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("destructive step(s)"), "{stderr}");
    let deletes = sim.calls_starting(&["storage", "account", "delete"]);
    assert_eq!(deletes.len(), 1, "the delete step ran once: {stderr}");
    assert!(
        deletes[0].contains(&"--name=stcmkempty".to_string())
            && deletes[0].contains(&"--yes".to_string()),
        "{:?}",
        deletes[0]
    );
    assert_eq!(
        sim.mutating_calls().len(),
        1,
        "the update before it ran too"
    );
    // azsim does not know `az storage account delete`, so az fails the step: the change failed.
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let report = json_out(&out);
    assert_eq!(change_status(&report, "stcmkempty"), "failed");
}

#[test]
fn allow_destructive_is_documented_in_apply_help() {
    let sim = Sim::without_azure();
    let out = sim.azbook().args(["apply", "--help"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--allow-destructive"), "{text}");
    assert!(text.contains("`!! DESTRUCTIVE`"), "{text}");
}
