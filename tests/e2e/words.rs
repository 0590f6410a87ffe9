//! Words are promises: no "compliant" or "no changes" when targets could not be read, every
//! status counted in a summary, and az's own message shown whenever azbook refers to it.

use crate::harness::*;
use serde_json::json;

#[test]
fn a_plan_that_could_read_nothing_never_says_every_target_is_compliant() {
    let mut world = edge_world();
    world["faults"] = json!([{
        "command": "storage account list",
        "error": {"code": "AuthorizationFailed", "exitCode": 1,
                  "message": "The client does not have authorization to perform action 'Microsoft.Storage/storageAccounts/read'."}
    }]);
    let sim = Sim::new(&world);
    let out = sim
        .azbook()
        .args(["plan", "--playbook", "storage-account-mmk"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("compliant"), "{stdout}");
    assert!(stdout.contains("could not be read"), "{stdout}");
}

#[test]
fn the_test_summary_counts_waived_targets() {
    let sim = Sim::new(&edge_world());
    std::fs::write(
        sim.dir.path().join("azbook.toml"),
        "[[waiver]]\nresource = \"*/stcmkpinned\"\nplaybook = \"storage-account-mmk\"\nreason = \"r\"\napprover = \"a@contoso.com\"\nexpires = \"2099-12-31\"\n",
    )
    .unwrap();
    let out = sim.azbook().args(["test"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(", 1 waived ("), "{stderr}");
}

#[test]
fn an_az_that_prints_nothing_is_not_said_to_have_printed_something() {
    let sim = Sim::new(&edge_world());
    let out = sim
        .azbook()
        .args(["--az", "/bin/false", "test"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("message above"), "{stderr}");
    assert!(
        stderr.contains("az printed no message of its own"),
        "{stderr}"
    );
}

/// A backout dry run of a log whose only change can no longer be read never talks about
/// compliance: it says there is nothing to back out.
#[test]
fn a_backout_dry_run_with_nothing_to_restore_does_not_claim_compliance() {
    let sim = Sim::new(&edge_world());
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
    let run = report["run"].as_str().unwrap();
    let journal = sim
        .dir
        .path()
        .join("xdg-state/azbook/runs")
        .join(run)
        .join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[1] = "{not a record".into();
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    let out = sim
        .azbook()
        .args(["backout", run, "--dry-run", "--force"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("compliant"), "{stdout}");
    assert!(stdout.contains("Nothing to back out"), "{stdout}");
}
