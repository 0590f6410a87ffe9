//! A change window: `backout` without a run id undoes the latest apply run whose changes may
//! still be in place, names older ones, and `--all-unreverted` undoes them all, newest first.
//! An apply that changed nothing says so and is never what backout picks.

use crate::harness::*;

fn apply(sim: &Sim, name: &str) -> String {
    let report = sim.azbook_json(
        &[
            "apply",
            "--yes",
            "--playbook",
            "storage-account-mmk",
            "--name",
            name,
            "--output",
            "json",
        ],
        0,
    );
    report["run"].as_str().unwrap().to_string()
}

#[test]
fn an_empty_apply_is_passed_over_and_older_runs_are_named() {
    let sim = Sim::new(&edge_world());
    let original = essentials(&sim.dump());
    let plan = sim.dir.path().join("plan.json");
    sim.azbook()
        .args([
            "plan",
            "--playbook",
            "storage-account-mmk",
            "--name",
            "stcmkpinned",
            "--out",
        ])
        .arg(&plan)
        .assert()
        .code(0);
    let first = apply(&sim, "stcmkempty");
    let second = apply(&sim, "stcmkpinned");
    // The saved plan again: its only target has changed since, so this run changes nothing.
    let out = sim
        .azbook()
        .args(["apply", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("changed nothing: there is nothing to back out"),
        "{stderr}"
    );

    let out = sim.azbook().args(["backout", "--yes"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("backout of run {second}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "older apply runs have changes that are not backed out either: {first}"
        )),
        "{stderr}"
    );
    // Once the newest is reverted, the next backout takes the older one, and then none is left.
    let out = sim.azbook().args(["backout", "--yes"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("backout of run {first}")),
        "{stderr}"
    );
    assert!(!stderr.contains("older apply runs"), "{stderr}");
    assert_eq!(essentials(&sim.dump()), original);
    let out = sim.azbook().args(["backout", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not yet backed out"));
}

#[test]
fn all_unreverted_backs_out_every_run_of_the_window_newest_first() {
    let sim = Sim::new(&edge_world());
    let original = essentials(&sim.dump());
    let first = apply(&sim, "stcmkempty");
    let second = apply(&sim, "stcmkpinned");
    let out = sim
        .azbook()
        .args(["backout", "--all-unreverted", "--yes"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let at = |run: &str| stderr.find(&format!("backout of run {run}")).unwrap();
    assert!(at(&second) < at(&first), "newest first: {stderr}");
    assert_eq!(essentials(&sim.dump()), original);
    let runs = sim.azbook_json(&["runs", "--output", "json"], 0);
    let reverted = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "apply")
        .all(|r| !r["revertedBy"].as_array().unwrap().is_empty());
    assert!(reverted, "{runs}");
}
