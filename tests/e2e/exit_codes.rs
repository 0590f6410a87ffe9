//! Exit codes follow what happened: 2 only when nothing was changed, a format that does not fit
//! a command refused before anything runs, report destinations checked before the first change,
//! and a closed stdout ending the run quietly with its own code.

use crate::harness::*;
use std::io::Read;
use std::process::Stdio;

#[test]
fn a_report_format_that_does_not_fit_is_refused_before_anything_runs() {
    let sim = Sim::new(&edge_world());
    for command in [&["plan"][..], &["apply", "--yes"], &["backout", "--yes"]] {
        let out = sim
            .azbook()
            .args(command)
            .args(["--report", "out.csv"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{command:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("csv and junit reports are for `azbook test`"),
            "{command:?}: {stderr}"
        );
    }
    assert!(sim.calls().is_empty(), "not one az call: {:?}", sim.calls());
    assert!(!sim.dir.path().join("out.csv").exists());
}

#[test]
fn an_unwritable_report_stops_apply_before_any_change() {
    let sim = Sim::new(&edge_world());
    let out = sim
        .azbook()
        .args(["apply", "--yes", "--report", "no/such/dir/change.md"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot write the report no/such/dir/change.md; nothing was changed"),
        "{stderr}"
    );
    assert!(sim.mutating_calls().is_empty());
    assert!(sim.calls().is_empty(), "checked before signing in");
}

/// `azbook test | head -1`: the reader goes away; azbook keeps its own code and says nothing.
#[test]
fn a_closed_stdout_ends_the_run_quietly_with_its_own_code() {
    let sim = Sim::new(&edge_world());
    let mut child = sim
        .azbook_process()
        .args(["test", "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "noncompliant found: {stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    for command in [["runs", "--output", "json"], ["list", "--output", "json"]] {
        let mut child = sim
            .azbook_process()
            .args(command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{command:?}");
        assert!(out.stderr.is_empty(), "{command:?}");
    }
}

/// The report's directory disappears while apply changes Azure: the results still reach
/// stdout, the change log is closed, and the exit code says that changes were made.
#[test]
fn a_report_that_fails_after_the_changes_exits_3_and_says_what_is_in_place() {
    let mut world = edge_world();
    world["faults"] = serde_json::json!([{"command": "storage account update",
        "argvContains": "--name=stcmkpinned", "latencyMs": 1500, "times": 1}]);
    let sim = Sim::new(&world);
    let reports = sim.dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let child = sim
        .azbook_process()
        .args(["apply", "--yes", "--playbook", "storage-account-mmk"])
        .args(["--output", "json", "--report", "reports/change.md"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sim.wait_for_call("storage account update --name=stcmkpinned");
    std::fs::remove_dir(&reports).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot write the report reports/change.md"),
        "{stderr}"
    );
    assert!(
        stderr.contains("are in place (") && stderr.contains("stcmkpinned"),
        "{stderr}"
    );
    assert!(
        stderr.contains("restores everything this run changed"),
        "{stderr}"
    );
    let report = json_out(&out);
    assert_eq!(change_status(&report, "stcmkpinned"), "done");
    let run = report["run"].as_str().unwrap();
    let log = sim.azbook_json(&["log", run, "--output", "json"], 0);
    assert_eq!(log["status"], "finished", "the change log was closed");
}
