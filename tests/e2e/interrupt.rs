//! Ctrl-C (SIGINT) and SIGTERM. A change run stops starting new changes, waits for the running
//! ones, records them, closes its log as interrupted, prints the results and exits 130; a
//! second signal kills az and leaves those changes `unknown` for backout to read from Azure.
//! A read run stops at once.

use crate::harness::*;
use serde_json::{Value, json};
use std::process::{Child, Stdio};

/// A world whose change of `stcmkpinned` takes 1.5 s, so that a signal can arrive during it.
fn slow_world() -> Value {
    let mut world = edge_world();
    world["faults"] = json!([{"command": "storage account update",
        "argvContains": "--name=stcmkpinned", "latencyMs": 1500, "times": 1}]);
    world
}

fn start(sim: &Sim, args: &[&str]) -> Child {
    sim.azbook_process()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on a child process this test started.
    unsafe { libc::kill(child.id() as i32, signal) };
}

fn apply_args() -> Vec<&'static str> {
    vec![
        "apply",
        "--yes",
        "--jobs",
        "1",
        "--playbook",
        "storage-account-mmk",
        "--name",
        "stcmk*",
        "--output",
        "json",
    ]
}

#[test]
fn the_first_signal_lets_running_changes_finish_and_starts_no_more() {
    let sim = Sim::new(&slow_world());
    let original = essentials(&sim.dump());
    let child = start(&sim, &apply_args());
    sim.wait_for_call("storage account update --name=stcmkpinned");
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("waiting for the 1 still running (stcmkpinned)"),
        "{stderr}"
    );
    assert!(stderr.contains("apply was interrupted"), "{stderr}");
    let report = json_out(&out);
    assert_eq!(
        change_status(&report, "stcmkpinned"),
        "done",
        "it finished and was verified"
    );
    let skipped = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "skipped")
        .count();
    assert!(skipped >= 1, "the changes after it never started: {report}");
    let started: Vec<Vec<String>> = sim.calls_starting(&["storage", "account", "update"]);
    let run = report["run"].as_str().unwrap();
    let log = sim.azbook_json(&["log", run, "--output", "json"], 0);
    assert_eq!(log["status"], "interrupted");
    // Backout restores what it did.
    let out = sim.azbook().args(["backout", "--yes"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        essentials(&sim.dump()),
        original,
        "after {} changes",
        started.len()
    );
}

#[test]
fn a_second_signal_kills_az_and_leaves_the_change_unknown_for_backout() {
    let sim = Sim::new(&slow_world());
    let original = essentials(&sim.dump());
    let child = start(&sim, &apply_args());
    sim.wait_for_call("storage account update --name=stcmkpinned");
    signal(&child, libc::SIGINT);
    std::thread::sleep(std::time::Duration::from_millis(100));
    signal(&child, libc::SIGTERM);
    let began = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let report = json_out(&out);
    assert_eq!(change_status(&report, "stcmkpinned"), "failed", "{report}");
    let run = report["run"].as_str().unwrap();
    let log = sim.azbook_json(&["log", run, "--output", "json"], 0);
    assert_eq!(log["status"], "interrupted");
    let unknown = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "outcome" && e["status"] == "unknown");
    assert!(unknown, "the killed change is recorded as unknown: {log}");
    assert!(began.elapsed() < std::time::Duration::from_secs(5));
    // Backout reads the live state and restores whatever landed.
    let out = sim.azbook().args(["backout", "--yes"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(essentials(&sim.dump()), original);
}

#[test]
fn a_read_run_stops_at_once_prints_what_it_has_and_exits_130() {
    let mut world = edge_world();
    world["faults"] = json!([{"command": "sql server tde-key show", "argvContains": "sql-akv",
        "hangSeconds": 120}]);
    let sim = Sim::new(&world);
    let child = start(
        &sim,
        &[
            "test",
            "--playbook",
            "sql-server-tde-protector-mmk",
            "--output",
            "json",
        ],
    );
    sim.wait_for_call("sql server tde-key show --server=sql-akv");
    // sql-sm's read answers at once: give it time to be judged, however loaded the machine.
    sim.wait_for_call("sql server tde-key show --server=sql-sm");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let began = std::time::Instant::now();
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        began.elapsed() < std::time::Duration::from_secs(10),
        "stopped at once"
    );
    let report = json_out(&out);
    let results = report["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["status"] == "compliant" || r["status"] == "noncompliant"),
        "what was read before the signal is printed: {report}"
    );
    assert!(
        results
            .iter()
            .any(|r| r["message"].as_str().unwrap_or("").contains("interrupt")),
        "{report}"
    );
    assert!(sim.mutating_calls().is_empty());
}

#[test]
fn backout_stops_the_same_way_and_a_second_backout_goes_on() {
    let sim = Sim::new(&edge_world());
    let original = essentials(&sim.dump());
    let report = sim.azbook_json(&apply_args(), 0);
    let run = report["run"].as_str().unwrap().to_string();
    let mut world = sim.dump();
    world["faults"] = json!([{"command": "storage account update",
        "argvContains": "--name=stcmkpinned", "latencyMs": 1500, "times": 1}]);
    sim.load(&world);
    let seen = sim.calls().len();
    let child = start(
        &sim,
        &["backout", "--yes", "--jobs", "1", "--output", "json"],
    );
    sim.wait_for_call_after(seen, "storage account update --name=stcmkpinned");
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("waiting for the 1 still running (stcmkpinned)"),
        "{stderr}"
    );
    let report = json_out(&out);
    assert_eq!(
        change_status(&report, "stcmkpinned"),
        "restored",
        "{report}"
    );
    assert!(
        report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "skipped"),
        "{report}"
    );
    let own = report["run"].as_str().unwrap();
    let log = sim.azbook_json(&["log", own, "--output", "json"], 0);
    assert_eq!(log["status"], "interrupted");
    // The interrupted backout did not revert the run to the end: the next one finishes it.
    let out = sim.azbook().args(["backout", "--yes"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("backout of run {run}")),
        "{stderr}"
    );
    assert_eq!(essentials(&sim.dump()), original);
}
