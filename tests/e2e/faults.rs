//! Faults during a run: sign-in expiring, throttling, transient errors, a state directory that
//! cannot be written.

use crate::harness::*;
use serde_json::json;

#[test]
fn sign_in_expiring_mid_run_stops_new_changes_and_says_how_to_go_on() {
    let mut world = edge_world();
    world["faults"] = json!([{"command": "storage account update", "argvContains": "stcmknull",
        "error": {"code": "ExpiredAuthenticationToken", "exitCode": 1,
                  "message": "The access token has expired. Please run 'az login' to setup account."}}]);
    let sim = Sim::new(&world);
    let original = essentials(&sim.dump());
    let out = sim
        .azbook()
        .args([
            "--jobs",
            "1",
            "apply",
            "--yes",
            "--playbook",
            "storage-account-mmk",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stopped starting new changes") && stderr.contains("az login"),
        "{stderr}"
    );
    assert!(
        stderr.contains("azbook apply") && stderr.contains("azbook backout"),
        "{stderr}"
    );
    let report = json_out(&out);
    let run = report["run"].as_str().unwrap().to_string();
    assert_eq!(change_status(&report, "stcmkempty"), "done");
    assert_eq!(change_status(&report, "stcmknull"), "failed");
    for later in ["stcmkpinned", "stcmkuai", "stkvlower"] {
        assert_eq!(
            change_status(&report, later),
            "skipped",
            "{later} must not be started"
        );
    }
    assert!(
        !sim.calls_starting(&["storage", "account", "update"])
            .iter()
            .any(|c| c.join(" ").contains("stcmkpinned"))
    );
    let log = json_out(
        &sim.azbook()
            .args(["log", &run, "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        log["status"], "stopped",
        "the log ends properly, saying the run stopped: {}",
        log["status"]
    );

    // Signed in again: apply picks up what is left; backout of the first run undoes only it.
    let mut world = sim.dump();
    world["faults"] = json!([]);
    sim.load(&world);
    let again = json_out(
        &sim.azbook()
            .args([
                "apply",
                "--yes",
                "--playbook",
                "storage-account-mmk",
                "--output",
                "json",
            ])
            .output()
            .unwrap(),
    );
    assert!(
        again["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "done")
    );
    assert!(
        !again["changes"].to_string().contains("stcmkempty"),
        "already done, not planned again"
    );
    let second_run = again["run"].as_str().unwrap().to_string();
    sim.azbook()
        .args(["backout", "--yes", &second_run])
        .assert()
        .code(0);
    sim.azbook()
        .args(["backout", "--yes", &run])
        .assert()
        .code(0);
    assert_eq!(essentials(&sim.dump()), original);
}

#[test]
fn each_throttling_code_and_transient_errors_are_retried() {
    for code in [
        "TooManyRequests",
        "ResourceRequestsThrottled",
        "SubscriptionRequestsThrottled",
        "InternalServerError",
        "ServiceUnavailable",
    ] {
        let mut world = edge_world();
        world["faults"] = json!([{"command": "sql server tde-key show", "argvContains": "sql-akv", "times": 2,
            "error": {"code": code, "exitCode": 1, "message": "try again later"}}]);
        let sim = Sim::new(&world);
        let out = sim
            .azbook()
            .args([
                "test",
                "--output",
                "json",
                "--playbook",
                "sql-server-tde-protector-mmk",
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let results = results_by_resource(&out.stdout);
        assert_eq!(
            results[&server_id(SUB_A, "rg-sql", "sql-akv").to_lowercase()]["status"],
            "noncompliant",
            "{code}"
        );
        let tries = sim
            .calls_starting(&["sql", "server", "tde-key", "show"])
            .iter()
            .filter(|c| c.join(" ").contains("sql-akv"))
            .count();
        assert_eq!(tries, 3, "{code}: two failures, then the answer");
    }
}

#[test]
fn retries_give_up_at_the_bound_and_say_so() {
    let mut world = edge_world();
    world["faults"] = json!([{"command": "sql server tde-key show", "argvContains": "sql-akv",
        "error": {"code": "SubscriptionRequestsThrottled", "exitCode": 1, "message": "Number of requests for subscription exceeded the limit."}}]);
    let sim = Sim::new(&world);
    let out = sim
        .azbook()
        .args([
            "--retries",
            "2",
            "test",
            "--output",
            "json",
            "--playbook",
            "sql-server-tde-protector-mmk",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let results = results_by_resource(&out.stdout);
    let message = results[&server_id(SUB_A, "rg-sql", "sql-akv").to_lowercase()]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("SubscriptionRequestsThrottled") && message.contains("fewer --jobs"),
        "{message}"
    );
    assert_eq!(
        sim.calls_starting(&["sql", "server", "tde-key", "show"])
            .iter()
            .filter(|c| c.join(" ").contains("sql-akv"))
            .count(),
        3
    );
}

#[test]
fn an_unwritable_state_directory_stops_apply_before_any_change() {
    let sim = Sim::new(&edge_world());
    // CI runs as root, so file modes prove nothing: a parent that is a regular file does.
    let file = sim.dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = sim
        .azbook()
        .arg("--state-dir")
        .arg(file.join("state"))
        .args(["apply", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not-a-dir") && stderr.contains("--state-dir"),
        "{stderr}"
    );
    assert!(sim.mutating_calls().is_empty());
    // Writes that fail like a full disk.
    let state = sim.dir.path().join("full");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::symlink("/dev/full", state.join("lock")).unwrap();
    let out = sim
        .azbook()
        .arg("--state-dir")
        .arg(&state)
        .args(["apply", "--yes"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sim.mutating_calls().is_empty());
}

#[test]
fn a_change_that_landed_before_az_died_is_reported_as_in_place() {
    let mut world = edge_world();
    world["faults"] = json!([{"command": "storage account update", "argvContains": "stcmkpinned", "crashAfterChange": true, "times": 1}]);
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
    assert_eq!(change_status(&report, "stcmkpinned"), "failed");
    let change = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"].as_str().unwrap().ends_with("/stcmkpinned"))
        .unwrap();
    let message = change["message"].as_str().unwrap();
    assert!(
        message.contains("the change is in place") && message.contains("azbook backout"),
        "{message}"
    );
    assert_eq!(
        change["after"]["encryption"]["keySource"],
        "Microsoft.Storage"
    );
    sim.azbook().args(["backout", "--yes"]).assert().code(0);
    assert_eq!(essentials(&sim.dump()), original);
}
